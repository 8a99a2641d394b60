// shuttle::Queue<T>, JoinableQueue<T>, ByteQueue, JoinableByteQueue: bounded MPMC queues in
// shared memory, used from many threads in many processes at once.
//
//     auto queue = shuttle::Queue<Job>::create("jobs", 1024);      // or ::anonymous(1024)
//     queue.put(job);                                               // blocks while full
//     while (auto job = queue.get()) run(*job);                     // ends once shut down +
//     drained queue.shutdown();                              // (elsewhere) no more puts by anyone
//
// Every operation comes as a triad: x() blocks, try_x() never blocks, x_for()/x_until() wait at
// most that long (zero or negative: try once). Results tell ok, full, empty, timeout, shut_down
// (the queue), closed (this handle), cancelled apart; the *_nowait conveniences throw
// Full/Empty/ShutDown/Closed as Python's do.
//
// Guarantees: among live processes every accepted item is delivered exactly once; the items of
// one producer reach any one consumer in the order they were put. Memory ordering: a put
// happens-before the get that returns its item (everything the producer wrote before put() is
// visible to the consumer after get()), and a get happens-before the put that reuses its slot;
// task_done() happens-before the join() it lets return. (The pairs behind this are numbered in
// detail/queue_ring.hpp; tested on x86-64 only.) A process killed while blocked
// in put/get/join holds nothing: the queue stays fully usable. Thread- and process-safe: all
// members may be called concurrently from any thread of any process holding a handle, up to
// QueueOptions::max_participants threads at once (each thread that uses a handle takes one
// registry entry until the handle is destroyed).
//
// At-least-once (JoinableQueue created with QueueOptions::redelivery): get_task() returns the
// item with a task handle; if its holder dies (or destroys its handle) before task_done(task),
// the item is delivered again to another consumer (docs/recovery.md):
//
//     auto queue = shuttle::JoinableQueue<Job>::create("jobs", 1024, {.redelivery = true});
//     while (auto task = queue.get_task()) { run(task->item); (void)queue.task_done(*task); }
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <span>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shuttle/detail/named_object.hpp"
#include "shuttle/detail/queue_core.hpp"
#include "shuttle/error.hpp"
#include "shuttle/queue_types.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {
namespace detail {

// Segment set-up shared by every queue form (queue/src/queue_segment.cpp).

/// A queue form as its segment's header records it: the kind and element fingerprint every
/// create() writes and every open() checks, and whether it is joinable / variable-length.
struct QueueForm {
    ObjectKind kind;
    uint64_t element_size;
    uint64_t element_align;
    bool joinable;
    bool variable_length;  // ByteQueue: messages up to max_message_size
};

/// A new queue segment of this form, its body laid out: named, or anonymous (a memfd shared
/// with fork()ed children) if `name` is empty. Throws Error(invalid_argument) for a capacity,
/// message size or participant count out of range, or redelivery on a plain queue, and what
/// Segment::create throws.
Segment make_queue_segment(std::string_view name, const QueueForm& form, uint64_t capacity,
                           uint64_t max_message_size, const QueueOptions& options);

/// What open() requires of a queue segment of this kind and element fingerprint.
SegmentExpectation queue_expectation(ObjectKind kind, uint64_t element_size, uint64_t element_align,
                                     uint64_t type_tag);
/// The same for a form opened with `options` (Error(invalid_argument): redelivery asked of a
/// plain queue).
SegmentExpectation queue_expectation(const QueueForm& form, const QueueOptions& options);
/// Refuses (Error(kind_mismatch), naming what it holds) a segment of another queue form:
/// joinable or not, with redelivery or not.
void check_queue_form(const Segment& segment, const QueueForm& form, const QueueOptions& options);

/// What every queue handle has: shutdown, size, and (Joinable) task accounting.
///
/// An empty handle (default-constructed, or moved from) behaves as a closed, drained queue of
/// capacity 0: every put, get, task_done and join returns errc::closed (the throwing
/// conveniences throw Closed), counts are 0, close()/shutdown() do nothing, and nothing it does
/// reaches the queue of the handle it was moved to.
template <bool Joinable>
class QueueHandle {
  public:
    /// Closes this handle only (Python's Queue.close(): "this process puts no more"): its later
    /// put/get/get_task calls (every form) return errc::closed (Closed from the *_nowait
    /// forms), and its own blocked ones wake and return closed. Other handles, in this process
    /// or others, are unaffected and the queue stays up. task_done(), join(), shutdown() and
    /// the diagnostics still work through it (as in Python). Memory and registry entries are
    /// released when the handle is destroyed. Non-blocking, idempotent, thread-safe.
    void close() noexcept { core_.close(); }
    /// Whether close() was called on this handle.
    bool closed() const noexcept { return core_.closed(); }

