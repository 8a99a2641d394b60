// QueueCore: one queue handle's state (segment, ring, recovery, the threads' registry entries)
// and the operations every queue form shares, independent of the element type. It ties the
// parts together: the fast paths (queue_ring.hpp), waiting (queue_waiting.hpp), crash recovery
// (queue_recovery.hpp, compiled in queue/src/) and task accounting (JoinableQueue).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_doorbell.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/queue_recovery.hpp"
#include "shuttle/detail/queue_ring.hpp"
#include "shuttle/detail/queue_waiting.hpp"
#include "shuttle/detail/thread_participants.hpp"
#include "shuttle/error.hpp"
#include "shuttle/queue_types.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// The ring and its waiting, independent of the element type.
///
/// An empty core (default-constructed, or moved from) holds no segment: every operation
/// returns errc::closed (sizes and counts 0, closed() true) and touches no shared memory, in
/// particular not the memory of the handle it was moved to (docs/design.md §3b).
class QueueCore {
  public:
    QueueCore() noexcept = default;
    explicit QueueCore(Segment segment)
        : segment_(std::move(segment)),
          ring_(ring_of(segment_)),
          recovery_(std::make_unique<QueueRecovery>(ring_, Registry(segment_))),
          participants_(std::make_unique<ThreadParticipants>(
              Registry(segment_),
              [recovery = recovery_.get(), control = ring_.control](
                  uint32_t index, ProcessIdentity previous, bool may_wait) {
                  if constexpr (queue_recovery) {
                      return recovery->adopt(index, previous, may_wait);
                  } else {
                      forget_waiter(*control, index);  // an unprotected queue only clears bits
                      return true;
                  }
              },
              [recovery = recovery_.get()](uint32_t index, std::optional<uint32_t> kept) {
                  return queue_recovery && recovery->thread_ended(index, kept);
              })) {
        recovery_->set_participants(participants_.get());
    }
    QueueCore(QueueCore&& other) noexcept { *this = std::move(other); }
    /// Releases this handle's registry entries while its segment is still mapped. `other` is
    /// left empty: its ring no longer points into the segment it gave away.
    QueueCore& operator=(QueueCore&& other) noexcept {
        if (this != &other) {
            bells_.reset();  // its slots live in the segment about to be unmapped
            participants_.reset();
            segment_ = std::move(other.segment_);
            ring_ = std::exchange(other.ring_, Ring{});
            recovery_ = std::move(other.recovery_);
            participants_ = std::move(other.participants_);
            bells_ = std::move(other.bells_);
            closed_.store(other.closed_.load(std::memory_order_relaxed), std::memory_order_relaxed);
        }
        return *this;
    }
    /// False for an empty core (default-constructed or moved from).
    bool attached() const noexcept { return participants_ != nullptr; }
    ~QueueCore() {
        bells_.reset();
        participants_.reset();
    }

    /// Lays out a fresh (zeroed) segment body (queue/src/queue_segment.cpp).
    static void initialise(Segment& segment);

    uint64_t capacity() const noexcept { return ring_.capacity; }
    uint64_t payload_capacity() const noexcept { return ring_.payload_capacity; }
    const Segment& segment() const noexcept { return segment_; }
    bool joinable() const noexcept { return ring_.joinable; }
    bool redelivery() const noexcept { return ring_.redelivery; }

    // ---- non-blocking attempts -------------------------------------------------------------
    // `write(void* payload) -> uint64_t length` fills a claimed slot; it must not throw.
    template <class Write>
    errc try_put(Write&& write) noexcept {
        if (closed()) [[unlikely]]
            return errc::closed;  // this handle closed, or empty (default-constructed, moved from)
        const errc rc = put_attempt(write);
        if (rc == errc::full) [[unlikely]]
            rearm(false);
        return rc;
    }

    // `fits(uint64_t length) -> bool` may refuse a message (nothing is consumed then);
    // `read(const void* payload, uint64_t length)` copies it out; it must not throw.
    template <class Fits, class Read>
    errc try_get(Fits&& fits, Read&& read) noexcept {
        if (closed()) [[unlikely]]
            return errc::closed;
        const errc rc = get_attempt(fits, read);
        if (rc == errc::empty) [[unlikely]]
            rearm(true);
        return rc;
    }

