// Lock/RLock factories, Semaphore, Event and Condition: futex words in shared memory.
#include <fmt/format.h>

#include "shuttle/condition.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"

namespace shuttle {
namespace detail {
namespace {

// Type tags: a second check, beside the kind and the state's size, that a segment holds what
// the caller expects (bumped if a state's meaning changes without its size changing).
constexpr uint64_t lock_tag = 0x4c4f434b0001;       // "LOCK"
constexpr uint64_t semaphore_tag = 0x53454d410001;  // "SEMA"
constexpr uint64_t event_tag = 0x4556454e0001;      // "EVEN"
constexpr uint64_t condition_tag = 0x434f4e440002;  // "COND", 2: per-waiter slots
constexpr uint64_t semaphore_bounded_flag = 1;

ObjectSpec lock_spec(bool recursive) {
    return {recursive ? ObjectKind::rlock : ObjectKind::lock, sizeof(LockState), alignof(LockState),
            lock_tag};
}
ObjectSpec semaphore_spec(uint32_t initial = 0, bool bounded = false) {
    return {ObjectKind::semaphore,
            sizeof(SemaphoreState),
            alignof(SemaphoreState),
            semaphore_tag,
            0,
            initial,
            bounded ? semaphore_bounded_flag : 0};
}
ObjectSpec event_spec() {
    return {ObjectKind::event, sizeof(EventState), alignof(EventState), event_tag};
}
ObjectSpec condition_spec() {
    return {ObjectKind::condition, sizeof(ConditionState), alignof(ConditionState), condition_tag};
}

Segment make_lock(std::string_view name, bool recursive, const CreateOptions& options) {
    return create_object(
        name, lock_spec(recursive),
        [recursive](Segment& segment) {
            lock_init(*reinterpret_cast<LockState*>(segment.body()), recursive);
        },
        options);
}

Segment make_semaphore(std::string_view name, uint32_t initial, bool bounded,
                       const CreateOptions& options) {
    if (initial > semaphore_max_value || (bounded && initial == 0)) {
        throw Error(errc::invalid_argument,
                    fmt::format("semaphore value {} out of range ({} .. {})", initial,
                                bounded ? 1 : 0, semaphore_max_value));
    }
    return create_object(
        name, semaphore_spec(initial, bounded),
        [=](Segment& segment) {
            auto& state = *reinterpret_cast<SemaphoreState*>(segment.body());
            state.count.store(initial, std::memory_order_relaxed);
            state.bound = bounded ? initial : 0;
        },
        options);
}

std::string_view named(std::string_view name) {
    Segment::validate_name(name);  // an empty name is not "anonymous" here
    return name;
}

bool try_take(std::atomic<uint32_t>& count) noexcept {
    uint32_t value = count.load(std::memory_order_relaxed);
    while (value > 0) {
        if (count.compare_exchange_weak(value, value - 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
            return true;
        }
    }
    return false;
}

/// The shared shape of every wait here: poll `ready` (spin, yield), then park on `word` with a
/// backstop, counting ourselves in `waiters` while parked so wakers know to make the syscall.
/// `ready(word_value)` is checked after every wake; `word` is parked on with its last value.
template <class Ready>
status wait_for_word(const std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters,
                     steady_clock::time_point deadline, const std::stop_token& stop, Ready ready) {
    if (ready(word.load(std::memory_order_acquire))) return {};
    if (deadline != no_deadline && steady_clock::now() >= deadline) return errc::timeout;
    Backoff backoff;
    while (backoff.step()) {
        if (ready(word.load(std::memory_order_acquire))) return {};
        if (stop.stop_requested()) return errc::cancelled;
        if (deadline != no_deadline && steady_clock::now() >= deadline) return errc::timeout;
    }
    // Dekker with the waker: we announce (seq_cst) then the futex re-reads the word; the waker
    // changes the word (seq_cst) then reads `waiters`. One of us sees the other.
    waiters.fetch_add(1, std::memory_order_seq_cst);
    status outcome;
    for (;;) {
        uint32_t value = word.load(std::memory_order_seq_cst);
        if (ready(value)) break;
        if (deadline != no_deadline && steady_clock::now() >= deadline) {
            outcome = errc::timeout;
            break;
        }
        if (wait_on(word, value, backstop_deadline(deadline), stop) == wake_reason::cancelled) {
            outcome = ready(word.load(std::memory_order_acquire)) ? status{} : errc::cancelled;
            break;
        }
    }
    waiters.fetch_sub(1, std::memory_order_relaxed);
    return outcome;
}

}  // namespace

status semaphore_acquire(SemaphoreState& state, steady_clock::time_point deadline,
                         const std::stop_token& stop) {
    // `ready` takes the unit itself: only a successful take ends the wait.
    return wait_for_word(state.count, state.waiters, deadline, stop,
                         [&](uint32_t) { return try_take(state.count); });
}

bool semaphore_try_acquire(SemaphoreState& state) noexcept {
    return try_take(state.count);
}

void semaphore_release(SemaphoreState& state, uint32_t count) {
    const uint32_t limit = state.bound != 0 ? state.bound : semaphore_max_value;
    if (count == 0) throw Error(errc::invalid_argument, "Semaphore::release(0)");
    uint32_t value = state.count.load(std::memory_order_relaxed);
    do {
        if (count > limit || value > limit - count) {
            throw Error(
                errc::invalid_argument,
                state.bound != 0
                    ? fmt::format("BoundedSemaphore released too many times (value {} "
                                  "+ {} would exceed its bound {})",
                                  value, count, limit)
                    : fmt::format("Semaphore value {} + {} would exceed {}", value, count, limit));
        }
    } while (!state.count.compare_exchange_weak(value, value + count, std::memory_order_seq_cst,
                                                std::memory_order_relaxed));
    if (state.waiters.load(std::memory_order_seq_cst) > 0) {
        wake(state.count, static_cast<int>(count));
    }
}

void event_set(EventState& state) noexcept {
    uint32_t value = state.word.load(std::memory_order_relaxed);
    do {
        if (value & 1u) return;  // already set: its setter woke (or the backstop will)
    } while (!state.word.compare_exchange_weak(value, (value + 2u) | 1u, std::memory_order_seq_cst,
                                               std::memory_order_relaxed));
    if (state.waiters.load(std::memory_order_seq_cst) > 0) wake_all(state.word);
}

status event_wait(EventState& state, steady_clock::time_point deadline,
                  const std::stop_token& stop) {
    const uint32_t start = state.word.load(std::memory_order_acquire);
    // Set now, or set (and perhaps cleared again) since we started: the set count moved.
    return wait_for_word(state.word, state.waiters, deadline, stop, [start](uint32_t value) {
        return (value & 1u) != 0 || (value >> 1) != (start >> 1);
    });
}

// ---- Condition: one futex slot per waiter, so notify(n) wakes exactly the n oldest ----------
namespace {

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

/// Moves up to `count` waiting slots, oldest ticket first, to "notified" and wakes each.
/// Returns how many it notified. Lock-free; racing notifiers each win distinct slots.
uint32_t notify_slots(ConditionState& state, uint32_t count) noexcept {
    const uint32_t used = state.slots_used.load(std::memory_order_acquire);
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
    const uint32_t used = state.slots_used.load(std::memory_order_acquire);
    uint32_t rescued = 0;
    for (uint32_t index = 0; index < used; ++index) {
        ConditionWaiterSlot& slot = state.slots[index];
        uint32_t word = slot.word.load(std::memory_order_acquire);
        const uint32_t slot_state = slot_state_of(word);
        if (slot_state == slot_free || (slot_state == slot_waiting && !waiting_too)) continue;
        if (process_liveness(slot.owner.load(std::memory_order_acquire),
                             slot.pid_namespace.load(std::memory_order_acquire)) !=
            Liveness::dead) {
            continue;
        }
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
    const uint64_t pid_namespace = current_pid_namespace();
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) repair_dead_waiters(state, true);
        for (uint32_t index = 0; index < condition_waiter_slots; ++index) {
            ConditionWaiterSlot& slot = state.slots[index];
            uint32_t word = slot.word.load(std::memory_order_acquire);
            if (slot_state_of(word) != slot_free) continue;
            // Announce before claim: who waits here is written before the slot says "waiting".
            slot.ticket.store(ticket, std::memory_order_relaxed);
            slot.owner.store(owner, std::memory_order_relaxed);
            slot.pid_namespace.store(pid_namespace, std::memory_order_relaxed);
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
bool overflow_wait(ConditionState& state, steady_clock::time_point deadline) {
    state.overflow_waiters.fetch_add(1, std::memory_order_seq_cst);
    state.waiters.fetch_add(1, std::memory_order_seq_cst);
    // Read under the lock: a notify after our unlock changes it, so none is missed.
    const uint32_t sequence = state.overflow_sequence.load(std::memory_order_seq_cst);
    lock_release(state.lock, "Condition::wait");
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
    if (slot == nullptr) {
        notified = overflow_wait(state, deadline);
    } else {
        // Registered under the lock: a notify after our unlock finds our slot "waiting".
        lock_release(state.lock, "Condition::wait");
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
    lock_acquire(state.lock, no_deadline, "Condition::wait");
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

using detail::named;

// ---- Lock / RLock ----
Lock Lock::create(std::string_view name, const CreateOptions& options) {
    return Lock(detail::make_lock(named(name), false, options));
}
Lock Lock::open(std::string_view name) {
    return Lock(detail::open_object(name, detail::lock_spec(false)));
}
Lock Lock::open_or_create(std::string_view name, const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, options); },
                                         [&] { return open(name); });
}
Lock Lock::anonymous() {
    return Lock(detail::make_lock({}, false, {}));
}

RLock RLock::create(std::string_view name, const CreateOptions& options) {
    return RLock(detail::make_lock(named(name), true, options));
}
RLock RLock::open(std::string_view name) {
    return RLock(detail::open_object(name, detail::lock_spec(true)));
}
RLock RLock::open_or_create(std::string_view name, const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, options); },
                                         [&] { return open(name); });
}
RLock RLock::anonymous() {
    return RLock(detail::make_lock({}, true, {}));
}

// ---- Semaphore / BoundedSemaphore ----
Semaphore Semaphore::create(std::string_view name, uint32_t initial, const CreateOptions& options) {
    return Semaphore(detail::make_semaphore(named(name), initial, false, options));
}
Semaphore Semaphore::open(std::string_view name) {
    return Semaphore(detail::open_object(name, detail::semaphore_spec()));
}
Semaphore Semaphore::open_or_create(std::string_view name, uint32_t initial,
                                    const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, initial, options); },
                                         [&] { return open(name); });
}
Semaphore Semaphore::anonymous(uint32_t initial) {
    return Semaphore(detail::make_semaphore({}, initial, false, {}));
}

