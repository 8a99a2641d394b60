// How a queue's waiters park and wake: consumers wait for an item, producers for room, joiners
// for every task to be done. Free functions over the shared words (queue_layout.hpp) and the
// registry; the ring (queue_ring.hpp) calls notify() after each put and get.
//
// Each thread using the queue owns a registry entry with a private futex word
// (RegistryEntry::wake_word), and two bits in its side's waiter word (WaitSide::state, one
// cache line per side):
//
//   bit i       (0..31)   parked:  entry i sleeps on its wake_word
//   bit 32 + i  (32..63)  polling: entry i is past its first microseconds of spinning, yielding
//
// A put wakes a parked consumer only if no consumer is polling (one of them will take the
// item); the waker moves the chosen waiter from parked to polling in the same CAS, so the next
// put does not wake another. The last poller to leave passes the baton to a parked waiter if
// work remains. Bits are per participant, so a killed waiter's bits are found (liveness check)
// and cleared instead of leaking a count, and every park has a timeout backstop: a lost or dead
// wake-up costs time, never a hang. Short spins touch no shared state at all.
//
// Joiners share one futex word (QueueControl::join_word, bumped whenever tasks finish) and
// count themselves in QueueControl::joiners, so a task_done() with nobody joining makes no
// system call.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <stop_token>

#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/thread_participants.hpp"
#include "shuttle/error.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

static_assert(max_queue_participants <= 32,
              "a waiter word holds one parked and one polling bit per registry entry");

/// Threads (any process) waiting on `side` now: polling or parked. Diagnostic; approximate.
inline uint32_t waiters_on(const WaitSide& side) noexcept {
    const uint64_t state = side.state.load(std::memory_order_acquire);
    return static_cast<uint32_t>(std::popcount((state | (state >> 32)) & parked_mask));
}

/// Moves one parked waiter of `side` to polling and wakes it. Indices found in the shared word
/// are bounded by the registry's size (the segment is untrusted input).
inline void wake_one_waiter(WaitSide& side, const Registry& registry) noexcept {
    const uint64_t valid =
        registry.capacity() >= 32 ? parked_mask : (uint64_t{1} << registry.capacity()) - 1;
    uint64_t state = side.state.load(std::memory_order_relaxed);
    while ((state & parked_mask & valid) != 0) {
        const uint32_t index = static_cast<uint32_t>(std::countr_zero(state & parked_mask & valid));
        const uint64_t next = (state & ~parked_bit(index)) | polling_bit(index);
        // (7) acq_rel on the waiter word: waker and waiters agree on who moved which bit.
        if (side.state.compare_exchange_weak(state, next, std::memory_order_acq_rel)) {
            RegistryEntry& entry = registry.entry(index);
            // (8) pairs with the waiter's acquire load of its wake_word before it parks: a
            // bump it did not see makes its futex wait return at once.
            entry.wake_word.fetch_add(1, std::memory_order_release);
            wake(entry.wake_word, 1);
            return;
        }
    }
}

/// After a put (get): wakes one parked consumer (producer) unless one is polling (it will take
/// the item, or the room). One relaxed load when nobody waits; the wake-up is laid out off the
/// fall-through path.
[[gnu::always_inline]] inline void notify(WaitSide& side, const Registry& registry) noexcept {
    // (6) in queue_ring.hpp: the waker's load, after its seq_cst turn store. seq_cst, or a
    // waiter that parked just before could be missed (free on x86-64: a plain load).
    const uint64_t state = side.state.load(std::memory_order_seq_cst);
    if ((state & parked_mask) != 0 && (state & polling_mask) == 0) [[unlikely]] {
        wake_one_waiter(side, registry);
    }
}

/// Rings (and disarms) every doorbell armed on `side` (docs/event_loop.md): each rung waiter's
/// descriptor turns readable; it re-arms on its next empty (full) try_get (try_put). A doorbell
/// whose process died is rung in vain (its socket is gone) and left disarmed.
[[gnu::noinline]] inline void ring_armed_doorbells(WaitSide& side,
                                                   const DoorbellSlot* slots) noexcept {
    // (13) acq_rel: the tokens written before the bits were set are visible.
    uint32_t armed = side.armed.exchange(0, std::memory_order_acq_rel);
    while (armed != 0) {
        const uint32_t index = static_cast<uint32_t>(std::countr_zero(armed));
        armed &= armed - 1;
        const uint64_t token = slots[index].token.load(std::memory_order_acquire);
        if (token != 0) ring_doorbell(token);
    }
}

