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
#include <stop_token>
#include <string_view>

#include "shuttle/detail/thread_participants.hpp"
#include "shuttle/error.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {

/// Creation/attach options shared by every queue form.
struct QueueOptions {
    /// Threads (in any process) that may use the queue at once; at most 32.
    uint32_t max_participants = 32;
    /// Permission bits of a new named queue.
    unsigned mode = 0600;
    /// Part of the element fingerprint checked on open (with size and alignment).
    uint64_t type_tag = 0;
    /// Whether destroying the creating handle (in the creating process) removes the name.
    bool remove_on_destroy = false;
};

namespace detail {

inline constexpr uint64_t closed_bit = uint64_t{1} << 63;
inline constexpr uint32_t max_queue_participants = 32;
inline constexpr uint64_t max_queue_capacity = uint64_t{1} << 32;
inline constexpr uint64_t max_queue_bytes = uint64_t{1} << 40;
inline constexpr uint64_t queue_flag_joinable = 1;
inline constexpr uint64_t queue_flag_variable_length = 2;

/// Who waits on one side (consumers for an item, producers for room): bit i of the low half
/// means registry entry i is parked, bit i of the high half that it is polling. One word, so a
/// waker moves a waiter from parked to polling in one CAS.
struct alignas(cache_line) WaitSide {
    std::atomic<uint64_t> state{0};
};
inline constexpr uint64_t parked_bit(uint32_t index) {
    return uint64_t{1} << index;
}
inline constexpr uint64_t polling_bit(uint32_t index) {
    return uint64_t{1} << (index + 32);
}
inline constexpr uint64_t parked_mask = 0xffffffffull;
inline constexpr uint64_t polling_mask = ~parked_mask;

/// The queue's control block at the start of the segment body. Hot cursors on their own lines.
struct QueueControl {
    alignas(cache_line) std::atomic<uint64_t> tail{0};  // next put ticket | closed_bit
    alignas(cache_line) std::atomic<uint64_t> head{0};  // next get ticket
    WaitSide consumers;                                 // waiting for an item
    WaitSide producers;                                 // waiting for room
    // Set after the tail's closed bit: consumers that find the ring empty read this read-mostly
    // line instead of the producers' tail, which would otherwise bounce on every empty poll.
    alignas(cache_line) std::atomic<uint32_t> closed{0};
    alignas(cache_line) std::atomic<uint64_t> unfinished{0};  // JoinableQueue task count
    std::atomic<uint32_t> join_word{0};
    std::atomic<uint32_t> joiners{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "queue cursors must be lock-free");
static_assert(sizeof(QueueControl) % cache_line == 0, "slots start on a cache line");

struct alignas(16) SlotHeader {
    std::atomic<uint64_t> turn;
    uint64_t length;
};
inline constexpr std::size_t slot_header_size = sizeof(SlotHeader);

inline uint64_t slot_stride_for(uint64_t payload_size) {
    return (slot_header_size + payload_size + cache_line - 1) / cache_line * cache_line;
}

/// Body size for a queue segment; nullopt when a value is out of range.
inline std::optional<uint64_t> queue_body_size(const SegmentInfo& info) {
    const uint64_t payload =
        (info.flags & queue_flag_variable_length) ? info.max_message_size : info.element_size;
    if (info.capacity == 0 || info.capacity > max_queue_capacity) return std::nullopt;
    if (payload > max_queue_bytes || info.registry_capacity == 0 ||
        info.registry_capacity > max_queue_participants) {
        return std::nullopt;
    }
    const uint64_t stride = slot_stride_for(payload);
    if (info.capacity > (max_queue_bytes - sizeof(QueueControl)) / stride) return std::nullopt;
    return sizeof(QueueControl) + info.capacity * stride;
}

/// The ring and its waiting, independent of the element type.
class QueueCore {
  public:
    explicit QueueCore(Segment segment)
        : segment_(std::move(segment)),
          control_(reinterpret_cast<QueueControl*>(segment_.body())),
          slots_(segment_.body() + sizeof(QueueControl)),
          capacity_(segment_.info().capacity),
          payload_capacity_((segment_.info().flags & queue_flag_variable_length)
                                ? segment_.info().max_message_size
                                : segment_.info().element_size),
          stride_(slot_stride_for(payload_capacity_)),
          capacity_mask_(std::has_single_bit(capacity_) && capacity_ > 1 ? capacity_ - 1 : 0),
          capacity_shift_(static_cast<uint32_t>(std::countr_zero(capacity_))),
          joinable_(segment_.info().flags & queue_flag_joinable),
          participants_(std::make_unique<ThreadParticipants>(
              Registry(segment_), [control = control_](uint32_t index, ProcessIdentity) {
                  forget_participant(*control, index);
              })) {}

