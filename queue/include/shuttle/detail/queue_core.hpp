// The shared-memory ring behind every shuttle queue, and how its waiters park and wake.
//
// Slots and tickets. Puts take tickets from `tail`, gets from `head`; ticket t uses slot
// t % capacity on lap t / capacity. Each slot has a `turn`: 2*lap means "free for the put of
// this lap", 2*lap+1 "holds the item of this lap". A participant claims a ticket only when its
// slot is ready (check the turn, then CAS the cursor), so a process blocked in put/get holds no
// ticket: waits can time out, be cancelled, or be killed without wedging anyone (unlike
// ticket-first designs). Turns that step by two per lap keep capacity 1 unambiguous.
//
// Waiting. Each thread using the queue owns a registry entry with a private futex word, and
// two bits in its side's state word (consumers wait for items, producers for room): `polling`
// (past its first microseconds of spinning, now yielding) and `parked`. A put wakes a parked
// consumer only if no consumer is polling (one of them will take the item); the waker moves the
// chosen waiter from parked to polling in the same CAS, so the next put does not wake another.
// The last poller to leave passes the baton to a parked waiter if work remains. Bits are per
// participant, so a killed waiter's bits are found (liveness check) and cleared instead of
// leaking a count, and every park has a timeout backstop: a lost or dead wake-up costs time,
// never a hang. Short spins touch no shared state at all.
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string_view>

#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/queue_recovery.hpp"
#include "shuttle/detail/thread_participants.hpp"
#include "shuttle/error.hpp"
#include "shuttle/queue_types.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {
namespace detail {

/// The ring and its waiting, independent of the element type.
class QueueCore {
  public:
    explicit QueueCore(Segment segment)
        : segment_(std::move(segment)),
          ring_(ring_of(segment_)),
          recovery_(std::make_unique<QueueRecovery>(ring_, Registry(segment_))),
          participants_(std::make_unique<ThreadParticipants>(
              Registry(segment_),
              [recovery = recovery_.get()](uint32_t index, ProcessIdentity previous) {
                  recovery->adopt(index, previous);
              })) {
        recovery_->set_participants(participants_.get());
    }
    QueueCore(QueueCore&&) noexcept = default;
    /// Releases this handle's registry entries while its segment is still mapped.
    QueueCore& operator=(QueueCore&& other) noexcept {
        if (this != &other) {
            participants_.reset();
            segment_ = std::move(other.segment_);
            ring_ = other.ring_;
            recovery_ = std::move(other.recovery_);
            participants_ = std::move(other.participants_);
        }
        return *this;
    }
    ~QueueCore() { participants_.reset(); }

    /// Lays out a fresh (zeroed) segment body.
    static void initialise(Segment& segment) {
        new (segment.body()) QueueControl();
        const Ring ring = ring_of(segment);
        for (uint64_t i = 0; i < journal_capacity; ++i) {
            new (ring.journal + i) LostRecord{};
        }
        for (uint64_t i = 0; i < ring.capacity; ++i) {
            new (ring.slots + i * ring.stride) SlotHeader{};  // turn 0: free for lap 0
        }
        for (uint32_t i = 0; i < ring.lease_count; ++i) new (&ring.lease_at(i)) LeaseHeader{};
        if (ring.redelivery) {
            std::random_device random;
            const uint64_t key = (uint64_t{random()} << 32) ^ random() ^
                                 current_process_identity() ^
                                 steady_clock::now().time_since_epoch().count();
            ring.control->recovery.lease_key.store(key | 1, std::memory_order_relaxed);
        }
        RegistryEntry* entries = segment.registry();
        for (uint32_t i = 0; i < segment.info().registry_capacity; ++i) {
            entries[i].announced.store(announce_none, std::memory_order_relaxed);
        }
    }

    uint64_t capacity() const noexcept { return ring_.capacity; }
    uint64_t payload_capacity() const noexcept { return ring_.payload_capacity; }
    const Segment& segment() const noexcept { return segment_; }
    bool joinable() const noexcept { return ring_.joinable; }
    bool redelivery() const noexcept { return ring_.redelivery; }

    // ---- non-blocking attempts -------------------------------------------------------------
    // `write(void* payload) -> uint64_t length` fills a claimed slot; it must not throw.
    template <class Write>
    errc try_put(Write&& write) noexcept {
        auto me = participants_->current();
        if (!me) return me.error();
        return ring_try_put(ring_, registry(), registry().entry(*me), write);
    }

