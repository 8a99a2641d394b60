// One error vocabulary for the whole library: shuttle::errc, its std::error_category,
// result<T> for the default (non-throwing) forms, and exceptions for the throwing conveniences.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace shuttle {

enum class errc : int {
    ok = 0,
    // Flow conditions: values in every default form, never exceptions there.
    full = 1,   // a non-blocking put found no free slot
    empty,      // a non-blocking get found nothing
    timeout,    // a timed wait ran out
    closed,     // this handle (or the object) was closed: no more calls through it
    eof,        // the peer end of a pipe is closed and everything it sent was read
    cancelled,  // a std::stop_token asked a blocked call to stop
    // Misuse and environment: thrown by constructors/open, values where a result is returned.
    broken_pipe,         // sending to a pipe whose peer is closed
    owner_dead,          // the previous owner of a lock died holding it
    too_large,           // a message larger than the object accepts
    buffer_too_small,    // the caller's buffer cannot hold the message (nothing is consumed)
    not_found,           // no segment of that name
    already_exists,      // create() found a segment of that name
    invalid_name,        // a segment name with a path separator, bad characters or wrong length
    invalid_argument,    // a bad parameter (zero capacity, ...)
    not_shuttle,         // not a shuttle segment: wrong magic, too small, not a regular file
    version_mismatch,    // made by an incompatible layout version
    kind_mismatch,       // a different kind of object (a pipe opened as a queue, ...)
    type_mismatch,       // element size, alignment or type tag differ
    capacity_mismatch,   // capacity or maximum message size differ
    truncated,           // the segment is smaller than its header says it must be
    corrupt,             // a header field is out of range
    permission,          // the caller may not open or create it, or another user owns it
    no_space,            // /dev/shm (or the memfd) could not be given the memory
    registry_full,       // every participant entry is taken by a live process
    not_owner,           // unlock/release by a thread that does not hold it
    wrong_end,           // sending on a receive-only end, or receiving on a send-only end
    task_done_overflow,  // task_done() called more often than items were put
    broken,              // a barrier was aborted or a party died
    cut_off,             // a pipe message was cut off (its sender died or gave up midway)
    system,              // an unexpected operating-system error (see the message)
    task_held,           // get_task() while this thread still holds an unacknowledged task
    bad_message,         // bytes that are not an encoding of the expected type (shuttle/codec.hpp)
    unavailable,         // a remote server (shuttle::nats) cannot be reached or failed the request
    worker_died,         // a Pool worker died (killed, crashed) running the task (shuttle/pool.hpp)
    task_failed,         // a Pool task threw: shuttle::TaskError carries its type and what()
    shut_down,           // a queue was shut down: puts refused everywhere; gets drained, then this
    busy,  // a non-blocking call would wait for another process (e.g. a stopped recoverer): retry
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), error_category()};
}

/// Base of every exception shuttle throws; code() carries a shuttle::errc.
/// what(): "<what>: <the code's message>", or only the code's message when `what` is empty, or
/// a whole sentence given as Error::Text (e.g. "queue is full").
class Error : public std::system_error {
  public:
    /// A complete what() text, used as it is.
    struct Text {
        std::string text;
    };

    explicit Error(errc code, const std::string& what = {})
        : std::system_error(what.empty() ? std::system_error(make_error_code(code))
                                         : std::system_error(make_error_code(code), what)) {}
    Error(errc code, Text whole)
        : std::system_error(make_error_code(code)),
          text_(std::make_shared<const std::string>(std::move(whole.text))) {}
    errc condition() const noexcept { return static_cast<errc>(code().value()); }
    const char* what() const noexcept override {
        return text_ ? text_->c_str() : std::system_error::what();
    }

  private:
    std::shared_ptr<const std::string> text_;  // shared: copying an exception must not throw
};

/// The Error that always carries `Code`: one exception class per flow condition, to catch apart.
template <errc Code>
class ErrorOf : public Error {
  public:
    explicit ErrorOf(const std::string& what = {}) : Error(Code, what) {}
    explicit ErrorOf(Text whole) : Error(Code, std::move(whole)) {}
};

/// Python's queue.Full, queue.Empty, EOFError and friends, for the throwing conveniences.
using Full = ErrorOf<errc::full>;
using Empty = ErrorOf<errc::empty>;
using EOFError = ErrorOf<errc::eof>;
using Closed = ErrorOf<errc::closed>;
using ShutDown = ErrorOf<errc::shut_down>;  // Python 3.13's queue.ShutDown
using Timeout = ErrorOf<errc::timeout>;

/// Throws the exception class that matches `code` (Full for errc::full, ...).
[[noreturn]] void throw_error(errc code, const std::string& what = {});

/// throw_error for an operation on `subject` ("queue"): Full "queue is full", Empty "queue is
/// empty", Closed "queue is closed", Timeout "queue: timed out", others "queue: <message>".
[[noreturn]] void throw_error_about(const std::string& subject, errc code);

/// Throws errc::system with errno's text, for unexpected OS failures.
[[noreturn]] void throw_system_error(int errno_value, const std::string& what);

/// A value or an errc. The default forms of every blocking and non-blocking call return one:
///     while (auto item = queue.get()) use(*item);   // ends once shut down and drained
template <class T>
class [[nodiscard]] result {
  public:
    result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
    result(errc code) : code_(code) {}             // NOLINT: implicit on purpose

    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }
    errc error() const noexcept { return code_; }

    T& operator*() & { return *value_; }
    const T& operator*() const& { return *value_; }
    T&& operator*() && { return std::move(*value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }

    /// The value, or throws the exception matching error().
    T& value() & {
        if (!value_) throw_error(code_);
        return *value_;
    }
    T&& value() && {
        if (!value_) throw_error(code_);
        return std::move(*value_);
    }

  private:
    std::optional<T> value_;
    errc code_ = errc::ok;
};

/// Success or an errc: the result of operations that produce no value.
class [[nodiscard]] status {
  public:
    status() = default;
    status(errc code) : code_(code) {}  // NOLINT: implicit on purpose
    bool ok() const noexcept { return code_ == errc::ok; }
    explicit operator bool() const noexcept { return ok(); }
    errc error() const noexcept { return code_; }
    /// Throws the exception matching error() unless ok().
    void value() const {
        if (!ok()) throw_error(code_);
    }
    friend bool operator==(status a, errc b) noexcept { return a.code_ == b; }

  private:
    errc code_ = errc::ok;
};

}  // namespace shuttle

template <>
struct std::is_error_code_enum<shuttle::errc> : std::true_type {};
