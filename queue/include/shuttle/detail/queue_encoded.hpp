// Queue<T> and JoinableQueue<T> of any T the codec knows that is not trivially copyable
// (std::string, std::vector, std::variant, cereal types, ...): a thin layer over
// BasicByteQueue<Joinable>. Each item is encoded (shuttle/codec.hpp) into one variable-length
// message of at most max_message_size bytes and decoded by the consumer; a trivially copyable T
// keeps BasicQueue's own fixed-slot path (queue.hpp). Included by queue.hpp.
//
//     using Mixed = std::variant<int, std::string, std::vector<int>>;     // the notes' queue
//     auto queue = shuttle::Queue<Mixed>::anonymous(64, 256);   // 64 items of <= 256 bytes
//     queue.put(Mixed(std::string("abc")));
//     result<Mixed> item = queue.get();
//
// Differences from Queue<T> of a trivially copyable T (everything else is the same: triads,
// guarantees, crash recovery, task accounting, thread- and process-safety):
//   * the factories take the maximum encoded size after the capacity;
//   * a put whose encoding exceeds it is errc::too_large, and nothing is put;
//   * a message that does not decode as T (possible only if someone puts raw bytes into the
//     segment) is consumed and reported as errc::bad_message, never undefined behaviour;
//   * the segment's type tag is the codec's type_fingerprint<T>() (mixed with options.type_tag),
//     so opening it as another T, or as a ByteQueue, is Error(type_mismatch);
//   * put/get may throw what encoding or decoding a user type throws (and std::bad_alloc), so
//     try_put / try_get are not noexcept.
#pragma once

#include <concepts>
#include <optional>
#include <type_traits>
#include <vector>

#include "shuttle/codec.hpp"