    /// get_task(): as try_get, and the item is also kept in this thread's lease until
    /// task_done(task) (`task` tells which). errc::task_held if this thread holds one already.
    template <class Fits, class Read>
    errc try_get_task(Fits&& fits, Read&& read, TaskId& task) noexcept {
        if (!attached()) return errc::closed;
        if (!ring_.redelivery) return errc::invalid_argument;
        if (closed()) return errc::closed;
        auto me = participants_->current();
        if (!me) return me.error() == errc::busy ? errc::empty : me.error();  // try again later
        LeaseHeader& lease = ring_.lease_at(*me);
        const uint64_t state = lease.state.load(std::memory_order_acquire);  // (5), (10)
        if (state != 0) {
            if ((state & lease_kind_mask) != lease_orphan) return errc::task_held;
            // Left by this entry's previous holder, not yet put back: it is ours to do.
            const uint64_t length = std::min<uint64_t>(lease.length.load(std::memory_order_relaxed),
                                                       ring_.payload_capacity);
            if (!fits(length)) return errc::buffer_too_small;
            if (auto ticket = recovery_->take_orphan(*me)) {
                read(static_cast<const void*>(Ring::payload_of(lease)), length);
                task = TaskId{lease_key(), *ticket, *me};
                return errc::ok;
            }
        }
        uint64_t ticket = 0;
        const errc rc = ring_try_get<true>(ring_, registry(), *me, fits, read, ticket);
        if (rc == errc::ok) task = TaskId{lease_key(), ticket, *me};
        if (rc == errc::empty) [[unlikely]]
            rearm(true);
        return rc;
    }

    // ---- batches (ring_try_put_many / ring_try_get_many) --------------------------------------
    // `write(uint64_t i, void* payload) -> uint64_t length` fills a slot with item i of the
    // batch; `fits(uint64_t i, uint64_t length) -> bool` may stop a get batch before item i;
    // `read(uint64_t i, const void* payload, uint64_t length)` copies item i out. Items go in
    // order i = 0, 1, ...; none of them may throw. `count` = items put / taken; ok whenever
    // count > 0 (the error that stopped the batch is what the next call returns).

    /// Puts items 0..want-1 while there is room, a run of slots per claim. Never blocks: ok
    /// (count >= 1, or want == 0), full, shut_down, closed or corrupt.
    template <class Write>
    errc try_put_many(uint64_t want, Write&& write, uint64_t& count) noexcept {
        count = 0;
        if (closed()) [[unlikely]]
            return errc::closed;
        auto me = participants_->current();
        if (!me) return me.error();
        RegistryEntry& entry = registry().entry(*me);
        errc rc = errc::ok;
        while (count < want) {  // bounded: each pass puts at least one item, or stops
            uint64_t run = 0;
            rc = ring_try_put_many(
                ring_, registry(), entry, want - count,
                [&write, first = count](uint64_t j, void* payload) noexcept {
                    return write(first + j, payload);
                },
                run);
            if (rc != errc::ok) break;
            count += run;
        }
        return count != 0 ? errc::ok : rc;
    }

    /// Takes up to `want` items that are there now, a run of slots per claim. Never blocks: ok
    /// (count >= 1), empty, shut_down, buffer_too_small (the first item does not fit), closed
    /// or corrupt. want == 0: invalid_argument.
    template <class Fits, class Read>
    errc try_get_many(uint64_t want, Fits&& fits, Read&& read, uint64_t& count) noexcept {
        count = 0;
        if (closed()) [[unlikely]]
            return errc::closed;
        if (want == 0) return errc::invalid_argument;
        auto me = participants_->current();
        if (!me) return me.error();
        errc rc = errc::ok;
        while (count < want) {  // bounded: each pass takes at least one item, or stops
            uint64_t run = 0;
            const uint64_t first = count;
            rc = ring_try_get_many(
                ring_, registry(), *me, want - count,
                [&fits, first](uint64_t j, uint64_t length) noexcept {
                    return fits(first + j, length);
                },
                [&read, first](uint64_t j, const void* payload, uint64_t length) noexcept {
                    read(first + j, payload, length);
                },
                run);
            if (rc != errc::ok) break;
            count += run;
        }
        return count != 0 ? errc::ok : rc;
    }

