// shuttle::nats::Queue<T>, JoinableQueue<T>, ByteQueue, JoinableByteQueue: shuttle's queues
// beyond one machine, over NATS JetStream (docs/nats.md). The API is the local queue's
// (shuttle/queue.hpp): moving a program is a change of its constructor.
//
//     auto nats = shuttle::nats::Connection::connect({.servers = {"nats://10.0.0.5:4222"}});
//     auto jobs = shuttle::nats::JoinableQueue<Job>::open_or_create(nats, "jobs", 1024);
//     jobs.put(job);                                             // blocks while full
//     while (auto job = jobs.get()) { run(*job); (void)jobs.task_done(); }
//
// Mapping: a queue is a stream with work-queue retention (each item goes to one getter),
// MaxMsgs = capacity and discard-new (a full queue refuses a put: errc::full), and one durable
// pull consumer shared by every getter (explicit acks, AckWait = QueueOptions::ack_wait).
// Every put carries a message id: a put retried after a lost answer is stored once.
//
// Differences from the local queue (docs/nats.md): delivery is at-least-once (an item whose
// getter does not acknowledge it within ack_wait, or dies, is delivered again); every call is
// a network round trip (~0.1 ms, not ~0.1 µs), so try_x() does not wait for room or items but
// does wait for the server's answer (at most ConnectionOptions::call_timeout); size() and
// unfinished_tasks() are round trips whose answer is already old when it arrives; T is any type
// shuttle's codec encodes. A handle is not inherited across fork(): each process connects.
//
// Thread safety: every member may be called from any thread; threads sharing one handle take
// turns in get() (a pull subscription serves one fetch at a time): give each getter thread its
// own handle to fetch in parallel.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "shuttle/codec.hpp"
#include "shuttle/detail/nats_core.hpp"
#include "shuttle/detail/triads.hpp"
#include "shuttle/error.hpp"
#include "shuttle/nats_types.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::nats {

/// A connection to a NATS server or cluster, shared by the queue handles made with it (copies
/// share it; the last one closes it). Reconnects by itself after a lost connection or a server
/// restart (ConnectionOptions::max_reconnects); calls made meanwhile wait within their deadline.
/// Thread-safe. Not usable in a fork()ed child: connect again there.
class Connection {
  public:
    /// Connects to one of options.servers. Throws Error(unavailable) with libnats's reason if
    /// none answers within connect_timeout (unless retry_on_failed_connect), or
    /// Error(invalid_argument) for options libnats refuses (a missing TLS file, ...). Blocking.
    static Connection connect(const ConnectionOptions& options = {});

    /// Whether the connection is up now (false while reconnecting). Non-blocking.
    bool connected() const noexcept;
    /// How many times it reconnected since connect(). Non-blocking.
    std::uint64_t reconnects() const noexcept;
    /// The URL of the server it is connected to ("" while disconnected). Non-blocking.
    std::string server() const;

    const std::shared_ptr<detail::ConnectionState>& state() const noexcept { return state_; }

  private:
    explicit Connection(std::shared_ptr<detail::ConnectionState> state)
        : state_(std::move(state)) {}
    std::shared_ptr<detail::ConnectionState> state_;
};