namespace shuttle {

namespace detail {
/// The T a Queue<T> carries as encoded messages rather than fixed slots.
template <class T>
concept encoded_queue_item = !std::is_trivially_copyable_v<T> && encodable<T>;
}  // namespace detail

template <class T, bool Joinable>
requires detail::encoded_queue_item<T>
class BasicQueue<T, Joinable> : public BasicByteQueue<Joinable>,
                                public detail::PutTriad<BasicQueue<T, Joinable>, const T&>,
                                public detail::GetTriad<BasicQueue<T, Joinable>>,
                                public detail::GetTaskTriad<BasicQueue<T, Joinable>, Joinable> {
    using Bytes = BasicByteQueue<Joinable>;
    using Puts = detail::PutTriad<BasicQueue, const T&>;
    using Gets = detail::GetTriad<BasicQueue>;
    using GetTasks = detail::GetTaskTriad<BasicQueue, Joinable>;

  public:
    /// The maximum encoded size the factories use when none is given.
    static constexpr std::size_t default_max_message_size = 256;

    BasicQueue() = default;

    /// Creates a named queue of `capacity` items, each encoding to at most `max_message_size`
    /// bytes. Throws as Queue<T>::create.
    static BasicQueue create(std::string_view name, std::size_t capacity,
                             std::size_t max_message_size = default_max_message_size,
                             const QueueOptions& options = {}) {
        return BasicQueue(Bytes::create(name, capacity, max_message_size, tagged(options)));
    }
    /// Attaches to a named queue of this T (Error(type_mismatch) for another T).
    static BasicQueue open(std::string_view name, const QueueOptions& options = {}) {
        return BasicQueue(Bytes::open(name, tagged(options)));
    }
    static BasicQueue open_or_create(std::string_view name, std::size_t capacity,
                                     std::size_t max_message_size = default_max_message_size,
                                     const QueueOptions& options = {}) {
        return BasicQueue(Bytes::open_or_create(name, capacity, max_message_size, tagged(options)));
    }
    /// Shared with children fork()ed after it.
    static BasicQueue anonymous(std::size_t capacity,
                                std::size_t max_message_size = default_max_message_size,
                                const QueueOptions& options = {}) {
        return BasicQueue(Bytes::anonymous(capacity, max_message_size, tagged(options)));
    }
    static BasicQueue open_fd(int fd, const QueueOptions& options = {}) {
        return BasicQueue(Bytes::open_fd(fd, tagged(options)));
    }

    // The triads (detail/triads.hpp) of T, hiding the byte queue's: put, put_for, put_nowait
    // (throws Full, ShutDown, Closed or Error(too_large)); get, get_for, get_nowait (throws
    // Empty, ShutDown, Closed or Error(bad_message)); get_task, get_task_for.
    using Gets::get;
    using Gets::get_for;
    using Gets::get_nowait;
    using GetTasks::get_task;
    using GetTasks::get_task_for;
    using Puts::put;
    using Puts::put_for;
    using Puts::put_nowait;

    /// Waits at most until `deadline` while the queue is full: ok, timeout, too_large (nothing
    /// put), shut_down, closed or cancelled.
    status put_until(const T& item, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        result<std::span<const std::byte>> message = encoded(item);
        if (!message) return message.error();
        return Bytes::put_until(*message, deadline, stop);
    }
    /// Never blocks: ok, full, too_large, shut_down or closed.
    status try_put(const T& item) {
        result<std::span<const std::byte>> message = encoded(item);
        if (!message) return message.error();
        return Bytes::try_put(*message);
    }

    /// Waits at most until `deadline` while the queue is empty: the item, timeout, shut_down
    /// (shut down and drained), closed, cancelled, or bad_message (a message that is not a T;
    /// consumed).
    result<T> get_until(steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        T item{};
        if (status got = get_until(item, deadline, stop); !got) return got.error();
        return item;
    }
    /// The same into `out`, reusing its storage (a string's capacity, ...): ok or the error.
    status get_until(T& out, steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        result<std::size_t> length = Bytes::get_until(buffer(), deadline, stop);
        return length ? decoded(*length, out) : status(length.error());
    }
    /// Blocks while the queue is empty, into `out`: ok or the error, as get_until(out, ...).
    status get(T& out, const std::stop_token& stop = {}) {
        return get_until(out, no_deadline, stop);
    }
    /// Never blocks: the item, empty, shut_down, closed or bad_message.
    result<T> try_get() {
        T item{};
        if (status got = try_get(item); !got) return got.error();
        return item;
    }
    status try_get(T& out) {
        result<std::size_t> length = Bytes::try_get(buffer());
        return length ? decoded(*length, out) : status(length.error());
    }

    /// At-least-once get (JoinableQueue with QueueOptions::redelivery), as Queue<T>'s. A message
    /// that is not a T is acknowledged (it would only come back) and reported as bad_message.
    result<Task<T>> try_get_task() requires Joinable {
        return task_of(Bytes::try_get_task(buffer()));
    }
    result<Task<T>> get_task_until(steady_clock::time_point deadline,
                                   const std::stop_token& stop = {}) requires Joinable {
        return task_of(Bytes::get_task_until(buffer(), deadline, stop));
    }

  private:
    explicit BasicQueue(Bytes&& bytes) : Bytes(std::move(bytes)) {}

    static QueueOptions tagged(QueueOptions options) noexcept {
        options.type_tag ^= type_fingerprint<T>();
        return options;
    }

    /// `item` encoded into this thread's buffer, or too_large (nothing encoded).
    result<std::span<const std::byte>> encoded(const T& item) const {
        thread_local std::vector<std::byte> scratch;
        const std::size_t size = encoded_size(item);
        if (size > this->max_message_size()) return errc::too_large;
        scratch.resize(size);
        (void)encode(item, std::span<std::byte>(scratch));
        return std::span<const std::byte>(scratch);
    }
    /// This thread's receive buffer, as large as any message of this queue.
    std::span<std::byte> buffer() const {
        thread_local std::vector<std::byte> scratch;
        if (scratch.size() < this->max_message_size()) scratch.resize(this->max_message_size());
        return scratch;
    }
    status decoded(std::size_t length, T& out) const {
        return decode(std::span<const std::byte>(buffer().data(), length), out);
    }
    result<Task<T>> task_of(result<ByteTask> task) requires Joinable {
        if (!task) return task.error();
        Task<T> decoded_task{T{}, task->id};
        if (status got = decoded(task->length, decoded_task.item); !got) {
            (void)this->task_done(task->id);
            return got.error();
        }
        return decoded_task;
    }
};

}  // namespace shuttle