    /// Puts all `want` items, waiting for room as needed, until `deadline` or `stop`: ok when
    /// all are put; otherwise what stopped it (timeout, shut_down, closed, cancelled, ...), with
    /// `count` telling how many were put before.
    template <class Write>
    errc put_many_until(uint64_t want, Write&& write, uint64_t& count,
                        steady_clock::time_point deadline, const std::stop_token& stop) {
        count = 0;
        if (!attached()) return errc::closed;
        while (count < want) {
            uint64_t run = 0;
            const uint64_t first = count;
            const errc rc = block_until(
                *participants_, ring_.control->producers, errc::full,
                [&] {
                    return try_put_many(
                        want - first,
                        [&write, first](uint64_t j, void* payload) noexcept {
                            return write(first + j, payload);
                        },
                        run);
                },
                [&] { return size() < ring_.capacity; }, [&] { maybe_recover(); }, ring_.redelivery,
                deadline, stop);
            count += run;
            if (rc != errc::ok) return rc;
        }
        return errc::ok;
    }

    /// Waits until at least one item is there (or `deadline`, `stop`), then takes up to `want`.
    template <class Fits, class Read>
    errc get_many_until(uint64_t want, Fits&& fits, Read&& read, uint64_t& count,
                        steady_clock::time_point deadline, const std::stop_token& stop) {
        count = 0;
        if (closed()) return errc::closed;
        if (want == 0) return errc::invalid_argument;
        return wait_for_item([&] { return try_get_many(want, fits, read, count); }, deadline, stop);
    }

    // ---- blocking ---------------------------------------------------------------------------
    template <class Write>
    errc put_until(Write&& write, steady_clock::time_point deadline, const std::stop_token& stop) {
        if (!attached()) return errc::closed;
        return block_until(
            *participants_, ring_.control->producers, errc::full,
            [&] { return closed() ? errc::closed : put_attempt(write); },
            [&] { return size() < ring_.capacity; }, [&] { maybe_recover(); }, ring_.redelivery,
            deadline, stop);
    }

    template <class Fits, class Read>
    errc get_until(Fits&& fits, Read&& read, steady_clock::time_point deadline,
                   const std::stop_token& stop) {
        if (closed()) return errc::closed;
        return wait_for_item([&] { return closed() ? errc::closed : get_attempt(fits, read); },
                             deadline, stop);
    }

    template <class Fits, class Read>
    errc get_task_until(Fits&& fits, Read&& read, TaskId& task, steady_clock::time_point deadline,
                        const std::stop_token& stop) {
        if (closed()) return errc::closed;
        return wait_for_item([&] { return try_get_task(fits, read, task); }, deadline, stop);
    }

    // ---- close (this handle), shutdown (the queue) and accounting ----------------------------
    /// This handle only (Python's Queue.close()): its later puts and gets return errc::closed;
    /// its own blocked calls wake and return closed. Idempotent.
    void close() noexcept {
        if (!attached() || closed_.exchange(true, std::memory_order_acq_rel)) return;
        // Waiters park on per-entry futexes that a handle cannot tell apart cheaply: wake all;
        // other handles' waiters re-check and park again.
        wake_everyone(*ring_.control, registry());
    }
    /// True once close() was called on this handle, and for an empty handle (default-constructed
    /// or moved from).
    bool closed() const noexcept { return !attached() || closed_.load(std::memory_order_relaxed); }