namespace detail {

/// The largest encoded item a Queue<T> accepts: NATS's default max_payload (1 MiB) less room
/// for the headers.
inline constexpr std::size_t default_max_message_size = (std::size_t{1} << 20) - 4096;

/// What every queue handle has: shutdown, size, join and task accounting.
template <bool Joinable>
class RemoteQueueHandle : public shuttle::detail::JoinTriad<RemoteQueueHandle<Joinable>, Joinable> {
  public:
    /// Shuts the queue down for every client (as shuttle::Queue's shutdown(), issue 14 §1):
    /// later puts anywhere return errc::shut_down; gets drain what is left (an item held
    /// unacknowledged by a getter counts: it may come back), then return errc::shut_down. With
    /// `immediate`, also discards what is queued (held items too) and returns how many. Blocking:
    /// round trips, retried for up to five call_timeouts while they time out (a reconnect, a
    /// cluster electing a leader); then throws Error(timeout/unavailable). Thread-safe, idempotent.
    /// size(), closed(), full() and unfinished_tasks() retry the same way.
    std::size_t shutdown(bool immediate = false) { return core_.shutdown(immediate); }
    /// Still shutdown(false) here (the local queue's close() is per handle: to align).
    void close() { (void)shutdown(false); }
    /// Whether the queue was shut down. A round trip; throws Error(timeout/unavailable).
    bool is_shutdown() const { return core_.closed(); }
    bool closed() const { return core_.closed(); }
    /// Items queued and not yet delivered to a getter: a round trip, so old when it returns.
    /// Throws Error(timeout/unavailable).
    std::size_t size() const { return core_.size(); }
    bool empty() const { return size() == 0; }
    std::size_t capacity() const noexcept { return core_.capacity(); }
    /// Items in the stream (queued or delivered and not yet acknowledged) >= capacity: a put
    /// would be refused. A round trip.
    bool full() const { return core_.unfinished_tasks() >= capacity(); }
    const std::string& name() const noexcept { return core_.name(); }
    /// Deliveries past the first, of items now in the stream. A round trip. Diagnostic.
    std::uint64_t redelivered_count() const requires Joinable { return core_.redelivered_count(); }

    /// Acknowledges the oldest item this handle took with get() and has not acknowledged:
    /// it leaves the stream and counts for join(). errc::task_done_overflow if this handle
    /// holds none (unlike the local queue, task_done() is per handle: the item is a message
    /// to acknowledge, not a count); errc::timeout if the server did not confirm (the item
    /// stays held: call again). Blocking (one round trip); thread-safe.
    status task_done() requires Joinable { return core_.task_done(); }
    /// Acknowledges a task from get_task(). errc::not_owner if it is not held by this handle
    /// (already acknowledged, or another handle's); errc::timeout as task_done().
    status task_done(const TaskId& task) requires Joinable { return core_.task_done(task); }
    template <class Item>
    status task_done(const Task<Item>& task) requires Joinable {
        return core_.task_done(task.id);
    }
    status task_done(const ByteTask& task) requires Joinable { return core_.task_done(task.id); }

    /// Waits until every item put (by anyone) is acknowledged (the stream is empty), at most
    /// until `deadline`; join() blocks, join_for() waits a timeout (detail/triads.hpp). Polls
    /// the stream with a backoff (1 ms to 50 ms). ok, timeout or cancelled.
    status join_until(steady_clock::time_point deadline,
                      const std::stop_token& stop = {}) requires Joinable {
        return core_.join_until(deadline, stop);
    }
    /// Items put and not yet acknowledged (messages in the stream). A round trip.
    std::size_t unfinished_tasks() const requires Joinable { return core_.unfinished_tasks(); }

  protected:
    explicit RemoteQueueHandle(QueueCore core) : core_(std::move(core)) {}
    QueueCore core_;
};

}  // namespace detail