    /// Shuts the queue down for everyone (Python 3.13's Queue.shutdown()): later puts through
    /// any handle in any process return errc::shut_down (ShutDown from put_nowait); gets drain
    /// what is left, then return errc::shut_down, so `while (auto item = q.get())` ends. Wakes
    /// every blocked put/get/join in every process. With `immediate` it also discards what is
    /// queued (each discarded item counts as task_done(), as shutdown(immediate=True)); returns
    /// how many items it discarded (0 unless immediate). Not undone. Without `immediate`
    /// non-blocking; with it, may wait for puts in progress when it shut down. Idempotent,
    /// thread- and process-safe.
    std::size_t shutdown(bool immediate = false) noexcept { return core_.shutdown(immediate); }
    /// Whether the queue was shut down (by any handle in any process). Non-blocking.
    bool is_shutdown() const noexcept { return core_.is_shutdown(); }
    /// Items queued (approximate while others put or get). Non-blocking.
    std::size_t size() const noexcept { return core_.size(); }
    bool empty() const noexcept { return size() == 0; }
    bool full() const noexcept { return size() >= capacity(); }
    std::size_t capacity() const noexcept { return core_.capacity(); }

    /// Threads, in any process, blocked in get() (waiting for an item) / in put() (waiting for
    /// room) right now. Diagnostic; approximate.
    std::size_t waiting_getters() const noexcept { return core_.waiting(true); }
    std::size_t waiting_putters() const noexcept { return core_.waiting(false); }

    /// Name of a named queue ("" when anonymous).
    const std::string& name() const noexcept { return core_.segment().name(); }
    /// The segment's descriptor (close-on-exec unless set_inheritable(true)): an exec'd program
    /// attaches with open_fd().
    int fd() const noexcept { return core_.segment().fd(); }
    /// A descriptor for event loops (epoll, poll, Boost.Asio; docs/event_loop.md) that polls
    /// readable when a get through this handle would not block: an item is there, or the queue
    /// was shut down, or this handle closed. Level-triggered, and sometimes spurious: on
    /// readiness call try_get() until it says empty (that re-arms the descriptor; it stays
    /// readable until then). The same rule makes edge-triggered use (EPOLLET) correct. A
    /// producer in any process makes it readable. Owned by the handle (do not close it), one
    /// per handle and process (a fork()ed child calling this gets its own). Thread-safe,
    /// non-blocking. Throws Error(registry_full) when 32 live descriptors wait on this side
    /// already, Error(closed) on an empty handle.
    int get_descriptor() { return core_.descriptor(true).value(); }
    /// The same for put: readable when a put would not block (room, shutdown, closed);
    /// try_put() saying full re-arms it.
    int put_descriptor() { return core_.descriptor(false).value(); }
    /// Throws Error(closed) on an empty handle.
    void set_inheritable(bool inheritable) {
        if (!core_.attached())
            throw Closed("empty queue handle (default-constructed or moved from)");
        const_cast<Segment&>(core_.segment()).set_inheritable(inheritable);
    }