    /// Lays out a fresh (zeroed) segment body.
    static void initialise(Segment& segment) {
        new (segment.body()) QueueControl();
        const SegmentInfo& info = segment.info();
        const uint64_t payload =
            (info.flags & queue_flag_variable_length) ? info.max_message_size : info.element_size;
        const uint64_t stride = slot_stride_for(payload);
        std::byte* slots = segment.body() + sizeof(QueueControl);
        for (uint64_t i = 0; i < info.capacity; ++i) {
            new (slots + i * stride) SlotHeader{};  // turn 0: free for lap 0
        }
    }

    uint64_t capacity() const noexcept { return capacity_; }
    uint64_t payload_capacity() const noexcept { return payload_capacity_; }
    const Segment& segment() const noexcept { return segment_; }
    bool joinable() const noexcept { return joinable_; }

    // ---- non-blocking attempts -------------------------------------------------------------
    // `write(void* payload) -> uint64_t length` fills a claimed slot; it must not throw.
    template <class Write>
    errc try_put(Write&& write) noexcept {
        auto me = participants_->current();
        if (!me) return me.error();
        RegistryEntry& entry = registry().entry(*me);
        uint64_t tail = control_->tail.load(std::memory_order_relaxed);
        for (;;) {
            if (tail & closed_bit) return errc::closed;
            SlotHeader& slot = slot_at(tail);
            const uint64_t lap = lap_of(tail);
            const int64_t diff =
                static_cast<int64_t>(slot.turn.load(std::memory_order_acquire) - 2 * lap);
            if (diff == 0) {
                // Announce before claiming (crash recovery reads it; see DESIGN §6).
                entry.announced.store(tail, std::memory_order_relaxed);
                if (control_->tail.compare_exchange_weak(tail, tail + 1, std::memory_order_seq_cst,
                                                         std::memory_order_relaxed)) {
                    SHUTTLE_KILL_POINT("queue.put.claimed");
                    if (joinable()) control_->unfinished.fetch_add(1, std::memory_order_relaxed);
                    slot.length = write(payload_of(slot));
                    slot.turn.store(2 * lap + 1, std::memory_order_release);
                    notify(control_->consumers);
                    return errc::ok;
                }
            } else if (diff < 0) {
                // The slot still holds the previous lap's item: full (unless tail moved on).
                const uint64_t now = control_->tail.load(std::memory_order_relaxed);
                if (now == tail) return errc::full;
                tail = now;
            } else {
                tail = control_->tail.load(std::memory_order_relaxed);
            }
        }
    }

    // `fits(uint64_t length) -> bool` may refuse a message (nothing is consumed then);
    // `read(const void* payload, uint64_t length)` copies it out; it must not throw.
    template <class Fits, class Read>
    errc try_get(Fits&& fits, Read&& read) noexcept {
        auto me = participants_->current();
        if (!me) return me.error();
        RegistryEntry& entry = registry().entry(*me);
        uint64_t head = control_->head.load(std::memory_order_relaxed);
        for (;;) {
            SlotHeader& slot = slot_at(head);
            const uint64_t lap = lap_of(head);
            const int64_t diff =
                static_cast<int64_t>(slot.turn.load(std::memory_order_acquire) - (2 * lap + 1));
            if (diff == 0) {
                // The slot is full and stays so until claimed: its length is stable. Read it
                // once and bound it: the segment is untrusted input.
                const uint64_t length = std::min<uint64_t>(slot.length, payload_capacity_);
                if (!fits(length)) return errc::buffer_too_small;
                entry.announced.store(head | closed_bit, std::memory_order_relaxed);
                if (control_->head.compare_exchange_weak(head, head + 1, std::memory_order_seq_cst,
                                                         std::memory_order_relaxed)) {
                    SHUTTLE_KILL_POINT("queue.get.claimed");
                    read(static_cast<const void*>(payload_of(slot)), length);
                    slot.turn.store(2 * lap + 2, std::memory_order_release);
                    notify(control_->producers);
                    return errc::ok;
                }
            } else if (diff < 0) {
                // Not yet written on this lap: empty, or a producer is still writing it.
                const uint64_t now = control_->head.load(std::memory_order_relaxed);
                if (now == head) {
                    if (control_->closed.load(std::memory_order_acquire) == 0) return errc::empty;
                    const uint64_t tail = control_->tail.load(std::memory_order_acquire);
                    return (tail & ~closed_bit) <= head ? errc::closed : errc::empty;
                }
                head = now;
            } else {
                head = control_->head.load(std::memory_order_relaxed);
            }
        }
    }

