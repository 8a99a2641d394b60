// Condition: one futex slot per waiter, so notify(n) wakes exactly the n oldest waiters.
#include "shuttle/condition.hpp"

#include <algorithm>

#include "shuttle/detail/owner_word.hpp"

namespace shuttle {
namespace detail {
namespace {

constexpr uint64_t condition_tag = 0x434f4e440002;  // "COND", 2: per-waiter slots

SegmentInfo condition_segment() {
    return state_segment<ConditionState>(ObjectKind::condition, condition_tag);
}

constexpr uint32_t slot_free = 0;
constexpr uint32_t slot_waiting = 1;
constexpr uint32_t slot_notified = 2;
constexpr uint32_t slot_state_mask = 3;

constexpr uint32_t slot_word(uint64_t ticket, uint32_t slot_state) noexcept {
    return static_cast<uint32_t>(ticket << 2) | slot_state;
}
constexpr uint32_t slot_state_of(uint32_t word) noexcept {
    return word & slot_state_mask;
}
constexpr uint32_t with_state(uint32_t word, uint32_t slot_state) noexcept {
    return (word & ~slot_state_mask) | slot_state;
}

/// The slots in use, read from shared memory and clamped to the slot array: a scribbled count
/// must never index past it.
uint32_t slots_in_use(const ConditionState& state) noexcept {
    return std::min(state.slots_used.load(std::memory_order_acquire), condition_waiter_slots);
}

/// Who waits in `slot`: announced before the slot's word says "waiting" (detail/owner_word.hpp).
OwnerWord waiter_of(ConditionWaiterSlot& slot) noexcept {
    return {slot.owner, slot.pid_namespace};
}

/// Moves up to `count` waiting slots, oldest ticket first, to "notified" and wakes each.
/// Returns how many it notified. Lock-free; racing notifiers each win distinct slots.
uint32_t notify_slots(ConditionState& state, uint32_t count) noexcept {
    const uint32_t used = slots_in_use(state);
    uint32_t notified = 0;
    if (count >= used) {  // at least as many as there can be waiters: every one of them
        for (uint32_t index = 0; index < used; ++index) {
            ConditionWaiterSlot& slot = state.slots[index];
            uint32_t word = slot.word.load(std::memory_order_acquire);
            while (slot_state_of(word) == slot_waiting) {
                if (slot.word.compare_exchange_weak(word, with_state(word, slot_notified),
                                                    std::memory_order_seq_cst,
                                                    std::memory_order_acquire)) {
                    wake(slot.word, 1);
                    ++notified;
                    break;
                }
            }
        }
        return notified;
    }
    while (notified < count) {
        ConditionWaiterSlot* oldest = nullptr;
        uint64_t oldest_ticket = 0;
        uint32_t oldest_word = 0;
        for (uint32_t index = 0; index < used; ++index) {
            ConditionWaiterSlot& slot = state.slots[index];
            const uint32_t word = slot.word.load(std::memory_order_acquire);
            if (slot_state_of(word) != slot_waiting) continue;
            const uint64_t ticket = slot.ticket.load(std::memory_order_acquire);
            if (slot_word(ticket, slot_waiting) != word) continue;  // being taken over
            if (oldest == nullptr || ticket < oldest_ticket) {
                oldest = &slot;
                oldest_ticket = ticket;
                oldest_word = word;
            }
        }
        if (oldest == nullptr) break;  // nobody (else) waiting
        // A failed CAS means that waiter timed out or another notifier took it: look again.
        if (oldest->word.compare_exchange_strong(
                oldest_word, with_state(oldest_word, slot_notified), std::memory_order_seq_cst)) {
            wake(oldest->word, 1);
            ++notified;
        }
    }
    return notified;
}

/// Frees the slots of waiters proven dead (never merely slow): notified ones always, and
/// waiting ones too if `waiting_too` (only when a slot is needed: each check reads /proc). A
/// notification a dead waiter was given goes to the oldest live waiter instead, so no dead
/// process absorbs one. One CAS per slot decides between racing repairers.
void repair_dead_waiters(ConditionState& state, bool waiting_too) noexcept {
    const uint32_t used = slots_in_use(state);
    uint32_t rescued = 0;
    for (uint32_t index = 0; index < used; ++index) {
        ConditionWaiterSlot& slot = state.slots[index];
        uint32_t word = slot.word.load(std::memory_order_acquire);
        const uint32_t slot_state = slot_state_of(word);
        if (slot_state == slot_free || (slot_state == slot_waiting && !waiting_too)) continue;
        if (waiter_of(slot).liveness() != Liveness::dead) continue;
        if (slot.word.compare_exchange_strong(word, with_state(word, slot_free),
                                              std::memory_order_seq_cst)) {
            state.waiters.fetch_sub(1, std::memory_order_relaxed);
            if (slot_state == slot_notified) ++rescued;
        }
    }
    if (rescued > 0) condition_notify(state, rescued);
}

/// Takes a free slot for a waiter with `ticket` (the caller holds the lock, so claimers never
/// race each other). nullptr if every slot belongs to a live waiter.
ConditionWaiterSlot* claim_slot(ConditionState& state, uint64_t ticket) noexcept {
    const ProcessIdentity owner = current_process_identity();
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) repair_dead_waiters(state, true);
        for (uint32_t index = 0; index < condition_waiter_slots; ++index) {
            ConditionWaiterSlot& slot = state.slots[index];
            uint32_t word = slot.word.load(std::memory_order_acquire);
            if (slot_state_of(word) != slot_free) continue;
            // Announce before claim: who waits here is written before the slot says "waiting".
            slot.ticket.store(ticket, std::memory_order_relaxed);
            waiter_of(slot).announce(owner);
            if (index >= state.slots_used.load(std::memory_order_relaxed)) {
                state.slots_used.store(index + 1, std::memory_order_seq_cst);
            }
            state.waiters.fetch_add(1, std::memory_order_seq_cst);
            // Only a dead waiter's repair frees a slot concurrently, and it never takes one, so
            // a free slot stays free until this CAS.
            if (slot.word.compare_exchange_strong(word, slot_word(ticket, slot_waiting),
                                                  std::memory_order_seq_cst)) {
                return &slot;
            }
            state.waiters.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    return nullptr;
}

/// More waiters than slots: park on the shared overflow word; any notify releases them all.
/// Releases the lock (every level: `depth` receives how many).
bool overflow_wait(ConditionState& state, steady_clock::time_point deadline, uint32_t& depth) {
    state.overflow_waiters.fetch_add(1, std::memory_order_seq_cst);
    state.waiters.fetch_add(1, std::memory_order_seq_cst);
    // Read under the lock: a notify after our unlock changes it, so none is missed.
    const uint32_t sequence = state.overflow_sequence.load(std::memory_order_seq_cst);
    depth = lock_release_all(state.lock, "Condition::wait");
    bool notified = false;
    for (;;) {
        if (state.overflow_sequence.load(std::memory_order_seq_cst) != sequence) {
            notified = true;
            break;
        }
        if (deadline != no_deadline && steady_clock::now() >= deadline) break;
        wait_on(state.overflow_sequence, sequence, backstop_deadline(deadline));
    }
    state.waiters.fetch_sub(1, std::memory_order_relaxed);
    state.overflow_waiters.fetch_sub(1, std::memory_order_relaxed);
    return notified;
}

}  // namespace

bool condition_wait(ConditionState& state, steady_clock::time_point deadline) {
    require_holder(state.lock, "Condition::wait");
    const uint64_t ticket = state.next_ticket.load(std::memory_order_relaxed);
    state.next_ticket.store(ticket + 1, std::memory_order_relaxed);  // under the lock
    ConditionWaiterSlot* slot = claim_slot(state, ticket);
    bool notified = false;
    uint32_t depth = 1;  // the levels to restore (an RLock's whole depth)
    if (slot == nullptr) {
        notified = overflow_wait(state, deadline, depth);
    } else {
        // Registered under the lock: a notify after our unlock finds our slot "waiting".
        depth = lock_release_all(state.lock, "Condition::wait");
        const uint32_t waiting = slot_word(ticket, slot_waiting);
        for (;;) {
            uint32_t word = slot->word.load(std::memory_order_acquire);
            if (slot_state_of(word) == slot_notified) {
                notified = true;
                break;
            }
            if (deadline != no_deadline && steady_clock::now() >= deadline) {
                // Leave, unless a notify got to the slot first: then it is ours to take.
                if (slot->word.compare_exchange_strong(word, with_state(waiting, slot_free),
                                                       std::memory_order_seq_cst)) {
                    break;
                }
                continue;
            }
            if (wait_on(slot->word, waiting, backstop_deadline(deadline)) == wake_reason::timeout &&
                (deadline == no_deadline || steady_clock::now() < deadline)) {
                // A backstop tick: hand on any notification a dead waiter was given.
                repair_dead_waiters(state, false);
            }
        }
        if (notified) slot->word.store(with_state(waiting, slot_free), std::memory_order_release);
        state.waiters.fetch_sub(1, std::memory_order_relaxed);
    }
    lock_restore(state.lock, depth, "Condition::wait");
    return notified;
}

void condition_notify(ConditionState& state, uint32_t count) noexcept {
    if (count == 0) return;
    if (state.waiters.load(std::memory_order_seq_cst) == 0) return;  // nobody to wake
    const uint32_t notified = notify_slots(state, count);
    if (notified < count && state.overflow_waiters.load(std::memory_order_seq_cst) > 0) {
        state.overflow_sequence.fetch_add(1, std::memory_order_seq_cst);
        wake_all(state.overflow_sequence);
    }
}

}  // namespace detail

Segment Condition::make_segment(std::string_view name, ConditionLock kind,
                                const CreateOptions& options) {
    return detail::create_object(
        name, detail::condition_segment(),
        [kind](Segment& segment) {
            detail::lock_init(reinterpret_cast<detail::ConditionState*>(segment.body())->lock,
                              kind == ConditionLock::rlock);
        },
        options);
}
SegmentExpectation Condition::expectation() {
    return detail::expectation_for(detail::condition_segment());
}

}  // namespace shuttle