    // ---- crash recovery (docs/recovery.md) -----------------------------------------------------
    // A process killed mid-put or mid-get leaves its slot claimed; survivors blocked in put,
    // get or join repair it themselves within milliseconds of the death (only on proven death:
    // never because a process is slow or stopped). These calls inspect or force that work.

    /// Repairs now what killed processes left (slots, task counts, waiter bits). Non-blocking:
    /// false if another live process is recovering at this moment. Thread- and process-safe.
    bool recover() noexcept { return core_.recover(); }
    /// Items lost with killed processes since creation (each also in lost_items() while it is
    /// among the last 32). Non-blocking.
    std::uint64_t lost_count() const noexcept { return core_.lost_count(); }
    /// The journal of the last 32 lost items, oldest first: ticket, operation, pid, length and,
    /// for an item its consumer was killed holding, its first 192 bytes. Non-blocking.
    std::vector<LostItem> lost_items() const { return core_.lost_items(); }
    /// Live processes that hold a slot mid-operation now: what a stuck survivor waits on (a
    /// stopped process is alive: the queue waits for it). Non-blocking; reads /proc.
    std::vector<Stall> stalls() const { return core_.stalls(); }
    /// Diagnostic: cursors, the recovery lock and every registry entry's announcement, as text.
    std::string describe_recovery() const { return core_.describe_recovery(); }

    // ---- JoinableQueue only ------------------------------------------------------------------

    /// Marks one item taken by get() as processed. errc::task_done_overflow (nothing changes)
    /// if called more often than items were put. Non-blocking; thread- and process-safe.
    status task_done() noexcept requires Joinable { return core_.task_done(); }

    /// Acknowledges a task got with get_task() (redelivery): it will not be redelivered, and it
    /// counts as task_done(). Call it from the thread that got the task, through the same
    /// handle. errc::not_owner if the task is stale (already acknowledged, or redelivered after
    /// its holder lost it) or another thread holds it; errc::invalid_argument if it belongs to
    /// another queue; nothing changes then. Non-blocking; thread- and process-safe.
    status task_done(const TaskId& task) noexcept requires Joinable {
        return core_.task_done(task);
    }
    template <class Item>
    status task_done(const Task<Item>& task) noexcept requires Joinable {
        return core_.task_done(task.id);
    }
    status task_done(const ByteTask& task) noexcept requires Joinable {
        return core_.task_done(task.id);
    }
    /// Whether the queue was created with QueueOptions::redelivery.
    bool redelivery() const noexcept { return core_.redelivery(); }
    /// Tasks delivered again because their holder died before acknowledging them (each
    /// redelivery counts once; docs/recovery.md says when an item can arrive twice).
    std::uint64_t redelivered_count() const noexcept { return core_.redelivered_count(); }

    /// Blocks until every item put has been task_done()'d (across processes). Returns ok,
    /// timeout, or cancelled. A joiner killed while waiting leaves nothing behind.
    status join(const std::stop_token& stop = {}) requires Joinable {
        return core_.join_until(no_deadline, stop);
    }
    template <class Rep, class Period>
    status join_for(std::chrono::duration<Rep, Period> timeout,
                    const std::stop_token& stop = {}) requires Joinable {
        return core_.join_until(deadline_after(timeout), stop);
    }
    status join_until(steady_clock::time_point deadline,
                      const std::stop_token& stop = {}) requires Joinable {
        return core_.join_until(deadline, stop);
    }
    /// Items put but not yet task_done()'d (nor settled for a killed process).
    std::size_t unfinished_tasks() const noexcept requires Joinable {
        return core_.unfinished_tasks();
    }
    /// Tasks settled because the process holding them was killed: items it took and never
    /// task_done()'d, and items lost mid-put or mid-get. Non-blocking.
    std::uint64_t settled_tasks() const noexcept requires Joinable { return core_.settled_tasks(); }