    /// The queue, for every handle in every process: puts refused (errc::shut_down), gets drain
    /// what is left, then return errc::shut_down; every blocked waiter wakes.
    void shut_down() noexcept {
        if (!attached()) return;
        ring_.control->tail.fetch_or(closed_bit, std::memory_order_seq_cst);  // (4)
        ring_.control->closed.store(1, std::memory_order_seq_cst);            // (4)
        wake_everyone(*ring_.control, registry());
    }
    bool is_shutdown() const noexcept {
        return attached() &&
               (ring_.control->tail.load(std::memory_order_acquire) & closed_bit);  // (4)
    }

    /// Shuts down, then (immediate) discards what is queued, settling task accounting for each
    /// discarded item. Returns the number discarded. Works through a closed handle too. Waits
    /// for puts in progress when it shut down, but at most shutdown_patience (250 ms) without
    /// any progress (a producer stopped mid-put, or a corrupt segment whose cursors promise
    /// items that never come): then it returns.
    uint64_t shutdown(bool immediate) noexcept {
        if (!attached()) return 0;
        shut_down();
        if (!immediate) return 0;
        uint64_t discarded = 0;
        auto discard = [](uint64_t) { return true; };
        auto ignore = [](const void*, uint64_t) {};
        for (auto deadline = deadline_after(shutdown_patience);;) {
            if (wait_for_item([&] { return get_attempt(discard, ignore); }, deadline, {}) !=
                errc::ok)
                break;
            ++discarded;
            if (joinable()) (void)task_done();
            deadline = deadline_after(shutdown_patience);
        }
        return discarded;
    }
    static constexpr auto shutdown_patience = std::chrono::milliseconds(250);

    status task_done() noexcept {
        if (!attached()) return errc::closed;
        auto me = participants_->current(true);
        if (!me) return me.error();
        return count_done(registry().entry(*me));
    }

    /// task_done(task): acknowledges a task got with get_task(), from the thread that got it.
    /// Stale, already acknowledged, or held by another thread: not_owner; another queue's:
    /// invalid_argument (nothing changes). Counted in the lease's own `acks` (not the queue's
    /// `done`): the lease says "acknowledging, acks becomes acks_target" meanwhile, so recovery
    /// finishes a holder killed in between exactly (neither redelivered nor counted twice).
    status task_done(const TaskId& task) noexcept {
        if (!attached()) return errc::closed;
        if (!ring_.redelivery || task.queue != lease_key() || task.holder >= ring_.lease_count) {
            return errc::invalid_argument;
        }
        // The holding thread's own entry: only it writes its lease while it lives (a recoverer
        // only once its process is dead), so the lease's words need no CAS.
        auto me = participants_->current(true);
        if (!me) return me.error();
        if (*me != task.holder) return errc::not_owner;
        LeaseHeader& lease = ring_.lease_at(task.holder);
        if (task.ticket > lease_ticket_mask ||
            lease.state.load(std::memory_order_acquire) != (lease_held | task.ticket)) {  // (10)
            return errc::not_owner;
        }
        const uint64_t acks = lease.acks.load(std::memory_order_relaxed);
        lease.acks_target.store(acks + 1, std::memory_order_relaxed);
        // (10) pairs with recovery's acquire load of the lease state (queue_recovery.cpp): a
        // recoverer that sees "acknowledging" sees acks_target too.
        lease.state.store(lease_acking | task.ticket, std::memory_order_release);
        SHUTTLE_KILL_POINT("queue.task_done.acking");
        lease.acks.store(acks + 1, std::memory_order_seq_cst);  // (11) read by lease_acks()
        SHUTTLE_KILL_POINT("queue.task_done.counted");
        lease.state.store(0, std::memory_order_release);  // (10)
        SHUTTLE_KILL_POINT("queue.task_done.lease_cleared");
        if (unfinished_tasks() == 0) wake_joiners(*ring_.control);
        return errc::ok;
    }