/// A bounded MPMC queue of any T shuttle's codec encodes, in a JetStream stream (Python's
/// multiprocessing Queue across machines; JoinableQueue when Joinable).
template <class T, bool Joinable = false>
class BasicQueue : public detail::RemoteQueueHandle<Joinable>,
                   public shuttle::detail::PutTriad<BasicQueue<T, Joinable>, const T&>,
                   public shuttle::detail::GetTriad<BasicQueue<T, Joinable>>,
                   public shuttle::detail::GetTaskTriad<BasicQueue<T, Joinable>, Joinable> {
    using Handle = detail::RemoteQueueHandle<Joinable>;
    using Handle::core_;
    static constexpr detail::QueueForm form{Joinable, detail::default_max_message_size,
                                            type_fingerprint<T>()};

  public:
    /// Makes the queue's stream and consumer. Throws Error(already_exists) if the stream
    /// exists, Error(invalid_name) for a name that is not [A-Za-z0-9_-]+, Error(invalid_argument)
    /// for capacity 0, Error(timeout/unavailable) if the server does not answer. Blocking.
    static BasicQueue create(const Connection& connection, std::string_view name,
                             std::size_t capacity, const QueueOptions& options = {}) {
        return BasicQueue(make(connection, name, detail::OpenMode::create, capacity, options));
    }
    /// Opens an existing queue: Error(not_found), Error(type_mismatch) if it holds another T,
    /// Error(kind_mismatch) if it is joinable and this is not (or the reverse).
    static BasicQueue open(const Connection& connection, std::string_view name) {
        return BasicQueue(make(connection, name, detail::OpenMode::open, 0, {}));
    }
    /// Opens it, or creates it with `capacity`: Error(capacity_mismatch) if it exists with
    /// another capacity. Safe against concurrent creators.
    static BasicQueue open_or_create(const Connection& connection, std::string_view name,
                                     std::size_t capacity, const QueueOptions& options = {}) {
        return BasicQueue(
            make(connection, name, detail::OpenMode::open_or_create, capacity, options));
    }
    /// Deletes the queue's stream and everything in it (handles still open then fail with
    /// not_found). No error if it does not exist.
    static void remove(const Connection& connection, std::string_view name) {
        detail::QueueCore::remove(connection.state(), name);
    }

    // The triads (shuttle/detail/triads.hpp), as the local queue's: x_until and try_x here;
    // x (blocks), x_for (waits a timeout) and x_nowait (throws) from the bases.

    /// Waits while the queue is full (retrying with a backoff) and through lost connections
    /// (retrying with the same message id, so the item is stored once), at most until
    /// `deadline`. ok, timeout, closed, cancelled, too_large (its encoding exceeds 1 MiB less
    /// 4 KiB). put(item) blocks.
    status put_until(const T& item, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        auto bytes = encode(item);
        return core_.put_until(bytes, deadline, stop);
    }
    /// One attempt, without waiting for room: ok, full, closed, timeout (no answer within
    /// call_timeout), too_large. Blocks for one round trip.
    status try_put(const T& item) {
        auto bytes = encode(item);
        return core_.try_put(bytes);
    }

    /// Puts every item, published asynchronously (one round trip's wait for the whole batch):
    /// ok once all are stored, else closed, timeout, cancelled, too_large — and then any
    /// subset may have been stored. Waits for room as put(); items refused as full are
    /// published again after those accepted (their order among the batch can change then).
    status put_many(std::span<const T> items, const std::stop_token& stop = {}) {
        return put_many_until(items, no_deadline, stop);
    }
    template <class Rep, class Period>
    status put_many_for(std::span<const T> items, std::chrono::duration<Rep, Period> timeout,
                        const std::stop_token& stop = {}) {
        return put_many_until(items, deadline_after(timeout), stop);
    }
    status put_many_until(std::span<const T> items, steady_clock::time_point deadline,
                          const std::stop_token& stop = {}) {
        std::vector<std::byte> bytes;
        std::vector<std::size_t> ends;
        ends.reserve(items.size());
        for (const T& item : items) {
            const std::size_t start = bytes.size();
            bytes.resize(start + encoded_size(item));
            (void)encode(item, std::span(bytes).subspan(start));
            ends.push_back(bytes.size());
        }
        std::vector<std::span<const std::byte>> messages;
        messages.reserve(items.size());
        std::size_t start = 0;
        for (std::size_t end : ends) {
            messages.push_back(std::span<const std::byte>(bytes).subspan(start, end - start));
            start = end;
        }
        return core_.put_many_until(messages, deadline, stop);
    }

    /// Waits at most until `deadline` while the queue is empty: the item, or timeout, closed
    /// (closed and drained), cancelled, bad_message (bytes that do not decode as T: that message
    /// is dropped). Queue acknowledges the item at once; JoinableQueue holds it until
    /// task_done() (redelivered after ack_wait otherwise). get() blocks.
    result<T> get_until(steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        return get_one(deadline, stop, false);
    }
    /// Does not wait for an item: the item, empty or closed (or timeout: no answer). One round
    /// trip.
    result<T> try_get() { return get_one(no_deadline, {}, true); }

    /// Up to `max` items in one fetch, waiting until the first arrives: as get(), each item
    /// held (JoinableQueue: one task_done() each) or acknowledged (Queue).
    result<std::vector<T>> get_many(std::size_t max, const std::stop_token& stop = {}) {
        return get_many_until(max, no_deadline, stop);
    }
    result<std::vector<T>> try_get_many(std::size_t max) {
        return get_many_impl(max, no_deadline, {}, true);
    }
    template <class Rep, class Period>
    result<std::vector<T>> get_many_for(std::size_t max, std::chrono::duration<Rep, Period> timeout,
                                        const std::stop_token& stop = {}) {
        return get_many_until(max, deadline_after(timeout), stop);
    }
    result<std::vector<T>> get_many_until(std::size_t max, steady_clock::time_point deadline,
                                          const std::stop_token& stop = {}) {
        return get_many_impl(max, deadline, stop, false);
    }

    /// At-least-once get: the item stays held by this handle until task_done(task); if this
    /// process dies, or does not acknowledge it within ack_wait, it is delivered again to any
    /// getter. Waiting as get_until(); get_task() blocks. (Unlike the local queue a thread may
    /// hold several tasks.)
    result<Task<T>> try_get_task() requires Joinable { return get_task_one(no_deadline, {}, true); }
    result<Task<T>> get_task_until(steady_clock::time_point deadline,
                                   const std::stop_token& stop = {}) requires Joinable {
        return get_task_one(deadline, stop, false);
    }

  private:
    explicit BasicQueue(detail::QueueCore core) : Handle(std::move(core)) {}
    static detail::QueueCore make(const Connection& connection, std::string_view name,
                                  detail::OpenMode mode, std::size_t capacity,
                                  const QueueOptions& options) {
        return detail::QueueCore(connection.state(), name, mode, capacity, form, options);
    }
    static constexpr detail::Hold plain_hold = Joinable ? detail::Hold::fifo : detail::Hold::none;

    static auto decoder(T& item) {
        return [&item](std::span<const std::byte> bytes) { return decode(bytes, item).error(); };
    }
    result<T> get_one(steady_clock::time_point deadline, const std::stop_token& stop,
                      bool try_once) {
        T item{};
        auto decode_into = decoder(item);
        errc rc = core_.get_until(detail::consumer_of(decode_into), plain_hold, nullptr, deadline,
                                  stop, try_once);
        if (rc != errc::ok) return rc;
        return item;
    }
    result<Task<T>> get_task_one(steady_clock::time_point deadline, const std::stop_token& stop,
                                 bool try_once) {
        Task<T> task{};
        auto decode_into = decoder(task.item);
        errc rc = core_.get_until(detail::consumer_of(decode_into), detail::Hold::task, &task.id,
                                  deadline, stop, try_once);
        if (rc != errc::ok) return rc;
        return task;
    }
    result<std::vector<T>> get_many_impl(std::size_t max, steady_clock::time_point deadline,
                                         const std::stop_token& stop, bool try_once) {
        std::vector<T> items;
        items.reserve(max);
        auto decode_next = [&items](std::span<const std::byte> bytes) {
            T item{};
            if (status decoded = decode(bytes, item); !decoded) return decoded.error();
            items.push_back(std::move(item));
            return errc::ok;
        };
        auto got = core_.get_many_until(max, detail::consumer_of(decode_next), plain_hold, deadline,
                                        stop, try_once);
        if (!got) return got.error();
        return items;
    }
};

