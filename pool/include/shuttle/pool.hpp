// shuttle::Pool: Python's multiprocessing.Pool for C++ — worker processes fork()ed from the
// process that makes the pool, fed through shuttle's own queues, and robust to a killed worker.
//
//     shuttle::Pool pool(4);                                   // Pool(4); default: hardware
//     threads std::vector<int> squares = pool.map(square, inputs);     // results in input order
//     auto later = pool.apply_async(add, 2, 3);                // AsyncResult<int>
//     int five = later.get();                                  // rethrows what the task threw
//     pool.apply_async(work, std::tuple{7}, on_result, on_error);  // callbacks, in the parent
//     for (int value : pool.imap(square, inputs)) show(value); // lazily, as they come
//     pool.close(); pool.join();                               // or let the destructor terminate()
//
// A task is a function pointer, a captureless lambda or a trivially copyable callable: workers
// are fork()s of this process and get each task as bytes (the callable's, then its arguments
// encoded by shuttle's codec: any shuttle::encodable type — numbers, structs, std::string,
// vectors, tuples, variants, maps, cereal types). Results come back the same way.
//
// Crashes (beyond Python, whose Pool hangs): a worker killed or crashed while running a task
// never hangs the pool. The task fails with Error(errc::worker_died) — through get() and the
// error callback — or runs again on another worker (PoolOptions::on_worker_death =
// WorkerDeath::retry(n)); a replacement worker starts. docs/pool.md has the design.
//
// Thread safety: every member may be called from any thread of the process that made the pool
// (not from its workers). Callbacks run on the pool's one result thread, never concurrently.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "shuttle/detail/pool_core.hpp"
#include "shuttle/detail/pool_results.hpp"

namespace shuttle {

template <class R>
class AsyncResult;
template <class R>
class ResultStream;

namespace detail {

template <class F>
constexpr void require_task() {
    static_assert(std::is_trivially_copyable_v<F> && !std::is_member_pointer_v<F>,
                  "shuttle::Pool: a task must be a function pointer, a captureless lambda or a "
                  "trivially copyable callable. Workers are fork()ed processes that receive each "
                  "task as bytes, so it cannot own memory (a std::function, a lambda capturing a "
                  "std::string or a vector). Pass such data as the task's arguments instead: "
                  "they are encoded with shuttle's codec (docs/pool.md).");
}

template <class T>
constexpr void require_carried() {
    static_assert(encodable<T>,
                  "shuttle::Pool: every argument and result must be encodable by shuttle's "
                  "codec: make it trivially copyable, give it cereal functions (serialize), or "
                  "specialise shuttle::codec<T> (docs/codec.md)");
    static_assert(std::is_default_constructible_v<T>,
                  "shuttle::Pool: results and arguments must be default-constructible (they are "
                  "decoded into a default-constructed value)");
}

/// starmap's inputs, seen by map: each input is a task's whole argument tuple (or pair), not
/// its one argument. Refers to the caller's range (map reads it all before it returns).
template <class Inputs>
struct Spread {
    const Inputs& inputs;
    auto begin() const { return std::ranges::begin(inputs); }
    auto end() const { return std::ranges::end(inputs); }
};
/// The argument tuple a map task of these inputs decodes: (input) for map, the input for starmap.
template <class Inputs>
struct MapArguments {
    using type = std::tuple<std::ranges::range_value_t<Inputs>>;
};
template <class Inputs>
struct MapArguments<Spread<Inputs>> {
    using type = std::ranges::range_value_t<Inputs>;
};

/// The result of calling F with decoded Arguments (a tuple or pair).
template <class F, class Arguments>
using ApplyResult =
    std::decay_t<decltype(std::apply(std::declval<F&>(), std::declval<Arguments>()))>;

/// The worker side of a task: runs `count` items of F over decoded Arguments.
template <class F, class Arguments>
void invoke_items(const std::byte* callable, Reader& in, uint32_t count, ResultWriter& out) {
    using R = ApplyResult<F, Arguments>;
    std::array<std::byte, sizeof(F)> bytes;
    std::memcpy(bytes.data(), callable, sizeof(F));
    F function = std::bit_cast<F>(bytes);
    Arguments arguments{};
    for (uint32_t item = 0; item < count; ++item) {
        try {
            if (!value_codec<Arguments>::decode(in, arguments)) {
                throw Error(errc::bad_message, "shuttle::Pool: task arguments did not decode");
            }
            if constexpr (std::is_void_v<R>) {
                std::apply(function, std::move(arguments));
                out.value(std::monostate{});
            } else {
                out.value(std::apply(function, std::move(arguments)));
            }
        } catch (const std::exception& error) {
            out.raised(&error);
        } catch (...) {
            out.raised(nullptr);
        }
    }
}

/// This thread's buffer for building task messages.
inline std::span<std::byte> task_buffer(std::size_t size) {
    thread_local std::vector<std::byte> buffer;
    if (buffer.size() < size) buffer.resize(size);
    return {buffer.data(), size};
}

/// Writes a task's header (count filled in later) and callable; returns where arguments start.
template <class F, class Arguments>
std::size_t write_task_prefix(std::span<std::byte> buffer, const F& function) {
    TaskHeader header;
    header.invoker = &invoke_items<F, Arguments>;
    header.callable_size = sizeof(F);
    std::memcpy(buffer.data(), &header, sizeof header);
    std::memcpy(buffer.data() + sizeof header, &function, sizeof(F));
    return sizeof header + sizeof(F);
}

inline void set_task_count(std::span<std::byte> buffer, uint32_t count) {
    std::memcpy(buffer.data() + offsetof(TaskHeader, count), &count, sizeof count);
}

/// Cuts a range of inputs into chunk messages and submits them, one chunk per call.
/// Feeds a lazy stream's inputs to the pool.
class Feeder {
  public:
    virtual ~Feeder() = default;
    /// Submits the next chunk; false if done, or (`!block`) the task queue is full.
    virtual bool feed(bool block) = 0;
    virtual bool done() const = 0;
};

template <class F, class Arguments, class Iterator, class Sentinel>
class ChunkFeeder final : public Feeder {
  public:
    ChunkFeeder(PoolCore& core, F function, Iterator next, Sentinel end, std::size_t chunksize,
                std::shared_ptr<ResultSink> sink)
        : core_(&core),
          function_(function),
          next_(std::move(next)),
          end_(std::move(end)),
          chunksize_(chunksize),
          sink_(std::move(sink)) {}