  protected:
    QueueHandle() noexcept = default;
    explicit QueueHandle(Segment segment) : core_(std::move(segment)) {}
    QueueCore core_;
};

/// The factory set of every queue form (detail/named_object.hpp: create, open, open_or_create,
/// anonymous, open_fd, remove) over its handle. The form (Derived) supplies `form`,
/// make_segment() and check_existing(); the form's check on open is shared.
template <class Derived, bool Joinable, class... Parameters>
class QueueObject
    : public NamedObject<Derived, QueueHandle<Joinable>, QueueOptions, Parameters...> {
    using Base = NamedObject<Derived, QueueHandle<Joinable>, QueueOptions, Parameters...>;
    friend Base;

  protected:
    using Factories = Base;  // the form befriends it: it calls the form's private hooks
    using Base::Base;

  private:
    static SegmentExpectation expectation(const QueueOptions& options) {
        return queue_expectation(Derived::form, options);
    }
    static void check_opened(const Segment& segment, const QueueOptions& options) {
        check_queue_form(segment, Derived::form, options);
    }
};

}  // namespace detail

/// A bounded MPMC queue of trivially copyable T in shared memory (Python's multiprocessing
/// Queue; JoinableQueue when Joinable). Items are copied into the slot and out again.
template <class T, bool Joinable = false>
class BasicQueue : public detail::QueueObject<BasicQueue<T, Joinable>, Joinable, std::size_t> {
    static_assert(std::is_trivially_copyable_v<T>,
                  "shuttle::Queue<T> carries a trivially copyable T's bytes, or any other T the "
                  "codec knows as encoded messages (shuttle/codec.hpp): give T cereal functions "
                  "or a shuttle::codec<T> specialisation");
    static_assert(sizeof(T) <= detail::max_queue_bytes, "element too large");
    using Base = detail::QueueObject<BasicQueue, Joinable, std::size_t>;
    friend typename Base::Factories;
    friend Base;
    using detail::QueueHandle<Joinable>::core_;
    static constexpr detail::QueueForm form{ObjectKind::queue, sizeof(T), alignof(T), Joinable,
                                            false};

  public:
    /// An empty handle (see detail::QueueHandle): assign a queue from a factory to it.
    BasicQueue() noexcept = default;

    // The factories (detail::NamedObject): create(name, capacity, options),
    // open(name, options), open_or_create(name, capacity, options), anonymous(capacity,
    // options), open_fd(fd, options), remove(name). create() throws Error(already_exists,
    // invalid_name, invalid_argument, permission, no_space); open() checks element size,
    // alignment and options.type_tag, and whether it is joinable (and has redelivery as
    // options.redelivery says): Error(not_found, type_mismatch, kind_mismatch, ...);
    // open_or_create() throws Error(capacity_mismatch) if it exists with another capacity;
    // anonymous() is shared with children fork()ed after it.

    /// Blocks while the queue is full. ok, shut_down, closed (this handle), or cancelled (stop
    /// requested). If the caller is killed while blocked, nothing was put and the queue is
    /// unaffected.
    status put(const T& item, const std::stop_token& stop = {}) {
        return core_.put_until(writer(item), no_deadline, stop);
    }
    /// Never blocks: ok, full, shut_down or closed.
    status try_put(const T& item) noexcept { return core_.try_put(writer(item)); }
    /// Waits at most `timeout` for room: ok, timeout, shut_down, closed or cancelled.
    template <class Rep, class Period>
    status put_for(const T& item, std::chrono::duration<Rep, Period> timeout,
                   const std::stop_token& stop = {}) {
        return core_.put_until(writer(item), deadline_after(timeout), stop);
    }
    status put_until(const T& item, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return core_.put_until(writer(item), deadline, stop);
    }
    /// Python's put_nowait(): throws Full, ShutDown or Closed.
    void put_nowait(const T& item) {
        if (status done = try_put(item); !done) throw_error_about("queue", done.error());
    }