    // `fits(uint64_t length) -> bool` may refuse a message (nothing is consumed then);
    // `read(const void* payload, uint64_t length)` copies it out; it must not throw.
    template <class Fits, class Read>
    errc try_get(Fits&& fits, Read&& read) noexcept {
        auto me = participants_->current();
        if (!me) return me.error();
        return try_get_from<false>(*me, fits, read, nullptr);
    }

    /// get_task(): as try_get, and the item is also kept in this thread's lease until
    /// task_done(task) (`task` tells which). errc::task_held if this thread holds one already.
    template <class Fits, class Read>
    errc try_get_task(Fits&& fits, Read&& read, TaskId& task) noexcept {
        if (!ring_.redelivery) return errc::invalid_argument;
        auto me = participants_->current();
        if (!me) return me.error();
        LeaseHeader& lease = ring_.lease_at(*me);
        const uint64_t state = lease.state.load(std::memory_order_acquire);
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
        return try_get_from<true>(*me, fits, read, &task);
    }

  private:
    template <bool Leased, class Fits, class Read>
    errc try_get_from(uint32_t me, Fits&& fits, Read&& read, TaskId* task) noexcept {
        RegistryEntry& entry = registry().entry(me);
        QueueControl& control = *ring_.control;
        uint64_t head = control.head.load(std::memory_order_relaxed);
        for (;;) {
            SlotHeader& slot = ring_.slot_at(head);
            const uint64_t lap = ring_.lap_of(head);
            const uint64_t turn = slot.turn.load(std::memory_order_acquire);
            const int64_t diff = static_cast<int64_t>(turn - (2 * lap + 1));
            if (diff == 0) {
                // The slot is full and stays so until claimed: its length is stable. Read it
                // once and bound it: the segment is untrusted input.
                const uint64_t length = std::min<uint64_t>(
                    slot.length.load(std::memory_order_relaxed), ring_.payload_capacity);
                if (!fits(length)) return errc::buffer_too_small;
                uint64_t taken = 0;
                if constexpr (queue_recovery) {
                    taken = entry.words[entry_taken].load(std::memory_order_relaxed);
                    entry.announced.store(head | announce_get |
                                              ((taken & 1) ? announce_parity : 0) |
                                              (Leased ? announce_lease : 0),
                                          std::memory_order_relaxed);
                }
                SHUTTLE_KILL_POINT("queue.get.announced");
                if (control.head.compare_exchange_weak(head, head + 1, std::memory_order_seq_cst,
                                                       std::memory_order_relaxed)) {
                    SHUTTLE_KILL_POINT("queue.get.claimed");
                    if constexpr (Leased) {
                        // Into the lease before the slot is released: from here on the item
                        // survives this thread's death (recovery redelivers it).
                        LeaseHeader& lease = ring_.lease_at(me);
                        if (length != 0) {
                            std::memcpy(Ring::payload_of(lease), Ring::payload_of(slot), length);
                        }
                        lease.length.store(length, std::memory_order_relaxed);
                        lease.state.store(lease_held | head, std::memory_order_release);
                        SHUTTLE_KILL_POINT("queue.lease.written");
                        *task = TaskId{lease_key(), head, me};
                    }
                    read(static_cast<const void*>(Ring::payload_of(slot)), length);
                    if (queue_recovery && ring_.joinable && !Leased) {
                        // Counted before the release: a consumer killed from here on has taken
                        // the task, and settling its entry covers it.
                        entry.words[entry_taken].store(taken + 1, std::memory_order_relaxed);
                        SHUTTLE_KILL_POINT("queue.get.counted");
                    }
                    slot.turn.store(2 * lap + 2, std::memory_order_release);
                    SHUTTLE_KILL_POINT(Leased ? "queue.lease.released" : "queue.get.released");
                    notify(control.producers);
                    return errc::ok;
                }
                if constexpr (queue_recovery) {
                    entry.announced.store(announce_none, std::memory_order_relaxed);
                }
            } else if (diff < 0) {
                // Not yet written on this lap (empty, or a producer is still writing it), or
                // a lost put to discard.
                if (queue_recovery && turn == ((2 * lap + 1) | poison_bit)) {
                    entry.announced.store(head | announce_get, std::memory_order_relaxed);
                    if (control.head.compare_exchange_weak(
                            head, head + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
                        SHUTTLE_KILL_POINT("queue.get.discarding");
                        slot.turn.store(2 * lap + 2, std::memory_order_release);
                        control.recovery.discarded.fetch_add(1, std::memory_order_relaxed);
                        notify(control.producers);
                        head = head + 1;
                    } else {
                        entry.announced.store(announce_none, std::memory_order_relaxed);
                    }
                    continue;
                }
                const uint64_t now = control.head.load(std::memory_order_relaxed);
                if (now == head) {
                    if (control.closed.load(std::memory_order_acquire) == 0) return errc::empty;
                    const uint64_t tail = control.tail.load(std::memory_order_acquire);
                    return (tail & ~closed_bit) <= head ? errc::closed : errc::empty;
                }
                head = now;
            } else {
                head = control.head.load(std::memory_order_relaxed);
            }
        }
    }

  public:
    // ---- blocking ---------------------------------------------------------------------------
    template <class Write>
    errc put_until(Write&& write, steady_clock::time_point deadline, const std::stop_token& stop) {
        return block_until(
            ring_.control->producers, errc::full, [&] { return try_put(write); },
            [&] { return size() < ring_.capacity; }, deadline, stop);
    }

    template <class Fits, class Read>
    errc get_until(Fits&& fits, Read&& read, steady_clock::time_point deadline,
                   const std::stop_token& stop) {
        return block_until(
            ring_.control->consumers, errc::empty, [&] { return try_get(fits, read); },
            [&] { return items_or_orphans(); }, deadline, stop);
    }

    template <class Fits, class Read>
    errc get_task_until(Fits&& fits, Read&& read, TaskId& task, steady_clock::time_point deadline,
                        const std::stop_token& stop) {
        return block_until(
            ring_.control->consumers, errc::empty, [&] { return try_get_task(fits, read, task); },
            [&] { return items_or_orphans(); }, deadline, stop);
    }

    // ---- shutdown and accounting -------------------------------------------------------------
    void close() noexcept {
        ring_.control->tail.fetch_or(closed_bit, std::memory_order_seq_cst);
        ring_.control->closed.store(1, std::memory_order_seq_cst);
        wake_everyone();
    }

    bool closed() const noexcept {
        return ring_.control->tail.load(std::memory_order_acquire) & closed_bit;
    }

    /// Closes, then (immediate) discards what is queued, settling task accounting for each
    /// discarded item. Returns the number discarded.
    uint64_t shutdown(bool immediate) noexcept {
        close();
        if (!immediate) return 0;
        uint64_t discarded = 0;
        for (;;) {
            errc rc = get_until([](uint64_t) { return true; }, [](const void*, uint64_t) {},
                                no_deadline, {});
            if (rc != errc::ok) break;
            ++discarded;
            if (joinable()) (void)task_done();
        }
        return discarded;
    }

    status task_done() noexcept {
        auto me = participants_->current();
        if (!me) return me.error();
        return count_done(registry().entry(*me));
    }

    /// task_done(task): acknowledges a task got with get_task(), from the thread that got it.
    /// Stale, already acknowledged, or held by another thread: not_owner; another queue's:
    /// invalid_argument (nothing changes). Counted in the lease's own `acks` (not the queue's
    /// `done`): the lease says "acknowledging, acks becomes acks_target" meanwhile, so recovery
    /// finishes a holder killed in between exactly (neither redelivered nor counted twice).
    status task_done(const TaskId& task) noexcept {
        if (!ring_.redelivery || task.queue != lease_key() || task.holder >= ring_.lease_count) {
            return errc::invalid_argument;
        }
        // The holding thread's own entry: only it writes its lease while it lives (a recoverer
        // only once its process is dead), so the lease's words need no CAS.
        auto me = participants_->current();
        if (!me) return me.error();
        if (*me != task.holder) return errc::not_owner;
        LeaseHeader& lease = ring_.lease_at(task.holder);
        if (task.ticket > lease_ticket_mask ||
            lease.state.load(std::memory_order_acquire) != (lease_held | task.ticket)) {
            return errc::not_owner;
        }
        const uint64_t acks = lease.acks.load(std::memory_order_relaxed);
        lease.acks_target.store(acks + 1, std::memory_order_relaxed);
        lease.state.store(lease_acking | task.ticket, std::memory_order_release);
        SHUTTLE_KILL_POINT("queue.task_done.acking");
        lease.acks.store(acks + 1, std::memory_order_seq_cst);
        SHUTTLE_KILL_POINT("queue.task_done.counted");
        lease.state.store(0, std::memory_order_release);
        SHUTTLE_KILL_POINT("queue.task_done.lease_cleared");
        if (unfinished_tasks() == 0) wake_joiners();
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
        } while (!control.done.compare_exchange_weak(done, done + 1, std::memory_order_seq_cst));
        SHUTTLE_KILL_POINT("queue.task_done.done");
        count_mine();
        if (remaining == 0) wake_joiners();
        return errc::ok;
    }