    bool done() const override { return next_ == end_; }

    bool feed(bool block) override {
        if (done()) return false;
        std::span<std::byte> buffer = task_buffer(core_->max_message_size());
        std::size_t used = write_task_prefix<F, Arguments>(buffer, function_);
        Iterator cursor = next_;
        uint32_t count = 0;
        while (cursor != end_ && count < chunksize_) {
            Writer writer(buffer.subspan(used));
            value_codec<std::decay_t<decltype(*cursor)>>::encode(writer, *cursor);
            if (!writer.fits()) {
                if (count != 0) break;
                throw Error(errc::too_large, "shuttle::Pool: an input of " +
                                                 std::to_string(writer.size()) +
                                                 " bytes exceeds PoolOptions::max_message_size");
            }
            used += writer.size();
            ++count;
            ++cursor;
        }
        set_task_count(buffer, count);
        if (!core_->submit(buffer.first(used), sink_, index_, count, block)) return false;
        next_ = cursor;
        index_ += count;
        return true;
    }

  private:
    PoolCore* core_;
    F function_;
    Iterator next_;
    Sentinel end_;
    std::size_t chunksize_;
    std::shared_ptr<ResultSink> sink_;
    std::size_t index_ = 0;
};

/// Python's default map chunksize: about four chunks per worker.
inline std::size_t default_chunksize(std::size_t items, std::size_t processes) {
    const std::size_t per = processes * 4;
    return std::max<std::size_t>(1, items / per + (items % per != 0 ? 1 : 0));
}

/// A user callback for a T result; a callback taking nothing for a void task.
template <class T, class Callback>
std::function<void(const T&)> result_callback(Callback callback) {
    if constexpr (std::is_null_pointer_v<Callback>) {
        return {};
    } else if constexpr (std::is_same_v<T, std::monostate> && std::is_invocable_v<Callback&>) {
        return [callback = std::move(callback)](const T&) { callback(); };
    } else {
        return std::function<void(const T&)>(std::move(callback));
    }
}

template <class ErrorCallback>
std::function<void(const Error&)> error_callback(ErrorCallback callback) {
    if constexpr (std::is_null_pointer_v<ErrorCallback>) {
        return {};
    } else {
        return std::function<void(const Error&)>(std::move(callback));
    }
}

}  // namespace detail

/// The result of apply_async / map_async (Python's AsyncResult). Copyable (copies share the
/// result); thread-safe.
template <class R>
class AsyncResult {
    using Stored = detail::Carried<R>;