/// After a claim (a put's on the tail, a get's on the head): rings `side`'s armed doorbells.
/// One load when none is armed. Rung after the claim and before the item (the room) is
/// published, so a producer killed in between still woke the loop: it then finds a claimed,
/// unfinished slot, stays readable and runs recovery (docs/event_loop.md, "Crashes").
[[gnu::always_inline]] inline void ring_doorbells(WaitSide& side,
                                                  const DoorbellSlot* slots) noexcept {
    // (13) the Dekker shape of (6): the claim (a seq_cst CAS on the cursor), then this load;
    // an arming waiter sets its bit (seq_cst RMW), then reads both cursors (seq_cst).
    if (side.armed.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        ring_armed_doorbells(side, slots);
    }
}

/// Clears a registry entry's waiter bits on both sides.
inline void forget_waiter(QueueControl& control, uint32_t index) noexcept {
    for (WaitSide* side : {&control.consumers, &control.producers}) {
        side->state.fetch_and(~(parked_bit(index) | polling_bit(index)), std::memory_order_acq_rel);
    }
}

/// After tasks finished (task_done, or settled by recovery): wakes every joiner, in any
/// process; each re-checks the count itself. `joiners` spares the system call when nobody
/// joins and cannot hide a joiner: a joiner counts itself, then reads join_word, then the task
/// count (all seq_cst); this bumps join_word after the count changed, then reads `joiners`.
/// Either the joiner read the old word (so its count precedes our read: we wake it, or its
/// futex wait sees the new word), or it read the new word (so it sees the new count).
inline void wake_joiners(QueueControl& control) noexcept {
    // (9) pairs with join_until's seq_cst count of itself and read of join_word (argued above).
    control.join_word.fetch_add(1, std::memory_order_seq_cst);
    if (control.joiners.load(std::memory_order_seq_cst) != 0) wake_all(control.join_word);
}

/// On close: wakes every parked put/get, rings every armed doorbell, wakes every joiner.
inline void wake_everyone(QueueControl& control, const Registry& registry) noexcept {
    for (int which = 0; which < 2; ++which) {
        WaitSide* side = which == 0 ? &control.consumers : &control.producers;
        // Bounded: a corrupt word must not loop us forever.
        for (uint32_t i = 0; i < max_queue_participants &&
                             (side->state.load(std::memory_order_acquire) & parked_mask) != 0;
             ++i) {
            wake_one_waiter(*side, registry);
        }
        ring_armed_doorbells(*side, control.doorbells[which]);
    }
    wake_joiners(control);
}

/// Clears the bits of waiters whose process died (after an unexplained backstop timeout:
/// a dead poller would otherwise suppress every wake-up on this side).
inline void clear_dead_waiters(WaitSide& side, const Registry& registry, uint32_t self) noexcept {
    const uint64_t state = side.state.load(std::memory_order_acquire);
    uint32_t suspects = static_cast<uint32_t>(state | (state >> 32)) & ~(1u << self);
    while (suspects != 0) {
        const uint32_t index = static_cast<uint32_t>(std::countr_zero(suspects));
        suspects &= suspects - 1;
        if (index >= registry.capacity()) continue;
        if (registry.liveness(index) == Liveness::dead) {
            side.state.fetch_and(~(parked_bit(index) | polling_bit(index)),
                                 std::memory_order_acq_rel);
        }
    }
}