    void wake_joiners() noexcept {
        QueueControl& control = *ring_.control;
        control.join_word.fetch_add(1, std::memory_order_seq_cst);
        if (control.joiners.load(std::memory_order_seq_cst) != 0) wake_all(control.join_word);
    }

  public:
    status join_until(steady_clock::time_point deadline, const std::stop_token& stop) {
        QueueControl& control = *ring_.control;
        for (;;) {
            if (unfinished_tasks() == 0) return errc::ok;
            control.joiners.fetch_add(1, std::memory_order_seq_cst);
            const uint32_t word = control.join_word.load(std::memory_order_seq_cst);
            if (unfinished_tasks() == 0) {
                control.joiners.fetch_sub(1, std::memory_order_relaxed);
                return errc::ok;
            }
            const auto now = steady_clock::now();
            if (now >= deadline) {
                control.joiners.fetch_sub(1, std::memory_order_relaxed);
                return errc::timeout;
            }
            // Backstop: tasks of a killed consumer are settled by recovery, which joiners run
            // every few milliseconds while the count does not move.
            const auto slice = std::min(deadline, now + std::chrono::milliseconds(5));
            const wake_reason reason = wait_on(control.join_word, word, slice, stop);
            control.joiners.fetch_sub(1, std::memory_order_relaxed);
            if (reason == wake_reason::cancelled) return errc::cancelled;
            if (reason == wake_reason::timeout) maybe_recover();
        }
    }