template <class T>
using Queue = BasicQueue<T>;
template <class T>
using JoinableQueue = BasicQueue<T, true>;

/// A bounded MPMC queue of byte messages up to max_message_size each (fixed at creation), in a
/// JetStream stream. Same guarantees and forms as Queue<T>.
template <bool Joinable = false>
class BasicByteQueue
    : public detail::RemoteQueueHandle<Joinable>,
      public shuttle::detail::PutTriad<BasicByteQueue<Joinable>, std::span<const std::byte>,
                                       std::string_view>,
      public shuttle::detail::GetTriad<BasicByteQueue<Joinable>, std::span<std::byte>>,
      public shuttle::detail::GetTaskTriad<BasicByteQueue<Joinable>, Joinable,
                                           std::span<std::byte>> {
    using Handle = detail::RemoteQueueHandle<Joinable>;
    using Handle::core_;

  public:
    static BasicByteQueue create(const Connection& connection, std::string_view name,
                                 std::size_t capacity, std::size_t max_message_size,
                                 const QueueOptions& options = {}) {
        return BasicByteQueue(detail::QueueCore(connection.state(), name, detail::OpenMode::create,
                                                capacity, form(max_message_size), options));
    }
    /// Opens an existing byte queue; its max_message_size is the queue's.
    static BasicByteQueue open(const Connection& connection, std::string_view name) {
        return BasicByteQueue(
            detail::QueueCore(connection.state(), name, detail::OpenMode::open, 0, form(0), {}));
    }
    static BasicByteQueue open_or_create(const Connection& connection, std::string_view name,
                                         std::size_t capacity, std::size_t max_message_size,
                                         const QueueOptions& options = {}) {
        return BasicByteQueue(detail::QueueCore(connection.state(), name,
                                                detail::OpenMode::open_or_create, capacity,
                                                form(max_message_size), options));
    }
    static void remove(const Connection& connection, std::string_view name) {
        detail::QueueCore::remove(connection.state(), name);
    }

    std::size_t max_message_size() const noexcept { return core_.max_message_size(); }

    // The triads as Queue<T>'s (put, put_for, put_nowait of a span or a string_view; get,
    // get_for, get_nowait and get_task, get_task_for into a buffer).

    /// As Queue<T>::put_until; errc::too_large (nothing sent) past max_message_size().
    status put_until(std::span<const std::byte> message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return core_.put_until(message, deadline, stop);
    }
    status put_until(std::string_view message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return put_until(bytes_of(message), deadline, stop);
    }
    status try_put(std::span<const std::byte> message) { return core_.try_put(message); }
    status try_put(std::string_view message) { return try_put(bytes_of(message)); }
    /// As Queue<T>::put_many.
    status put_many(std::span<const std::span<const std::byte>> messages,
                    const std::stop_token& stop = {}) {
        return core_.put_many_until(messages, no_deadline, stop);
    }

    /// Takes one message into `buffer`, returning its length, waiting at most until
    /// `deadline`. errc::buffer_too_small if it does not fit: nothing is consumed (the handle
    /// keeps it for the next get).
    result<std::size_t> get_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                  const std::stop_token& stop = {}) {
        return get_into(buffer, deadline, stop, plain_hold, nullptr, false);
    }
    result<std::size_t> try_get(std::span<std::byte> buffer) {
        return get_into(buffer, no_deadline, {}, detail::Hold::none, nullptr, true);
    }

    /// At-least-once get into `buffer`, as JoinableQueue<T>::get_task_until.
    result<ByteTask> get_task_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                    const std::stop_token& stop = {}) requires Joinable {
        ByteTask task;
        auto length = get_into(buffer, deadline, stop, detail::Hold::task, &task.id, false);
        if (!length) return length.error();
        task.length = *length;
        return task;
    }

  private:
    explicit BasicByteQueue(detail::QueueCore core) : Handle(std::move(core)) {}
    static constexpr detail::Hold plain_hold = Joinable ? detail::Hold::fifo : detail::Hold::none;
    static detail::QueueForm form(std::size_t max_message_size) {
        return {Joinable, max_message_size, 0};
    }
    static std::span<const std::byte> bytes_of(std::string_view message) noexcept {
        return std::as_bytes(std::span(message.data(), message.size()));
    }
    result<std::size_t> get_into(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                 const std::stop_token& stop, detail::Hold hold, TaskId* task,
                                 bool try_once) {
        std::size_t length = 0;
        auto copy = [&](std::span<const std::byte> bytes) {
            if (bytes.size() > buffer.size()) return errc::buffer_too_small;
            if (!bytes.empty()) std::memcpy(buffer.data(), bytes.data(), bytes.size());
            length = bytes.size();
            return errc::ok;
        };
        errc rc = core_.get_until(detail::consumer_of(copy), hold, task, deadline, stop, try_once);
        if (rc != errc::ok) return rc;
        return length;
    }
};

using ByteQueue = BasicByteQueue<false>;
using JoinableByteQueue = BasicByteQueue<true>;

}  // namespace shuttle::nats
