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
// registry entry until the thread ends or the handle is destroyed; a thread that ends holding a
// get_task() task has it redelivered, tasks it took with get() stay the process's).
//
// try_* never block, whatever another process does: a thread's first try_put / try_get /
// try_get_task on a handle returns full / empty at once if it would have to wait for a stopped
// process holding the queue's recovery lock (a later call retries; docs/recovery.md).
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

#include "shuttle/detail/batch_triads.hpp"
#include "shuttle/detail/named_object.hpp"
#include "shuttle/detail/queue_core.hpp"
#include "shuttle/detail/triads.hpp"
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

/// A batch's answer: the count when some items were put / taken (or the batch was empty and
/// nothing failed), else the error.
inline result<std::size_t> batch_result(errc rc, uint64_t count, std::size_t wanted) noexcept {
    if (count != 0 || (rc == errc::ok && wanted == 0)) return static_cast<std::size_t>(count);
    return rc;
}

/// What every queue handle has: shutdown, size, and (Joinable) task accounting.
///
/// An empty handle (default-constructed, or moved from) behaves as a closed, drained queue of
/// capacity 0: every put, get, task_done and join returns errc::closed (the throwing
/// conveniences throw Closed), counts are 0, close()/shutdown() do nothing, and nothing it does
/// reaches the queue of the handle it was moved to.
template <bool Joinable>
class QueueHandle : public JoinTriad<QueueHandle<Joinable>, Joinable> {
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