    // ---- blocking ---------------------------------------------------------------------------
    template <class Write>
    errc put_until(Write&& write, steady_clock::time_point deadline, const std::stop_token& stop) {
        return block_until(
            control_->producers, errc::full, [&] { return try_put(write); },
            [&] { return size() < capacity_; }, deadline, stop);
    }

    template <class Fits, class Read>
    errc get_until(Fits&& fits, Read&& read, steady_clock::time_point deadline,
                   const std::stop_token& stop) {
        return block_until(
            control_->consumers, errc::empty, [&] { return try_get(fits, read); },
            [&] { return size() > 0; }, deadline, stop);
    }

    // ---- shutdown and accounting -------------------------------------------------------------
    void close() noexcept {
        control_->tail.fetch_or(closed_bit, std::memory_order_seq_cst);
        control_->closed.store(1, std::memory_order_seq_cst);
        wake_everyone();
    }

    bool closed() const noexcept {
        return control_->tail.load(std::memory_order_acquire) & closed_bit;
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
        uint64_t count = control_->unfinished.load(std::memory_order_relaxed);
        do {
            if (count == 0) return errc::task_done_overflow;
        } while (!control_->unfinished.compare_exchange_weak(count, count - 1,
                                                             std::memory_order_seq_cst));
        if (count == 1) {
            control_->join_word.fetch_add(1, std::memory_order_seq_cst);
            if (control_->joiners.load(std::memory_order_seq_cst) != 0) {
                wake_all(control_->join_word);
            }
        }
        return errc::ok;
    }

    status join_until(steady_clock::time_point deadline, const std::stop_token& stop) {
        for (;;) {
            if (control_->unfinished.load(std::memory_order_seq_cst) == 0) return errc::ok;
            control_->joiners.fetch_add(1, std::memory_order_seq_cst);
            const uint32_t word = control_->join_word.load(std::memory_order_seq_cst);
            if (control_->unfinished.load(std::memory_order_seq_cst) == 0) {
                control_->joiners.fetch_sub(1, std::memory_order_relaxed);
                return errc::ok;
            }
            const auto now = steady_clock::now();
            if (now >= deadline) {
                control_->joiners.fetch_sub(1, std::memory_order_relaxed);
                return errc::timeout;
            }
            // Backstop: a task_done() in a process killed before its wake costs 100 ms at most.
            const auto slice = std::min(deadline, now + std::chrono::milliseconds(100));
            const wake_reason reason = wait_on(control_->join_word, word, slice, stop);
            control_->joiners.fetch_sub(1, std::memory_order_relaxed);
            if (reason == wake_reason::cancelled) return errc::cancelled;
        }
    }

    uint64_t unfinished_tasks() const noexcept {
        return control_->unfinished.load(std::memory_order_acquire);
    }

    /// Threads (any process) blocked waiting for an item / for room: polling or parked.
    uint32_t waiting(bool consumers) const noexcept {
        const uint64_t state = (consumers ? control_->consumers : control_->producers)
                                   .state.load(std::memory_order_acquire);
        return static_cast<uint32_t>(std::popcount((state | (state >> 32)) & parked_mask));
    }

    /// Items in the queue (approximate while others put or get).
    uint64_t size() const noexcept {
        const uint64_t head = control_->head.load(std::memory_order_acquire);
        const uint64_t tail = control_->tail.load(std::memory_order_acquire) & ~closed_bit;
        if (tail <= head) return 0;
        return std::min<uint64_t>(tail - head, capacity_);
    }

  private:
    const Registry& registry() const noexcept { return participants_->registry(); }