    /// Blocks while the queue is empty: the item, or shut_down (shut down and drained), closed
    /// (this handle) or cancelled.
    result<T> get(const std::stop_token& stop = {}) { return get_until(no_deadline, stop); }
    /// Never blocks: the item, empty, shut_down or closed.
    result<T> try_get() noexcept {
        Storage storage;
        errc rc = core_.try_get(always_fits, reader(storage));
        if (rc != errc::ok) return rc;
        return std::bit_cast<T>(storage);
    }
    template <class Rep, class Period>
    result<T> get_for(std::chrono::duration<Rep, Period> timeout,
                      const std::stop_token& stop = {}) {
        return get_until(deadline_after(timeout), stop);
    }
    result<T> get_until(steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        Storage storage;
        errc rc = core_.get_until(always_fits, reader(storage), deadline, stop);
        if (rc != errc::ok) return rc;
        return std::bit_cast<T>(storage);
    }
    /// Python's get_nowait(): throws Empty, ShutDown or Closed.
    T get_nowait() {
        result<T> item = try_get();
        if (!item) throw_error_about("queue", item.error());
        return std::move(*item);
    }

    /// At-least-once get (a JoinableQueue created with QueueOptions::redelivery): as get(), and
    /// the item stays leased to this thread until task_done(task); if this process dies (or
    /// destroys this handle) first, the item is delivered again to another consumer. One task
    /// per thread and handle at a time: errc::task_held until it is acknowledged. Blocks while
    /// the queue is empty; a caller killed while blocked holds nothing.
    result<Task<T>> get_task(const std::stop_token& stop = {}) requires Joinable {
        return get_task_until(no_deadline, stop);
    }
    /// Never blocks: the task, empty, shut_down, closed or task_held.
    result<Task<T>> try_get_task() noexcept requires Joinable {
        Storage storage{};  // (the orphan path hides from GCC that it is always filled)
        TaskId id;
        errc rc = core_.try_get_task(always_fits, reader(storage), id);
        if (rc != errc::ok) return rc;
        return Task<T>{std::bit_cast<T>(storage), id};
    }
    template <class Rep, class Period>
    result<Task<T>> get_task_for(std::chrono::duration<Rep, Period> timeout,
                                 const std::stop_token& stop = {}) requires Joinable {
        return get_task_until(deadline_after(timeout), stop);
    }
    result<Task<T>> get_task_until(steady_clock::time_point deadline,
                                   const std::stop_token& stop = {}) requires Joinable {
        Storage storage{};  // (the orphan path hides from GCC that it is always filled)
        TaskId id;
        errc rc = core_.get_task_until(always_fits, reader(storage), id, deadline, stop);
        if (rc != errc::ok) return rc;
        return Task<T>{std::bit_cast<T>(storage), id};
    }

  private:
    using Storage = std::array<std::byte, sizeof(T)>;
    explicit BasicQueue(Segment segment) : Base(std::move(segment)) {}
    static Segment make_segment(std::string_view name, std::size_t capacity,
                                const QueueOptions& options) {
        return detail::make_queue_segment(name, form, capacity, 0, options);
    }
    static void check_existing(const BasicQueue& queue, std::size_t capacity) {
        if (queue.capacity() != capacity) {
            throw Error(errc::capacity_mismatch, "queue exists with another capacity");
        }
    }

    static auto writer(const T& item) noexcept {
        return [&item](void* payload) noexcept -> uint64_t {
            std::memcpy(payload, &item, sizeof(T));
            return sizeof(T);
        };
    }
    static auto reader(Storage& storage) noexcept {
        return [&storage](const void* payload, uint64_t) noexcept {
            std::memcpy(storage.data(), payload, sizeof(T));
        };
    }
    static constexpr auto always_fits = [](uint64_t) noexcept { return true; };
};

template <class T>
using Queue = BasicQueue<T, false>;
template <class T>
using JoinableQueue = BasicQueue<T, true>;