    /// Waits until every item put has been task_done()'d (across processes), at most until
    /// `deadline`; join() and join_for() (detail/triads.hpp) block / wait a timeout. Returns ok,
    /// timeout, or cancelled. A joiner killed while waiting leaves nothing behind.
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
class BasicQueue : public detail::QueueObject<BasicQueue<T, Joinable>, Joinable, std::size_t>,
                   public detail::PutTriad<BasicQueue<T, Joinable>, const T&>,
                   public detail::GetTriad<BasicQueue<T, Joinable>>,
                   public detail::GetTaskTriad<BasicQueue<T, Joinable>, Joinable>,
                   public detail::PutManyTriad<BasicQueue<T, Joinable>, std::span<const T>>,
                   public detail::GetManyTriad<BasicQueue<T, Joinable>, std::span<T>> {
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

    // Each operation is a triad (detail/triads.hpp): x_until and try_x here; x (blocks),
    // x_for (waits at most a timeout) and x_nowait (Python's: throws Full, Empty, ShutDown,
    // Closed) from the bases.

    /// Waits at most until `deadline` while the queue is full: ok, timeout, shut_down, closed
    /// (this handle) or cancelled (stop requested). put(item) blocks. If the caller is killed
    /// while blocked, nothing was put and the queue is unaffected.
    status put_until(const T& item, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return core_.put_until(writer(item), deadline, stop);
    }
    /// Never blocks: ok, full, shut_down or closed.
    status try_put(const T& item) noexcept { return core_.try_put(writer(item)); }

    /// Waits at most until `deadline` while the queue is empty: the item, or timeout, shut_down
    /// (shut down and drained), closed (this handle) or cancelled. get() blocks.
    result<T> get_until(steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        Storage storage;
        errc rc = core_.get_until(always_fits, reader(storage), deadline, stop);
        if (rc != errc::ok) return rc;
        return std::bit_cast<T>(storage);
    }
    /// Never blocks: the item, empty, shut_down or closed.
    result<T> try_get() noexcept {
        Storage storage;
        errc rc = core_.try_get(always_fits, reader(storage));
        if (rc != errc::ok) return rc;
        return std::bit_cast<T>(storage);
    }

    /// At-least-once get (a JoinableQueue created with QueueOptions::redelivery): as
    /// get_until(), and the item stays leased to this thread until task_done(task); if this
    /// process dies (or destroys this handle) first, the item is delivered again to another
    /// consumer. One task per thread and handle at a time: errc::task_held until it is
    /// acknowledged. get_task() blocks while the queue is empty; a caller killed while blocked
    /// holds nothing.
    result<Task<T>> get_task_until(steady_clock::time_point deadline,
                                   const std::stop_token& stop = {}) requires Joinable {
        Storage storage{};  // (the orphan path hides from GCC that it is always filled)
        TaskId id;
        errc rc = core_.get_task_until(always_fits, reader(storage), id, deadline, stop);
        if (rc != errc::ok) return rc;
        return Task<T>{std::bit_cast<T>(storage), id};
    }
    /// Never blocks: the task, empty, shut_down, closed or task_held.
    result<Task<T>> try_get_task() noexcept requires Joinable {
        Storage storage{};  // (the orphan path hides from GCC that it is always filled)
        TaskId id;
        errc rc = core_.try_get_task(always_fits, reader(storage), id);
        if (rc != errc::ok) return rc;
        return Task<T>{std::bit_cast<T>(storage), id};
    }

    // ---- batches (docs/queue.md, "Batches") -----------------------------------------------
    // Several items per cursor operation: a run of consecutive slots is checked, then claimed
    // with one CAS, filled (or emptied) and published (released) in order. Each item is its own
    // item in every other respect: order per producer, exactly-once, a task in a JoinableQueue
    // (task_done() once per item). All-or-some: a put batch returns how many of its first items
    // were put, a get batch how many items it took; an error only when that is none. A process
    // killed mid-batch loses at most the items of its own run not yet published (put) or
    // released (get), each journaled as a killed single put or get is. put_many(items) blocks
    // until all are put, put_many_for(items, timeout) waits at most that long; get_many(out)
    // blocks until there is at least one item, get_many_for(out, timeout) at most that long.

    /// Puts `items` in order, waiting for room as needed, at most until `deadline`: the count
    /// put, items.size() unless the deadline, a shutdown, close() or `stop` came first (the
    /// items put before it stay put: put the rest again). timeout, shut_down, closed or
    /// cancelled only if none was put. A caller killed while blocked loses only what it had
    /// not put.
    result<std::size_t> put_many_until(std::span<const T> items, steady_clock::time_point deadline,
                                       const std::stop_token& stop = {}) {
        uint64_t count = 0;
        const errc rc =
            core_.put_many_until(items.size(), batch_writer(items), count, deadline, stop);
        return detail::batch_result(rc, count, items.size());
    }
    /// Never blocks: puts as many of `items` (in order) as there is room for now: the count
    /// (0 for an empty span), or full, shut_down or closed if none.
    result<std::size_t> try_put_many(std::span<const T> items) noexcept {
        uint64_t count = 0;
        const errc rc = core_.try_put_many(items.size(), batch_writer(items), count);
        return detail::batch_result(rc, count, items.size());
    }

    /// Waits at most until `deadline` for an item, then takes as many as are there, up to
    /// out.size(), into out[0], out[1], ... in queue order: the count (>= 1), or timeout,
    /// shut_down (shut down and drained), closed, cancelled; invalid_argument for an empty
    /// `out`.
    result<std::size_t> get_many_until(std::span<T> out, steady_clock::time_point deadline,
                                       const std::stop_token& stop = {}) {
        uint64_t count = 0;
        const errc rc = core_.get_many_until(out.size(), always_fits_many, batch_reader(out), count,
                                             deadline, stop);
        return detail::batch_result(rc, count, out.size());
    }
    /// Never blocks: takes the items there now, up to out.size(): the count (>= 1), or empty,
    /// shut_down, closed; invalid_argument for an empty `out`.
    result<std::size_t> try_get_many(std::span<T> out) noexcept {
        uint64_t count = 0;
        const errc rc = core_.try_get_many(out.size(), always_fits_many, batch_reader(out), count);
        return detail::batch_result(rc, count, out.size());
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
    static constexpr auto always_fits_many = [](uint64_t, uint64_t) noexcept { return true; };
    static auto batch_writer(std::span<const T> items) noexcept {
        return [items](uint64_t i, void* payload) noexcept -> uint64_t {
            std::memcpy(payload, &items[i], sizeof(T));
            return sizeof(T);
        };
    }
    static auto batch_reader(std::span<T> out) noexcept {
        return [out](uint64_t i, const void* payload, uint64_t) noexcept {
            std::memcpy(static_cast<void*>(&out[i]), payload, sizeof(T));
        };
    }
};

template <class T>
using Queue = BasicQueue<T, false>;
template <class T>
using JoinableQueue = BasicQueue<T, true>;

/// A bounded MPMC queue of variable-length byte messages, each at most max_message_size
/// (fixed at creation); capacity counts messages. Same guarantees and forms as Queue<T>.
template <bool Joinable = false>
class BasicByteQueue
    : public detail::QueueObject<BasicByteQueue<Joinable>, Joinable, std::size_t, std::size_t>,
      public detail::PutTriad<BasicByteQueue<Joinable>, std::span<const std::byte>,
                              std::string_view>,
      public detail::GetTriad<BasicByteQueue<Joinable>, std::span<std::byte>>,
      public detail::GetTaskTriad<BasicByteQueue<Joinable>, Joinable, std::span<std::byte>>,
      public detail::PutManyTriad<BasicByteQueue<Joinable>, std::span<const std::byte>,
                                  std::span<const std::size_t>>,
      public detail::GetManyTriad<BasicByteQueue<Joinable>, std::span<std::byte>,
                                  std::span<std::size_t>> {
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

    // The triads as Queue<T>'s (detail/triads.hpp): put, put_for and put_nowait (throws
    // Full, ShutDown, Closed or Error(too_large)) of a span or a string_view; get, get_for and
    // get_nowait (throws Empty, ShutDown, Closed or Error(buffer_too_small), nothing consumed)
    // into a buffer; get_task and get_task_for.

    /// Puts one whole message. errc::too_large (nothing changes) if it exceeds
    /// max_message_size(); otherwise as Queue<T>::put_until.
    status put_until(std::span<const std::byte> message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        if (message.size() > max_message_size()) return too_large_or_closed();
        return core_.put_until(writer(message), deadline, stop);
    }
    status put_until(std::string_view message, steady_clock::time_point deadline,
                     const std::stop_token& stop = {}) {
        return put_until(bytes_of(message), deadline, stop);
    }
    status try_put(std::span<const std::byte> message) noexcept {
        if (message.size() > max_message_size()) return too_large_or_closed();
        return core_.try_put(writer(message));
    }
    status try_put(std::string_view message) noexcept { return try_put(bytes_of(message)); }

    /// Takes one message into `buffer`, returning its length. errc::buffer_too_small if it does
    /// not fit: nothing is consumed (retry with a buffer of max_message_size()).
    result<std::size_t> try_get(std::span<std::byte> buffer) noexcept {
        uint64_t length = 0;
        errc rc = core_.try_get(fits(buffer), reader(buffer, length));
        if (rc != errc::ok) return rc;
        return static_cast<std::size_t>(length);
    }
    result<std::size_t> get_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                  const std::stop_token& stop = {}) {
        uint64_t length = 0;
        errc rc = core_.get_until(fits(buffer), reader(buffer, length), deadline, stop);
        if (rc != errc::ok) return rc;
        return static_cast<std::size_t>(length);
    }

    /// At-least-once get (a JoinableByteQueue created with QueueOptions::redelivery): as
    /// get_until(buffer), and the message stays leased to this thread until task_done(task); if
    /// this process dies (or destroys this handle) first, it is delivered again to another
    /// consumer. One task per thread and handle at a time: errc::task_held until it is
    /// acknowledged. errc::buffer_too_small: nothing is consumed. get_task(buffer) blocks while
    /// the queue is empty.
    result<ByteTask> get_task_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                    const std::stop_token& stop = {}) requires Joinable {
        uint64_t length = 0;
        TaskId id;
        errc rc = core_.get_task_until(fits(buffer), reader(buffer, length), id, deadline, stop);
        if (rc != errc::ok) return rc;
        return ByteTask{static_cast<std::size_t>(length), id};
    }
    /// Never blocks: the task, empty, shut_down, closed, task_held or buffer_too_small.
    result<ByteTask> try_get_task(std::span<std::byte> buffer) noexcept requires Joinable {
        uint64_t length = 0;
        TaskId id;
        errc rc = core_.try_get_task(fits(buffer), reader(buffer, length), id);
        if (rc != errc::ok) return rc;
        return ByteTask{static_cast<std::size_t>(length), id};
    }