BoundedSemaphore BoundedSemaphore::create(std::string_view name, uint32_t initial,
                                          const CreateOptions& options) {
    return BoundedSemaphore(detail::make_semaphore(named(name), initial, true, options));
}
BoundedSemaphore BoundedSemaphore::open(std::string_view name) {
    Segment segment = detail::open_object(name, detail::semaphore_spec());
    if ((segment.info().flags & detail::semaphore_bounded_flag) == 0) {
        throw Error(errc::kind_mismatch,
                    fmt::format("'{}' is a Semaphore, not a BoundedSemaphore", name));
    }
    return BoundedSemaphore(std::move(segment));
}
BoundedSemaphore BoundedSemaphore::open_or_create(std::string_view name, uint32_t initial,
                                                  const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, initial, options); },
                                         [&] { return open(name); });
}
BoundedSemaphore BoundedSemaphore::anonymous(uint32_t initial) {
    return BoundedSemaphore(detail::make_semaphore({}, initial, true, {}));
}

// ---- Event ----
Event Event::create(std::string_view name, const CreateOptions& options) {
    return Event(detail::create_object(named(name), detail::event_spec(), {}, options));
}
Event Event::open(std::string_view name) {
    return Event(detail::open_object(name, detail::event_spec()));
}
Event Event::open_or_create(std::string_view name, const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, options); },
                                         [&] { return open(name); });
}
Event Event::anonymous() {
    return Event(detail::create_object({}, detail::event_spec(), {}, {}));
}

// ---- Condition ----
namespace {
Segment make_condition(std::string_view name, const CreateOptions& options) {
    return detail::create_object(
        name, detail::condition_spec(),
        [](Segment& segment) {
            detail::lock_init(reinterpret_cast<detail::ConditionState*>(segment.body())->lock,
                              false);
        },
        options);
}
}  // namespace

Condition Condition::create(std::string_view name, const CreateOptions& options) {
    return Condition(make_condition(named(name), options));
}
Condition Condition::open(std::string_view name) {
    return Condition(detail::open_object(name, detail::condition_spec()));
}
Condition Condition::open_or_create(std::string_view name, const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, options); },
                                         [&] { return open(name); });
}
Condition Condition::anonymous() {
    return Condition(make_condition({}, {}));
}

}  // namespace shuttle