  public:
    /// Blocks until the task has finished: its result, or throws what it failed with
    /// (TaskError: the task threw; Error(worker_died); Error(closed): the pool was terminated).
    R get() const {
        state_->wait();
        return value();
    }
    /// As get(), waiting at most `timeout`: throws Timeout if the task has not finished.
    template <class Rep, class Period>
    R get_for(std::chrono::duration<Rep, Period> timeout) const {
        if (!wait_for(timeout)) throw Timeout("shuttle::AsyncResult::get_for: not ready");
        return value();
    }
    /// Blocks until the task has finished (successfully or not).
    void wait() const { state_->wait(); }
    /// Waits at most `timeout`; whether the task has finished.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        return state_->wait_until(std::chrono::steady_clock::now() + timeout);
    }
    /// Non-blocking: whether the task has finished.
    bool ready() const { return state_->ready(); }
    /// Non-blocking: whether it finished without failing. Error(invalid_argument) if not ready
    /// (Python's ValueError).
    bool successful() const {
        if (!ready()) {
            throw Error(errc::invalid_argument, "shuttle::AsyncResult::successful: not ready");
        }
        return !state_->failed();
    }

  private:
    friend class Pool;
    explicit AsyncResult(std::shared_ptr<detail::AsyncState<Stored>> state)
        : state_(std::move(state)) {}
    R value() const {
        if constexpr (std::is_void_v<R>) {
            (void)state_->value();
        } else {
            return state_->value();
        }
    }
    std::shared_ptr<detail::AsyncState<Stored>> state_;
};

/// imap / imap_unordered: a lazy input range of results. Iterating submits the inputs as the
/// pool takes them and waits for each result (blocking); a failed item rethrows its error from
/// the iterator. Move-only; must not outlive its Pool; iterate from one thread.
template <class R>
class ResultStream {
  public:
    class iterator {
      public:
        using value_type = R;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        const R& operator*() const { return *stream_->current_; }
        const R* operator->() const { return &*stream_->current_; }
        iterator& operator++() {
            stream_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.at_end(); }

      private:
        friend class ResultStream;
        explicit iterator(ResultStream* stream) : stream_(stream) {}
        bool at_end() const { return !stream_->current_.has_value(); }
        ResultStream* stream_ = nullptr;
    };

    /// Starts the iteration (once): waits for the first result.
    iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    std::default_sentinel_t end() const noexcept { return {}; }
    /// How many results the stream yields in all.
    std::size_t size() const noexcept { return size_; }
    /// Results taken so far.
    std::size_t taken() const noexcept { return taken_; }

  private:
    friend class Pool;
    using Stored = detail::Carried<R>;
    ResultStream(std::shared_ptr<detail::StreamSink<Stored>> sink,
                 std::shared_ptr<detail::Feeder> feeder, std::size_t size)
        : sink_(std::move(sink)), feeder_(std::move(feeder)), size_(size) {}

    void advance() {
        current_.reset();
        if (taken_ == size_) return;
        for (;;) {
            while (feeder_->feed(false)) {
            }
            // With inputs left unfed (the task queue was full), look again soon; else a result
            // always comes (or a failure).
            auto deadline = feeder_->done()
                                ? std::chrono::steady_clock::time_point::max()
                                : std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
            if (auto next = sink_->next(taken_, deadline)) {
                ++taken_;
                current_ = std::move(*next);
                return;
            }
        }
    }
    std::shared_ptr<detail::StreamSink<Stored>> sink_;
    std::shared_ptr<detail::Feeder> feeder_;  // owns the copied inputs
    std::size_t size_;
    std::size_t taken_ = 0;
    bool started_ = false;
    std::optional<Stored> current_;
};

/// A pool of worker processes (Python's multiprocessing.Pool). Not copyable or movable.
class Pool {
  public:
    /// Forks `processes` workers (0: the hardware threads, at most 24) sharing an anonymous
    /// task queue and result queue, and starts the result thread. Throws
    /// Error(invalid_argument) for more than 24 workers or bad options, and what fork and
    /// queue creation throw.
    explicit Pool(std::size_t processes = 0, PoolOptions options = {})
        : core_(std::make_unique<detail::PoolCore>(processes, std::move(options))) {}
    explicit Pool(PoolOptions options) : Pool(0, std::move(options)) {}
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    /// What Python's `with Pool() as p:` does on exit: terminate() — unfinished tasks fail
    /// with Error(closed) and workers are killed. To let queued tasks finish, close() and
    /// join() first.
    ~Pool() = default;