    uint64_t unfinished_tasks() const noexcept {
        const uint64_t finished = ring_.finished_tasks();
        const uint64_t tickets = ring_.put_tickets();
        return tickets > finished ? tickets - finished : 0;
    }

    /// Threads (any process) blocked waiting for an item / for room: polling or parked.
    uint32_t waiting(bool consumers) const noexcept {
        const uint64_t state = (consumers ? ring_.control->consumers : ring_.control->producers)
                                   .state.load(std::memory_order_acquire);
        return static_cast<uint32_t>(std::popcount((state | (state >> 32)) & parked_mask));
    }

    /// Items in the queue (approximate while others put or get).
    uint64_t size() const noexcept {
        const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
        const uint64_t tail = ring_.put_tickets();
        if (tail <= head) return 0;
        return std::min<uint64_t>(tail - head, ring_.capacity);
    }

    // ---- crash recovery ---------------------------------------------------------------------
    bool recover() noexcept {
        if constexpr (!queue_recovery) return false;
        return recovery_->recover();
    }
    uint64_t lost_count() const noexcept { return recovery_->lost_count(); }
    uint64_t redelivered_count() const noexcept { return recovery_->redelivered_count(); }
    std::vector<LostItem> lost_items() const { return recovery_->lost_items(); }
    uint64_t settled_tasks() const noexcept { return recovery_->settled_tasks(); }
    uint64_t discarded_puts() const noexcept {
        return ring_.control->recovery.discarded.load(std::memory_order_relaxed);
    }
    std::vector<Stall> stalls() const { return recovery_->stalls(); }
    std::string describe_recovery() const { return recovery_->describe(); }

  private:
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

    /// After a put (or get): wake one parked consumer (producer) unless one is polling.
    void notify(WaitSide& side) noexcept {
        const uint64_t state = side.state.load(std::memory_order_relaxed);
        if ((state & parked_mask) == 0 || (state & polling_mask) != 0) return;
        wake_one_waiter(side, registry());
    }

    void wake_everyone() noexcept {
        for (WaitSide* side : {&ring_.control->consumers, &ring_.control->producers}) {
            // Bounded: a corrupt word must not loop us forever.
            for (uint32_t i = 0; i < max_queue_participants &&
                                 (side->state.load(std::memory_order_acquire) & parked_mask) != 0;
                 ++i) {
                wake_one_waiter(*side, registry());
            }
        }
        ring_.control->join_word.fetch_add(1, std::memory_order_seq_cst);
        wake_all(ring_.control->join_word);
    }

    /// Clears the bits of waiters whose process died (after an unexplained backstop timeout:
    /// a dead poller would otherwise suppress every wake-up on this side).
    void clear_dead_waiters(WaitSide& side, uint32_t self) noexcept {
        const uint64_t state = side.state.load(std::memory_order_acquire);
        uint32_t suspects = static_cast<uint32_t>(state | (state >> 32)) & ~(1u << self);
        while (suspects != 0) {
            const uint32_t index = static_cast<uint32_t>(std::countr_zero(suspects));
            suspects &= suspects - 1;
            if (index >= registry().capacity()) continue;
            if (registry().liveness(index) == Liveness::dead) {
                side.state.fetch_and(~(parked_bit(index) | polling_bit(index)),
                                     std::memory_order_acq_rel);
            }
        }
    }