  private:
    /// One task done: the queue's count (refused past the put tickets), and `entry`'s own
    /// count (what settling it after a death uses). A leased task is counted in its lease.
    status count_done(RegistryEntry& entry) noexcept {
        QueueControl& control = *ring_.control;
        uint64_t done = control.done.load(std::memory_order_relaxed);
        uint64_t remaining = 0;
        // This thread's own count of finished tasks (what settling it after a death uses).
        auto count_mine = [&entry] {
            if constexpr (queue_recovery) {
                std::atomic<uint64_t>& mine = entry.words[entry_done];
                mine.store(mine.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            }
        };
        do {
            const uint64_t accounted = done +
                                       // (12) pairs with recovery's commit of `settled`
                                       control.recovery.settled.load(std::memory_order_acquire) +
                                       ring_.lease_acks();
            const uint64_t tickets = ring_.put_tickets();
            if (accounted >= tickets) {
                // Refused. If this thread has a task it took and has not finished, the queue
                // settled one too many (a consumer killed inside task_done): this one is
                // finished all the same, in this thread's own count too.
                if (queue_recovery &&
                    entry.words[entry_done].load(std::memory_order_relaxed) <
                        entry.words[entry_taken].load(std::memory_order_relaxed)) {
                    count_mine();
                }
                return errc::task_done_overflow;
            }
            remaining = tickets - accounted - 1;
            // (11) the count a joiner reads (seq_cst, before wake_joiners' (9))
        } while (!control.done.compare_exchange_weak(done, done + 1, std::memory_order_seq_cst));
        SHUTTLE_KILL_POINT("queue.task_done.done");
        count_mine();
        if (remaining == 0) wake_joiners(*ring_.control);
        return errc::ok;
    }

  public:
    status join_until(steady_clock::time_point deadline, const std::stop_token& stop) {
        if (!attached()) return errc::closed;
        return detail::join_until(
            *ring_.control, [&] { return unfinished_tasks() == 0; }, [&] { maybe_recover(); },
            deadline, stop);
    }

    uint64_t unfinished_tasks() const noexcept { return attached() ? ring_.unfinished_tasks() : 0; }

    /// Threads (any process) blocked waiting for an item / for room: polling or parked.
    uint32_t waiting(bool consumers) const noexcept {
        if (!attached()) return 0;
        return waiters_on(consumers ? ring_.control->consumers : ring_.control->producers);
    }

    /// Items in the queue (approximate while others put or get).
    uint64_t size() const noexcept { return attached() ? ring_.size() : 0; }

    // ---- crash recovery ---------------------------------------------------------------------
    bool recover() noexcept {
        if constexpr (!queue_recovery) return false;
        return attached() && recovery_->recover();
    }
    uint64_t lost_count() const noexcept { return attached() ? recovery_->lost_count() : 0; }
    uint64_t redelivered_count() const noexcept {
        return attached() ? recovery_->redelivered_count() : 0;
    }
    std::vector<LostItem> lost_items() const {
        return attached() ? recovery_->lost_items() : std::vector<LostItem>{};
    }
    uint64_t settled_tasks() const noexcept { return attached() ? recovery_->settled_tasks() : 0; }
    uint64_t discarded_puts() const noexcept {
        return attached() ? ring_.control->recovery.discarded.load(std::memory_order_relaxed) : 0;
    }
    std::vector<Stall> stalls() const {
        return attached() ? recovery_->stalls() : std::vector<Stall>{};
    }
    std::string describe_recovery() const {
        return attached() ? recovery_->describe() : std::string("empty queue handle\n");
    }

    // ---- event loops (docs/event_loop.md) ----------------------------------------------------
    /// This handle's descriptor for the get side (`for_get`) or the put side: polls readable
    /// when that operation would not block (spuriously sometimes: the try_ form then says
    /// empty/full, which re-arms it). Made on first call (per process: a fork()ed child gets its
    /// own), owned by the handle. Thread-safe; non-blocking. errc::registry_full when the side's
    /// max_queue_doorbells slots are all held by live processes.
    result<int> descriptor(bool for_get) {
        if (!attached()) return errc::closed;
        HandleBells& bells = *bells_;
        std::lock_guard lock(bells.mutex);
        std::unique_ptr<QueueDoorbell>& bell = bells.side[for_get ? 0 : 1];
        if (bell && bell->ours()) return bell->fd();
        bells.active[for_get ? 0 : 1].store(nullptr, std::memory_order_release);
        bell.reset();  // inherited from the parent: closes our copy of its socket only
        auto made =
            QueueDoorbell::open(for_get ? ring_.control->consumers : ring_.control->producers,
                                ring_.control->doorbells[for_get ? 0 : 1]);
        if (!made) return made.error();
        bell = std::move(*made);
        bells.active[for_get ? 0 : 1].store(bell.get(), std::memory_order_release);
        rearm(for_get);
        return bell->fd();
    }

  private:
    /// After an empty get (a full put) through this handle: re-arms its descriptor, if it has
    /// one (queue_doorbell.hpp). A stalled ring (a claimed, unfinished slot) keeps it readable
    /// and runs recovery, rate limited, so a loop never sleeps behind a killed producer.
    [[gnu::noinline]] void rearm(bool for_get) noexcept {
        QueueDoorbell* bell = bells_->active[for_get ? 0 : 1].load(std::memory_order_acquire);
        if (bell == nullptr || !bell->ours()) return;
        bool stalled = false;
        bell->arm([&] {
            QueueControl& control = *ring_.control;
            const uint64_t tail = control.tail.load(std::memory_order_seq_cst);  // (13)
            const uint64_t head = control.head.load(std::memory_order_seq_cst);  // (13)
            if ((tail & closed_bit) || closed()) return true;
            if (for_get) {
                stalled = tail != head || (ring_.redelivery && recovery_->orphans_pending());
            } else {
                stalled = head + ring_.capacity > tail;
            }
            return stalled;
        });
        if (stalled) maybe_recover();
    }

    template <class Write>
    errc put_attempt(Write&& write) noexcept {
        auto me = participants_->current();
        if (!me) return me.error() == errc::busy ? errc::full : me.error();  // try again later
        return ring_try_put(ring_, registry(), registry().entry(*me), write);
    }
    template <class Fits, class Read>
    errc get_attempt(Fits&& fits, Read&& read) noexcept {
        auto me = participants_->current();
        if (!me) return me.error() == errc::busy ? errc::empty : me.error();  // try again later
        uint64_t ticket = 0;
        return ring_try_get<false>(ring_, registry(), *me, fits, read, ticket);
    }
    template <class Attempt>
    errc wait_for_item(Attempt&& attempt, steady_clock::time_point deadline,
                       const std::stop_token& stop) {
        return block_until(
            *participants_, ring_.control->consumers, errc::empty, attempt,
            [&] { return items_or_orphans(); }, [&] { maybe_recover(); }, ring_.redelivery,
            deadline, stop);
    }

    const Registry& registry() const noexcept { return participants_->registry(); }
    uint64_t lease_key() const noexcept {
        return ring_.control->recovery.lease_key.load(std::memory_order_relaxed);
    }
    /// A consumer's reason to keep polling (and to run recovery while stalled): items, or (with
    /// redelivery) a lease that may be orphaned and waits to be put back.
    bool items_or_orphans() const noexcept {
        return size() > 0 || (ring_.redelivery && recovery_->orphans_pending());
    }

    /// Recovery, at most once a millisecond per handle: waiters that cannot make progress
    /// although the other side did (a slot claimed and not finished) and joiners call it.
    void maybe_recover() noexcept {
        if constexpr (queue_recovery)
            recovery_->recover_at_most_every(std::chrono::milliseconds(1));
    }

    Segment segment_;
    Ring ring_;
    std::unique_ptr<QueueRecovery> recovery_;
    std::unique_ptr<ThreadParticipants> participants_;
    std::atomic<bool> closed_{false};  // close(): this handle only
    /// The handle's descriptors (index 0: get side, 1: put side). Destroyed before the segment.
    struct HandleBells {
        std::mutex mutex;  // making one
        std::unique_ptr<QueueDoorbell> side[2];
        std::atomic<QueueDoorbell*> active[2] = {nullptr, nullptr};
    };
    std::unique_ptr<HandleBells> bells_ = std::make_unique<HandleBells>();
};

}  // namespace shuttle::detail
