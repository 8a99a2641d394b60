// shuttle::Pool's typed results: the state behind an AsyncResult, and the result sinks the
// result thread fills (one value, a map's vector, an imap's stream). docs/pool.md.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "shuttle/detail/pool_core.hpp"

namespace shuttle::detail {

/// What a task returns, as it travels: void becomes std::monostate (one byte).
template <class R>
using Carried = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

/// Runs a user callback on the result thread; what escapes it is reported, not propagated (it
/// would end the result thread and with it every other task's delivery).
template <class Callback, class... Arguments>
void run_callback(const Callback& callback, Arguments&&... arguments) noexcept {
    if (!callback) return;
    try {
        callback(std::forward<Arguments>(arguments)...);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "shuttle::Pool: a callback threw %s: %s\n",
                     demangled_name(typeid(error)).c_str(), error.what());
    } catch (...) {
        std::fprintf(stderr, "shuttle::Pool: a callback threw\n");
    }
}

/// Calls `error_callback` with the Error inside `error` (every task failure is one).
template <class ErrorCallback>
void run_error_callback(const ErrorCallback& error_callback, const std::exception_ptr& error) {
    if (!error_callback) return;
    try {
        std::rethrow_exception(error);
    } catch (const Error& failure) {
        run_callback(error_callback, failure);
    } catch (...) {
    }
}

/// The shared state of an AsyncResult<R>: filled once on the result thread (after its
/// callback ran, as Python's), read from any thread.
template <class T>
class AsyncState {
  public:
    using Callback = std::function<void(const T&)>;
    using ErrorCallback = std::function<void(const Error&)>;

    AsyncState(Callback callback, ErrorCallback error_callback)
        : callback_(std::move(callback)), error_callback_(std::move(error_callback)) {}

    void set_value(T value) {
        run_callback(callback_, value);
        std::lock_guard lock(mutex_);
        value_ = std::move(value);
        ready_ = true;
        changed_.notify_all();
    }
    void set_error(std::exception_ptr error) {
        run_error_callback(error_callback_, error);
        std::lock_guard lock(mutex_);
        error_ = std::move(error);
        ready_ = true;
        changed_.notify_all();
    }
    bool wait_until(std::chrono::steady_clock::time_point deadline) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_until(lock, deadline, [this] { return ready_; });
    }
    void wait() const {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return ready_; });
    }
    bool ready() const {
        std::lock_guard lock(mutex_);
        return ready_;
    }
    /// Ready only: the value, or rethrows the task's failure.
    const T& value() const {
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        return *value_;
    }
    T take() {
        std::lock_guard lock(mutex_);
        if (error_) std::rethrow_exception(error_);
        return std::move(*value_);
    }
    bool failed() const {
        std::lock_guard lock(mutex_);
        return error_ != nullptr;
    }

  private:
    Callback callback_;
    ErrorCallback error_callback_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    bool ready_ = false;
    std::optional<T> value_;
    std::exception_ptr error_;
};

/// One task, one result (apply, apply_async).
template <class T>
class SingleSink final : public ResultSink, public AsyncState<T> {
  public:
    using AsyncState<T>::AsyncState;
    bool deliver(std::size_t, Reader& in, bool duplicate) override {
        T value{};
        if (!value_codec<T>::decode(in, value)) return false;
        if (!duplicate) this->set_value(std::move(value));
        return true;
    }
    void fail(std::size_t, std::exception_ptr error) override { this->set_error(std::move(error)); }
};

/// A map: the results in input order, complete when every item is; the first failure fails
/// the whole map (as Python's), once every item is settled.
template <class T>
class MapSink final : public ResultSink, public AsyncState<std::vector<T>> {
  public:
    MapSink(std::size_t size, typename AsyncState<std::vector<T>>::Callback callback,
            typename AsyncState<std::vector<T>>::ErrorCallback error_callback)
        : AsyncState<std::vector<T>>(std::move(callback), std::move(error_callback)),
          results_(size),
          remaining_(size) {
        if (size == 0) this->set_value({});
    }
    bool deliver(std::size_t index, Reader& in, bool duplicate) override {
        T scratch{};
        if (!value_codec<T>::decode(in, duplicate ? scratch : results_[index])) return false;
        if (!duplicate) settle();
        return true;
    }
    void fail(std::size_t, std::exception_ptr error) override {
        if (!error_) error_ = std::move(error);
        settle();
    }

  private:
    void settle() {
        if (--remaining_ != 0) return;
        if (error_) return this->set_error(error_);
        this->set_value(std::move(results_));
    }
    std::vector<T> results_;  // result thread only until complete
    std::size_t remaining_;
    std::exception_ptr error_;
};

/// An imap / imap_unordered: results as they come, read by one iterating thread.
template <class T>
class StreamSink final : public ResultSink {
  public:
    StreamSink(std::size_t size, bool ordered) : ordered_(ordered), slots_(ordered ? size : 0) {}

    bool deliver(std::size_t index, Reader& in, bool duplicate) override {
        T value{};
        if (!value_codec<T>::decode(in, value)) return false;
        if (!duplicate) push(index, std::move(value));
        return true;
    }
    void fail(std::size_t index, std::exception_ptr error) override {
        push(index, std::move(error));
    }

    /// The next result (ordered: item `position`; unordered: the next to arrive), waiting at
    /// most until `deadline`; nullopt on timeout. Rethrows a failed item's error.
    std::optional<T> next(std::size_t position, std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        auto available = [&] {
            return ordered_ ? slots_[position].has_value() : !arrived_.empty();
        };
        if (!changed_.wait_until(lock, deadline, available)) return std::nullopt;
        Outcome outcome;
        if (ordered_) {
            outcome = std::move(*slots_[position]);
            slots_[position].reset();
        } else {
            outcome = std::move(arrived_.front());
            arrived_.pop_front();
        }
        if (auto* error = std::get_if<std::exception_ptr>(&outcome)) std::rethrow_exception(*error);
        return std::move(std::get<T>(outcome));
    }

  private:
    using Outcome = std::variant<T, std::exception_ptr>;
    void push(std::size_t index, Outcome outcome) {
        std::lock_guard lock(mutex_);
        if (ordered_) {
            slots_[index] = std::move(outcome);
        } else {
            arrived_.push_back(std::move(outcome));
        }
        changed_.notify_all();
    }
    const bool ordered_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::optional<Outcome>> slots_;
    std::deque<Outcome> arrived_;
};

}  // namespace shuttle::detail