    // ---- batches (docs/queue.md, "Batches"; the rules are Queue<T>'s) ----------------------
    // A batch of messages lies end to end in one buffer: message i is lengths[i] bytes, right
    // after message i - 1. What get_many fills, put_many takes as it is.

    /// Puts the messages of `packed` (message i: lengths[i] bytes, end to end) in order, waiting
    /// for room as needed, at most until `deadline`: the count put (lengths.size() unless the
    /// deadline, a shutdown, close() or `stop` came first), or the error if none was.
    /// Nothing is put, and the answer is too_large if a message exceeds max_message_size(),
    /// invalid_argument if the lengths add up to more than packed.size().
    result<std::size_t> put_many_until(std::span<const std::byte> packed,
                                       std::span<const std::size_t> lengths,
                                       steady_clock::time_point deadline,
                                       const std::stop_token& stop = {}) {
        if (errc bad = check_batch(packed, lengths); bad != errc::ok) return bad;
        uint64_t count = 0;
        const errc rc = core_.put_many_until(lengths.size(), batch_writer(packed, lengths), count,
                                             deadline, stop);
        return detail::batch_result(rc, count, lengths.size());
    }
    /// Never blocks: puts as many of the messages (in order) as there is room for now: the
    /// count (0 for no messages), or full, shut_down, closed, too_large, invalid_argument.
    result<std::size_t> try_put_many(std::span<const std::byte> packed,
                                     std::span<const std::size_t> lengths) noexcept {
        if (errc bad = check_batch(packed, lengths); bad != errc::ok) return bad;
        uint64_t count = 0;
        const errc rc = core_.try_put_many(lengths.size(), batch_writer(packed, lengths), count);
        return detail::batch_result(rc, count, lengths.size());
    }