    /// Moves this waiter from parked to polling unless a waker already did. Returns true if
    /// this waiter did it itself (nobody woke it).
    static bool unpark(WaitSide& side, uint32_t index) noexcept {
        uint64_t state = side.state.load(std::memory_order_acquire);
        while (state & parked_bit(index)) {
            const uint64_t next = (state & ~parked_bit(index)) | polling_bit(index);
            if (side.state.compare_exchange_weak(state, next, std::memory_order_acq_rel)) {
                return true;
            }
        }
        return false;
    }

    /// Leaves a side where this waiter was polling; passes the baton on if it was the last
    /// poller and work remains (so a wake-up it absorbed or suppressed is not lost).
    template <class WorkAvailable>
    void leave(WaitSide& side, uint32_t index, WorkAvailable&& work_available) noexcept {
        const uint64_t before =
            side.state.fetch_and(~polling_bit(index), std::memory_order_acq_rel);
        const uint64_t after = before & ~polling_bit(index);
        if ((after & polling_mask) == 0 && (after & parked_mask) != 0 && work_available()) {
            wake_one_waiter(side, registry());
        }
    }

    template <class Attempt, class WorkAvailable>
    errc block_until(WaitSide& side, errc would_block, Attempt&& attempt,
                     WorkAvailable&& work_available, steady_clock::time_point deadline,
                     const std::stop_token& stop) {
        errc rc = attempt();
        if (rc != would_block) return rc;
        const bool timed = deadline != no_deadline;
        if (timed && steady_clock::now() >= deadline) return errc::timeout;
        auto me = participants_->current();
        if (!me) return me.error();
        const uint32_t index = *me;
        RegistryEntry& entry = registry().entry(index);
        bool published = false;  // is our polling bit set?
        auto finish = [&](errc result) {
            if (published) leave(side, index, work_available);
            return result;
        };
        auto first_slice = std::chrono::milliseconds(1);
        for (;;) {
            Backoff backoff;
            while (backoff.step()) {
                rc = attempt();
                if (rc != would_block) {
                    backoff.satisfied();
                    return finish(rc);
                }
                if (stop.stop_requested()) return finish(errc::cancelled);
                if (backoff.yielding()) {
                    if (!published) {
                        side.state.fetch_or(polling_bit(index), std::memory_order_acq_rel);
                        published = true;
                    }
                    if (timed && steady_clock::now() >= deadline) return finish(errc::timeout);
                    // The other side made progress we cannot take: a slot claimed and not
                    // finished, perhaps by a process that was killed.
                    if (work_available()) maybe_recover();
                }
            }
            // Park: trade the polling bit for the parked bit, then re-check before sleeping.
            const uint32_t word = entry.wake_word.load(std::memory_order_acquire);
            if (published) {
                side.state.fetch_xor(polling_bit(index) | parked_bit(index),
                                     std::memory_order_seq_cst);
            } else {
                side.state.fetch_or(parked_bit(index), std::memory_order_seq_cst);
            }
            published = true;  // from here on we leave parked or polling, never neither
            rc = attempt();
            const auto now = steady_clock::now();
            if (rc != would_block || now >= deadline) {
                unpark(side, index);
                return finish(rc != would_block ? rc : errc::timeout);
            }
            // Backstop: the first slice is short (covers a wake racing with parking), later
            // ones long (cover a waker that died), so an idle waiter costs ~nothing. A waiter
            // stalled behind an unfinished slot keeps short slices, so recovery runs promptly.
            const bool stalled = queue_recovery && work_available();
            if (stalled) maybe_recover();
            const auto slice =
                std::min(deadline, now + (stalled ? std::chrono::milliseconds(1) : first_slice));
            first_slice = std::chrono::milliseconds(100);
            const wake_reason reason = wait_on(entry.wake_word, word, slice, stop);
            const bool nobody_woke_us = unpark(side, index);
            if (reason == wake_reason::cancelled) return finish(errc::cancelled);
            if (nobody_woke_us && reason == wake_reason::timeout) {
                clear_dead_waiters(side, index);
                // A leased task's holder may have died (nothing else tells an idle consumer).
                if (ring_.redelivery) maybe_recover();
            }
        }
    }

    Segment segment_;
    Ring ring_;
    std::unique_ptr<QueueRecovery> recovery_;
    std::unique_ptr<ThreadParticipants> participants_;
};

}  // namespace detail
}  // namespace shuttle