    SlotHeader& slot_at(uint64_t ticket) const noexcept {
        return *reinterpret_cast<SlotHeader*>(slots_ + index_of(ticket) * stride_);
    }
    // Tickets map to (slot, lap); a power-of-two capacity avoids the 64-bit division.
    uint64_t index_of(uint64_t ticket) const noexcept {
        return capacity_mask_ ? ticket & capacity_mask_ : ticket % capacity_;
    }
    uint64_t lap_of(uint64_t ticket) const noexcept {
        return capacity_mask_ ? ticket >> capacity_shift_ : ticket / capacity_;
    }
    static std::byte* payload_of(SlotHeader& slot) noexcept {
        return reinterpret_cast<std::byte*>(&slot) + slot_header_size;
    }

    /// After a put (or get): wake one parked consumer (producer) unless one is polling.
    void notify(WaitSide& side) noexcept {
        const uint64_t state = side.state.load(std::memory_order_relaxed);
        if ((state & parked_mask) == 0 || (state & polling_mask) != 0) return;
        wake_one(side);
    }

    /// Moves one parked waiter to polling and wakes it.
    void wake_one(WaitSide& side) noexcept {
        uint64_t state = side.state.load(std::memory_order_relaxed);
        while ((state & parked_mask) != 0) {
            const uint32_t index = static_cast<uint32_t>(std::countr_zero(state & parked_mask));
            const uint64_t next = (state & ~parked_bit(index)) | polling_bit(index);
            if (side.state.compare_exchange_weak(state, next, std::memory_order_acq_rel)) {
                wake_participant(index);
                return;
            }
        }
    }

    void wake_participant(uint32_t index) noexcept {
        RegistryEntry& entry = registry().entry(index);
        entry.wake_word.fetch_add(1, std::memory_order_release);
        wake(entry.wake_word, 1);
    }

    void wake_everyone() noexcept {
        for (WaitSide* side : {&control_->consumers, &control_->producers}) {
            while ((side->state.load(std::memory_order_acquire) & parked_mask) != 0) {
                wake_one(*side);
            }
        }
        control_->join_word.fetch_add(1, std::memory_order_seq_cst);
        wake_all(control_->join_word);
    }

    /// A (re)claimed registry entry must not inherit a dead holder's waiter bits.
    static void forget_participant(QueueControl& control, uint32_t index) noexcept {
        for (WaitSide* side : {&control.consumers, &control.producers}) {
            side->state.fetch_and(~(parked_bit(index) | polling_bit(index)),
                                  std::memory_order_acq_rel);
        }
    }

    /// Clears the bits of waiters whose process died (after an unexplained backstop timeout:
    /// a dead poller would otherwise suppress every wake-up on this side).
    void clear_dead_waiters(WaitSide& side, uint32_t self) noexcept {
        const uint64_t state = side.state.load(std::memory_order_acquire);
        uint32_t suspects = static_cast<uint32_t>(state | (state >> 32)) & ~(1u << self);
        while (suspects != 0) {
            const uint32_t index = static_cast<uint32_t>(std::countr_zero(suspects));
            suspects &= suspects - 1;
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
            wake_one(side);
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
                if (rc != would_block) return finish(rc);
                if (stop.stop_requested()) return finish(errc::cancelled);
                if (backoff.yielding()) {
                    if (!published) {
                        side.state.fetch_or(polling_bit(index), std::memory_order_acq_rel);
                        published = true;
                    }
                    if (timed && steady_clock::now() >= deadline) return finish(errc::timeout);
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
            // ones long (cover a waker that died), so an idle waiter costs ~nothing.
            const auto slice = std::min(deadline, now + first_slice);
            first_slice = std::chrono::milliseconds(100);
            const wake_reason reason = wait_on(entry.wake_word, word, slice, stop);
            const bool nobody_woke_us = unpark(side, index);
            if (reason == wake_reason::cancelled) return finish(errc::cancelled);
            if (nobody_woke_us && reason == wake_reason::timeout) clear_dead_waiters(side, index);
        }
    }

    Segment segment_;
    QueueControl* control_;
    std::byte* slots_;
    uint64_t capacity_;
    uint64_t payload_capacity_;
    uint64_t stride_;
    uint64_t capacity_mask_;  // capacity - 1 when a power of two (> 1), else 0
    uint32_t capacity_shift_;
    bool joinable_;
    std::unique_ptr<ThreadParticipants> participants_;
};

}  // namespace detail
}  // namespace shuttle