    /// Waits at most until `deadline` for a message, then takes as many as are there, up to
    /// lengths.size(), into `buffer` end to end (lengths[i]: message i's length), stopping
    /// before a message that does not fit what is left of the buffer: the count (>= 1), or
    /// timeout, shut_down, closed, cancelled; buffer_too_small if the first message does not
    /// fit (nothing consumed); invalid_argument for an empty `lengths`.
    result<std::size_t> get_many_until(std::span<std::byte> buffer, std::span<std::size_t> lengths,
                                       steady_clock::time_point deadline,
                                       const std::stop_token& stop = {}) {
        Unpacker unpacker{buffer, lengths};
        uint64_t count = 0;
        const errc rc = core_.get_many_until(lengths.size(), unpacker.fits(), unpacker.reader(),
                                             count, deadline, stop);
        return detail::batch_result(rc, count, lengths.size());
    }
    /// Never blocks: takes the messages there now (as get_many_until): the count (>= 1), or
    /// empty, shut_down, closed, buffer_too_small, invalid_argument.
    result<std::size_t> try_get_many(std::span<std::byte> buffer,
                                     std::span<std::size_t> lengths) noexcept {
        Unpacker unpacker{buffer, lengths};
        uint64_t count = 0;
        const errc rc =
            core_.try_get_many(lengths.size(), unpacker.fits(), unpacker.reader(), count);
        return detail::batch_result(rc, count, lengths.size());
    }

  private:
    explicit BasicByteQueue(Segment segment) : Base(std::move(segment)) {}
    /// A put batch's lengths against its buffer and the message size limit.
    errc check_batch(std::span<const std::byte> packed,
                     std::span<const std::size_t> lengths) const noexcept {
        std::size_t total = 0;
        for (std::size_t length : lengths) {
            if (length > max_message_size()) return too_large_or_closed();
            total += length;  // no overflow: each is at most max_message_size() (< 2^40)
            if (total > packed.size()) return errc::invalid_argument;
        }
        return errc::ok;
    }
    /// Message i of a put batch is at the sum of the lengths before it: the core writes the
    /// items in order, each once, so the offset is a running sum.
    static auto batch_writer(std::span<const std::byte> packed,
                             std::span<const std::size_t> lengths) noexcept {
        return
            [packed, lengths, offset = std::size_t{0}](uint64_t i, void* payload) mutable noexcept {
                const std::size_t length = lengths[i];
                if (length != 0) std::memcpy(payload, packed.data() + offset, length);
                offset += length;
                return static_cast<uint64_t>(length);
            };
    }
    /// A get batch's buffer: messages are read in order, each once, at the end of what was
    /// read; a scan (fits) may be redone from the first unread message after a lost claim.
    struct Unpacker {
        std::span<std::byte> buffer;
        std::span<std::size_t> lengths;
        std::size_t used = 0;     // bytes of the messages read so far
        uint64_t read_count = 0;  // messages read so far
        std::size_t scanned = 0;  // end of the run a scan accepted so far
        auto fits() noexcept {
            return [this](uint64_t i, uint64_t length) noexcept {
                if (i == read_count) scanned = used;
                if (length > buffer.size() - scanned) return false;
                scanned += length;
                return true;
            };
        }
        auto reader() noexcept {
            return [this](uint64_t i, const void* payload, uint64_t length) noexcept {
                if (length != 0) std::memcpy(buffer.data() + used, payload, length);
                lengths[i] = static_cast<std::size_t>(length);
                used += length;
                read_count = i + 1;
            };
        }
    };
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