/// Moves this waiter from parked to polling unless a waker already did. Returns true if
/// this waiter did it itself (nobody woke it).
inline bool unpark(WaitSide& side, uint32_t index) noexcept {
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
void leave(WaitSide& side, const Registry& registry, uint32_t index,
           WorkAvailable&& work_available) noexcept {
    const uint64_t before = side.state.fetch_and(~polling_bit(index), std::memory_order_acq_rel);
    const uint64_t after = before & ~polling_bit(index);
    if ((after & polling_mask) == 0 && (after & parked_mask) != 0 && work_available()) {
        wake_one_waiter(side, registry);
    }
}

/// Blocks the calling thread on `side` until `attempt()` returns anything but `would_block`;
/// errc::timeout at `deadline`, errc::cancelled once `stop` is requested. Spins, then polls
/// (polling bit set, yielding), then parks on its entry's futex with a timeout backstop.
/// `work_available()`: the other side made progress we could not take (a slot claimed and not
/// finished, perhaps by a killed process): a reason to call `recover()` (which the caller rate
/// limits) and to keep the backstop short. `recover_when_idle`: also call it after a backstop
/// timeout nobody explains (with redelivery: a dead task holder tells nobody).
template <class Attempt, class WorkAvailable, class Recover>
errc block_until(ThreadParticipants& participants, WaitSide& side, errc would_block,
                 Attempt&& attempt, WorkAvailable&& work_available, Recover&& recover,
                 bool recover_when_idle, steady_clock::time_point deadline,
                 const std::stop_token& stop) {
    errc rc = attempt();
    if (rc != would_block) return rc;
    const bool timed = deadline != no_deadline;
    if (timed && steady_clock::now() >= deadline) return errc::timeout;
    auto me = participants.current(true);  // a first use that found the recovery lock busy
    if (!me) return me.error();
    const Registry& registry = participants.registry();
    const uint32_t index = *me;
    RegistryEntry& entry = registry.entry(index);
    bool published = false;  // is our polling bit set?
    auto finish = [&](errc result) {
        if (published) leave(side, registry, index, work_available);
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
                if (work_available()) recover();
            }
        }
        // Park: trade the polling bit for the parked bit, then re-check before sleeping.
        const uint32_t word = entry.wake_word.load(std::memory_order_acquire);  // (8)
        // (6) in queue_ring.hpp: the waiter's seq_cst RMW, then attempt() re-reads the turn.
        if (published) {
            side.state.fetch_xor(polling_bit(index) | parked_bit(index), std::memory_order_seq_cst);
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
        if (stalled) recover();
        const auto slice =
            std::min(deadline, now + (stalled ? std::chrono::milliseconds(1) : first_slice));
        first_slice = std::chrono::milliseconds(100);
        const wake_reason reason = wait_on(entry.wake_word, word, slice, stop);
        const bool nobody_woke_us = unpark(side, index);
        if (reason == wake_reason::cancelled) return finish(errc::cancelled);
        if (nobody_woke_us && reason == wake_reason::timeout) {
            clear_dead_waiters(side, registry, index);
            if (recover_when_idle) recover();
        }
    }
}

/// Blocks until `all_done()` (every task put has been finished), the deadline (timeout) or
/// `stop` (cancelled). Woken by wake_joiners(); a joiner killed while waiting leaves only its
/// count in `joiners` (wakers then make a needless system call, nothing worse). Backstop: tasks
/// of a killed consumer are settled by recovery, which joiners run (`recover()`) every few
/// milliseconds while the count does not move.
template <class AllDone, class Recover>
errc join_until(QueueControl& control, AllDone&& all_done, Recover&& recover,
                steady_clock::time_point deadline, const std::stop_token& stop) {
    for (;;) {
        if (all_done()) return errc::ok;
        control.joiners.fetch_add(1, std::memory_order_seq_cst);  // (9) in wake_joiners
        const uint32_t word = control.join_word.load(std::memory_order_seq_cst);
        if (all_done()) {
            control.joiners.fetch_sub(1, std::memory_order_relaxed);
            return errc::ok;
        }
        const auto now = steady_clock::now();
        if (now >= deadline) {
            control.joiners.fetch_sub(1, std::memory_order_relaxed);
            return errc::timeout;
        }
        const auto slice = std::min(deadline, now + std::chrono::milliseconds(5));
        const wake_reason reason = wait_on(control.join_word, word, slice, stop);
        control.joiners.fetch_sub(1, std::memory_order_relaxed);
        if (reason == wake_reason::cancelled) return errc::cancelled;
        if (reason == wake_reason::timeout) recover();
    }
}

}  // namespace shuttle::detail