    /// Runs f(args...) in a worker and waits for it (Python's apply): the result, or throws
    /// what the task failed with. Blocking. Not from a callback (it would wait for itself).
    template <class F, class... Args>
    requires std::invocable<F&, std::decay_t<Args> &&...> auto apply(F function, Args&&... args) {
        if (core_->on_result_thread()) {
            throw Error(errc::invalid_argument,
                        "shuttle::Pool::apply from a callback would wait for itself");
        }
        return apply_async(function, std::forward<Args>(args)...).get();
    }

    /// Submits f(args...) and returns at once (blocks only while the task queue is full).
    template <class F, class... Args>
    requires std::invocable<F&, std::decay_t<Args> &&...> auto apply_async(F function,
                                                                           Args&&... args) {
        return submit_one(function, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...),
                          nullptr, nullptr);
    }
    /// Python's apply_async(func, args, callback=, error_callback=): `callback(result)` (or
    /// `callback()` for a void task) or `error_callback(const shuttle::Error&)` runs in this
    /// process on the result thread, before get() returns.
    template <class F, class... Args, class Callback, class ErrorCallback = std::nullptr_t>
    requires std::invocable<F&, Args&&...>
    auto apply_async(F function, std::tuple<Args...> args, Callback callback,
                     ErrorCallback error_callback = nullptr) {
        return submit_one(function, std::move(args), std::move(callback),
                          std::move(error_callback));
    }

    /// f over every input, results in input order (Python's map). Inputs go in chunks of
    /// `chunksize` items (0: Python's default, about four chunks per worker), each cut to fit
    /// PoolOptions::max_message_size. Blocking; the first failure is thrown once all settled.
    template <class F, std::ranges::forward_range Inputs>
    auto map(F function, const Inputs& inputs, std::size_t chunksize = 0) {
        return map_async(function, inputs, chunksize).get();
    }
    /// map, returning at once (blocks only while the task queue is full); the callbacks as
    /// apply_async's, with the whole vector.
    template <class F, std::ranges::forward_range Inputs, class Callback = std::nullptr_t,
              class ErrorCallback = std::nullptr_t>
    auto map_async(F function, const Inputs& inputs, std::size_t chunksize = 0,
                   Callback callback = nullptr, ErrorCallback error_callback = nullptr) {
        return map_items<typename detail::MapArguments<Inputs>::type>(
            function, inputs, chunksize, std::move(callback), std::move(error_callback));
    }
    /// map for tasks of several arguments: each input is a tuple (or pair) of them.
    template <class F, std::ranges::forward_range Inputs>
    auto starmap(F function, const Inputs& inputs, std::size_t chunksize = 0) {
        return map(function, detail::Spread<Inputs>{inputs}, chunksize);
    }
    template <class F, std::ranges::forward_range Inputs, class Callback = std::nullptr_t,
              class ErrorCallback = std::nullptr_t>
    auto starmap_async(F function, const Inputs& inputs, std::size_t chunksize = 0,
                       Callback callback = nullptr, ErrorCallback error_callback = nullptr) {
        return map_async(function, detail::Spread<Inputs>{inputs}, chunksize, std::move(callback),
                         std::move(error_callback));
    }

    /// Lazily, in input order (Python's imap; chunksize 1 by default as there): a range whose
    /// iteration yields each result as it is ready. The inputs are copied into the stream.
    template <class F, std::ranges::input_range Inputs>
    auto imap(F function, const Inputs& inputs, std::size_t chunksize = 1) {
        return stream(function, inputs, chunksize, true);
    }
    /// As imap, in the order results arrive.
    template <class F, std::ranges::input_range Inputs>
    auto imap_unordered(F function, const Inputs& inputs, std::size_t chunksize = 1) {
        return stream(function, inputs, chunksize, false);
    }

    /// No new tasks (submitting throws Error(closed)); workers exit once the queued tasks are
    /// done. Non-blocking; idempotent.
    void close() { core_->close(); }
    /// Stops now: workers are killed, unfinished tasks fail with Error(closed) (their error
    /// callbacks run in this thread). Blocks until the workers are reaped. Not from a callback.
    void terminate() { core_->terminate(); }
    /// After close(): blocks until every task has settled (callbacks included) and every
    /// worker has exited; after terminate(): returns at once. Error(invalid_argument) before
    /// either (Python's ValueError).
    void join() { (void)core_->join_until(std::chrono::steady_clock::time_point::max()); }
    /// join() waiting at most `timeout`: whether it finished.
    template <class Rep, class Period>
    bool join_for(std::chrono::duration<Rep, Period> timeout) {
        return core_->join_until(std::chrono::steady_clock::now() + timeout);
    }

    /// The number of workers the pool keeps.
    std::size_t processes() const noexcept { return core_->processes(); }
    /// The live workers' pids now. Non-blocking.
    std::vector<pid_t> worker_pids() const { return core_->worker_pids(); }
    /// Workers started so far: the initial ones plus replacements (for dead workers and
    /// maxtasksperchild).
    uint64_t workers_started() const noexcept { return core_->workers_started(); }
    /// Tasks (map chunks count once) submitted and not yet settled. Non-blocking.
    std::size_t pending() const { return core_->pending(); }

  private:
    template <class F, class Arguments, class Callback, class ErrorCallback>
    auto submit_one(F function, const Arguments& arguments, Callback callback,
                    ErrorCallback error_callback) {
        detail::require_task<F>();
        using R = detail::ApplyResult<F, Arguments>;
        using Stored = detail::Carried<R>;
        detail::require_carried<Stored>();
        auto sink = std::make_shared<detail::SingleSink<Stored>>(
            detail::result_callback<Stored>(std::move(callback)),
            detail::error_callback(std::move(error_callback)));
        std::span<std::byte> buffer = detail::task_buffer(core_->max_message_size());
        const std::size_t prefix = detail::write_task_prefix<F, Arguments>(buffer, function);
        Writer writer(buffer.subspan(prefix));
        detail::value_codec<Arguments>::encode(writer, arguments);
        if (!writer.fits()) {
            throw Error(errc::too_large, "shuttle::Pool: the task's arguments (" +
                                             std::to_string(writer.size()) +
                                             " bytes) exceed PoolOptions::max_message_size");
        }
        detail::set_task_count(buffer, 1);
        core_->submit(buffer.first(prefix + writer.size()), sink, 0, 1);
        return AsyncResult<R>(std::shared_ptr<detail::AsyncState<Stored>>(sink, sink.get()));
    }

    template <class Arguments, class F, class Inputs, class Callback, class ErrorCallback>
    auto map_items(F function, const Inputs& inputs, std::size_t chunksize, Callback callback,
                   ErrorCallback error_callback) {
        detail::require_task<F>();
        using Stored = detail::Carried<detail::ApplyResult<F, Arguments>>;
        detail::require_carried<Stored>();
        const auto size = static_cast<std::size_t>(std::ranges::distance(inputs));
        if (chunksize == 0) chunksize = detail::default_chunksize(size, processes());
        auto sink = std::make_shared<detail::MapSink<Stored>>(
            size, detail::result_callback<std::vector<Stored>>(std::move(callback)),
            detail::error_callback(std::move(error_callback)));
        detail::ChunkFeeder<F, Arguments, std::ranges::iterator_t<const Inputs>,
                            std::ranges::sentinel_t<const Inputs>>
            feeder(*core_, function, std::ranges::begin(inputs), std::ranges::end(inputs),
                   chunksize, sink);
        while (feeder.feed(true)) {
        }
        return AsyncResult<std::vector<Stored>>(
            std::shared_ptr<detail::AsyncState<std::vector<Stored>>>(sink, sink.get()));
    }

    template <class F, class Inputs>
    auto stream(F function, const Inputs& inputs, std::size_t chunksize, bool ordered) {
        using Item = std::ranges::range_value_t<Inputs>;
        using Arguments = std::tuple<Item>;
        detail::require_task<F>();
        using Stored = detail::Carried<detail::ApplyResult<F, Arguments>>;
        detail::require_carried<Stored>();
        auto items = std::make_shared<std::vector<Item>>(std::ranges::begin(inputs),
                                                         std::ranges::end(inputs));
        auto sink = std::make_shared<detail::StreamSink<Stored>>(items->size(), ordered);
        using Feeder = detail::ChunkFeeder<F, Arguments, typename std::vector<Item>::const_iterator,
                                           typename std::vector<Item>::const_iterator>;
        auto feeder = std::make_shared<Feeder>(*core_, function, items->cbegin(), items->cend(),
                                               std::max<std::size_t>(chunksize, 1), sink);
        // The feeder's iterators point into `items`: the aliasing pointer keeps both alive.
        auto owner = std::make_shared<
            std::pair<std::shared_ptr<std::vector<Item>>, std::shared_ptr<Feeder>>>(items, feeder);
        return ResultStream<Stored>(sink, std::shared_ptr<detail::Feeder>(owner, feeder.get()),
                                    items->size());
    }

    // The engine. Its destructor terminates the pool (kills workers, joins the result thread).
    std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace shuttle