/// A bounded MPMC queue of variable-length byte messages, each at most max_message_size
/// (fixed at creation); capacity counts messages. Same guarantees and forms as Queue<T>.
template <bool Joinable = false>
class BasicByteQueue
    : public detail::QueueObject<BasicByteQueue<Joinable>, Joinable, std::size_t, std::size_t> {
    using Base = detail::QueueObject<BasicByteQueue, Joinable, std::size_t, std::size_t>;
    friend typename Base::Factories;
    friend Base;
    using detail::QueueHandle<Joinable>::core_;
    static constexpr detail::QueueForm form{ObjectKind::byte_queue, 1, 1, Joinable, true};

  public:
    /// An empty handle (see detail::QueueHandle): assign a queue from a factory to it.
    BasicByteQueue() noexcept = default;

    // The factories, as Queue<T>'s with (capacity, max_message_size) parameters; open() reads
    // max_message_size from the queue (check max_message_size()); open_or_create() throws
    // Error(capacity_mismatch) if it exists with another capacity or message size.

    /// The largest message a put accepts (fixed at creation). Non-blocking.
    std::size_t max_message_size() const noexcept { return core_.payload_capacity(); }

    /// Puts one whole message. errc::too_large (nothing changes) if it exceeds
    /// max_message_size(); otherwise as Queue<T>::put.
    status put(std::span<const std::byte> message, const std::stop_token& stop = {}) {
        return put_until(message, no_deadline, stop);
    }
    status put(std::string_view message, const std::stop_token& stop = {}) {
        return put(std::as_bytes(std::span(message.data(), message.size())), stop);
    }
    status try_put(std::span<const std::byte> message) noexcept {
        if (message.size() > max_message_size()) return too_large_or_closed();
        return core_.try_put(writer(message));
    }
    status try_put(std::string_view message) noexcept {
        return try_put(std::as_bytes(std::span(message.data(), message.size())));
    }
    template <class Rep, class Period>
    status put_for(std::span<const std::byte> message, std::chrono::duration<Rep, Period> timeout,
                   const std::stop_token& stop = {}) {
        return put_until(message, deadline_after(timeout), stop);
    }
    status put_until(std::span<const std::byte> message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        if (message.size() > max_message_size()) return too_large_or_closed();
        return core_.put_until(writer(message), deadline, stop);
    }
    template <class Rep, class Period>
    status put_for(std::string_view message, std::chrono::duration<Rep, Period> timeout,
                   const std::stop_token& stop = {}) {
        return put_until(bytes_of(message), deadline_after(timeout), stop);
    }
    status put_until(std::string_view message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return put_until(bytes_of(message), deadline, stop);
    }
    /// Python's put_nowait(): throws Full, ShutDown, Closed or Error(too_large).
    void put_nowait(std::span<const std::byte> message) {
        if (status done = try_put(message); !done) throw_error_about("queue", done.error());
    }
    void put_nowait(std::string_view message) { put_nowait(std::as_bytes(std::span(message))); }

    /// Takes one message into `buffer`, returning its length. errc::buffer_too_small if it does
    /// not fit: nothing is consumed (retry with a buffer of max_message_size()).
    result<std::size_t> get(std::span<std::byte> buffer, const std::stop_token& stop = {}) {
        return get_until(buffer, no_deadline, stop);
    }
    result<std::size_t> try_get(std::span<std::byte> buffer) noexcept {
        uint64_t length = 0;
        errc rc = core_.try_get(fits(buffer), reader(buffer, length));
        if (rc != errc::ok) return rc;
        return static_cast<std::size_t>(length);
    }
    template <class Rep, class Period>
    result<std::size_t> get_for(std::span<std::byte> buffer,
                                std::chrono::duration<Rep, Period> timeout,
                                const std::stop_token& stop = {}) {
        return get_until(buffer, deadline_after(timeout), stop);
    }
    result<std::size_t> get_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                  const std::stop_token& stop = {}) {
        uint64_t length = 0;
        errc rc = core_.get_until(fits(buffer), reader(buffer, length), deadline, stop);
        if (rc != errc::ok) return rc;
        return static_cast<std::size_t>(length);
    }

    /// Python's get_nowait(): the message's length in `buffer`; throws Empty, ShutDown, Closed or
    /// Error(buffer_too_small) (nothing consumed).
    std::size_t get_nowait(std::span<std::byte> buffer) {
        result<std::size_t> length = try_get(buffer);
        if (!length) throw_error_about("queue", length.error());
        return *length;
    }

    /// At-least-once get (a JoinableByteQueue created with QueueOptions::redelivery): as
    /// get(buffer), and the message stays leased to this thread until task_done(task); if this
    /// process dies (or destroys this handle) first, it is delivered again to another consumer.
    /// One task per thread and handle at a time: errc::task_held until it is acknowledged.
    /// errc::buffer_too_small: nothing is consumed. Blocks while the queue is empty.
    result<ByteTask> get_task(std::span<std::byte> buffer,
                              const std::stop_token& stop = {}) requires Joinable {
        return get_task_until(buffer, no_deadline, stop);
    }
    /// Never blocks: the task, empty, shut_down, closed, task_held or buffer_too_small.
    result<ByteTask> try_get_task(std::span<std::byte> buffer) noexcept requires Joinable {
        uint64_t length = 0;
        TaskId id;
        errc rc = core_.try_get_task(fits(buffer), reader(buffer, length), id);
        if (rc != errc::ok) return rc;
        return ByteTask{static_cast<std::size_t>(length), id};
    }
    template <class Rep, class Period>
    result<ByteTask> get_task_for(std::span<std::byte> buffer,
                                  std::chrono::duration<Rep, Period> timeout,
                                  const std::stop_token& stop = {}) requires Joinable {
        return get_task_until(buffer, deadline_after(timeout), stop);
    }
    result<ByteTask> get_task_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                    const std::stop_token& stop = {}) requires Joinable {
        uint64_t length = 0;
        TaskId id;
        errc rc = core_.get_task_until(fits(buffer), reader(buffer, length), id, deadline, stop);
        if (rc != errc::ok) return rc;
        return ByteTask{static_cast<std::size_t>(length), id};
    }

  private:
    explicit BasicByteQueue(Segment segment) : Base(std::move(segment)) {}
    /// An empty handle's max_message_size() is 0: it says closed, not too_large.
    errc too_large_or_closed() const noexcept {
        return core_.attached() ? errc::too_large : errc::closed;
    }
    static Segment make_segment(std::string_view name, std::size_t capacity,
                                std::size_t max_message_size, const QueueOptions& options) {
        return detail::make_queue_segment(name, form, capacity, max_message_size, options);
    }
    static void check_existing(const BasicByteQueue& queue, std::size_t capacity,
                               std::size_t max_message_size) {
        if (queue.capacity() != capacity || queue.max_message_size() != max_message_size) {
            throw Error(errc::capacity_mismatch,
                        "byte queue exists with another capacity or message size");
        }
    }
    static std::span<const std::byte> bytes_of(std::string_view message) noexcept {
        return std::as_bytes(std::span(message.data(), message.size()));
    }

    static auto writer(std::span<const std::byte> message) noexcept {
        return [message](void* payload) noexcept -> uint64_t {
            if (!message.empty()) std::memcpy(payload, message.data(), message.size());
            return message.size();
        };
    }
    static auto fits(std::span<std::byte> buffer) noexcept {
        return [size = buffer.size()](uint64_t length) noexcept { return length <= size; };
    }
    static auto reader(std::span<std::byte> buffer, uint64_t& length) noexcept {
        return [buffer, &length](const void* payload, uint64_t size) noexcept {
            if (size != 0) std::memcpy(buffer.data(), payload, size);
            length = size;
        };
    }
};

using ByteQueue = BasicByteQueue<false>;
using JoinableByteQueue = BasicByteQueue<true>;

}  // namespace shuttle

// Queue<T> / JoinableQueue<T> of a T that is not trivially copyable: encoded messages.
#include "shuttle/detail/queue_encoded.hpp"
