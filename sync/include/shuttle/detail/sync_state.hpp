// The shared-memory states of the sync primitives: plain structs that can live in any shared
// mapping (a primitive's own segment, or embedded in another object's segment), and the
// operations on them. The public handles (Lock, Semaphore, Event, ...) own a Segment holding one
// of these (detail/sync_object.hpp). Offsets only, no pointers; every futex word on its own
// cache line.
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <type_traits>

#include "shuttle/error.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// Every futex park in sync/ is cut into slices of at most this long, so a waker that died
/// between publishing a change and waking (or a dead party) is noticed: the waiter re-checks.
/// Costs an idle waiter ~10 wake-ups per second (~0 % CPU).
inline constexpr auto park_backstop = std::chrono::milliseconds(100);

/// The earlier of `deadline` and one backstop slice from now.
inline steady_clock::time_point backstop_deadline(steady_clock::time_point deadline) noexcept {
    auto slice = steady_clock::now() + park_backstop;
    return deadline < slice ? deadline : slice;
}

/// The steady_clock deadline `timeout` from now: zero or negative tries once, and a timeout too
/// long to represent waits forever.
template <class Rep, class Period>
steady_clock::time_point deadline_for(const std::chrono::duration<Rep, Period>& timeout) {
    using namespace std::chrono;
    if (timeout <= duration<Rep, Period>::zero()) return steady_clock::now();
    if (duration<double>(timeout) >= duration<double>(hours(24 * 365 * 100))) return no_deadline;
    return deadline_after(ceil<steady_clock::duration>(timeout));
}

/// A deadline of any clock as a steady_clock deadline (other clocks: the time left, now).
template <class Clock, class Duration>
steady_clock::time_point steady_deadline(const std::chrono::time_point<Clock, Duration>& when) {
    using namespace std::chrono;
    if constexpr (std::is_same_v<Clock, steady_clock>) {
        if (when == time_point<Clock, Duration>::max()) return no_deadline;
        return ceil<steady_clock::duration>(when);
    } else {
        return deadline_for(when - Clock::now());
    }
}

// ---- Lock / RLock -----------------------------------------------------------------------------

/// A robust, process-shared pthread mutex (ERRORCHECK for Lock, RECURSIVE for RLock) plus the
/// "previous owner died" flag (written only by a holder). Who holds it is read from the mutex's
/// futex word: for a robust mutex it holds the owner's kernel thread id (the robust-futex
/// protocol between glibc and the kernel), so the hot path writes nothing of its own.
struct alignas(cache_line) LockState {
    pthread_mutex_t mutex;
    /// 1 from the moment an acquirer found the previous owner dead until mark_consistent().
    std::atomic<uint32_t> owner_died;
    uint32_t recursive;
};

/// Initialises `state` in fresh (zeroed) shared memory. Throws Error(system) on failure.
void lock_init(LockState& state, bool recursive);
/// Acquires, waiting at most until `deadline` (no_deadline = forever; a past deadline tries
/// once). Returns false on timeout. A dead previous owner is recovered at once (the mutex is made
/// consistent) and flagged in `owner_died`. A non-recursive lock already held by the calling
/// thread: with a deadline, waits until it and returns false (Python); without one, throws
/// Error(invalid_argument) (it would deadlock).
bool lock_acquire(LockState& state, steady_clock::time_point deadline, const char* what);
/// try_lock: false if held by anyone (the calling thread included, for a non-recursive lock).
bool lock_try_acquire(LockState& state);
/// Python's ValueError for acquire(False, timeout): throws Error(invalid_argument).
[[noreturn]] void refuse_timeout_without_blocking(const char* what);
/// Releases one level. Throws Error(not_owner) if the calling thread does not hold it.
void lock_release(LockState& state, const char* what);
/// Releases every level the calling thread holds (its holder); returns how many.
uint32_t lock_release_all(LockState& state, const char* what);
/// Acquires (blocking) and re-enters until the calling thread holds `depth` levels again.
void lock_restore(LockState& state, uint32_t depth, const char* what);
/// Whether the calling thread holds it.
bool lock_held_by_caller(const LockState& state) noexcept;
/// The calling thread's re-entry depth (RLock; 1 for a held Lock), 0 if it does not hold it.
uint32_t lock_depth(const LockState& state) noexcept;
/// Throws Error(not_owner) unless the calling thread holds it.
void require_holder(const LockState& state, const char* what);

// ---- Semaphore --------------------------------------------------------------------------------

struct alignas(cache_line) SemaphoreState {
    alignas(cache_line) std::atomic<uint32_t> count;    // futex word
    alignas(cache_line) std::atomic<uint32_t> waiters;  // processes parked (or about to)
    uint32_t bound;                                     // the bound, if `bounded`
    uint32_t bounded;  // 1: a BoundedSemaphore (whose bound may be 0: every release fails)
};

inline constexpr uint32_t semaphore_max_value = 0x7fffffff;

/// Takes one unit, waiting until `deadline`; errc::timeout or errc::cancelled if not.
status semaphore_acquire(SemaphoreState& state, steady_clock::time_point deadline,
                         const std::stop_token& stop);
bool semaphore_try_acquire(SemaphoreState& state) noexcept;
void semaphore_release(SemaphoreState& state, uint32_t count);

// ---- Event ------------------------------------------------------------------------------------

struct alignas(cache_line) EventState {
    /// bit 0: set; bits 1..31: how many times it went from clear to set (a waiter that saw the
    /// count move was woken by a set(), even if clear() came right after).
    alignas(cache_line) std::atomic<uint32_t> word;
    alignas(cache_line) std::atomic<uint32_t> waiters;
};

/// Waits until set (or set since the call began); errc::timeout / errc::cancelled if not.
status event_wait(EventState& state, steady_clock::time_point deadline,
                  const std::stop_token& stop);
void event_set(EventState& state) noexcept;

// ---- Condition --------------------------------------------------------------------------------

/// Waiters that can be notified one by one; more simultaneous waiters than this share one
/// overflow word, and any notify wakes all of those (a spurious wake-up, which wait() allows).
inline constexpr uint32_t condition_waiter_slots = 128;

/// One waiting thread's place. `word` is its futex: bits 0-1 the slot's state (free, waiting,
/// notified), bits 2-31 the low bits of the waiter's ticket, so a notifier's CAS never lands on
/// a newer waiter that took over the slot (no ABA). `ticket`, `owner` and `pid_namespace` are
/// written before `word` says "waiting" (announce before claim).
struct ConditionWaiterSlot {
    std::atomic<uint32_t> word;
    uint32_t unused;
    std::atomic<uint64_t> ticket;         // arrival order: notify(n) wakes the oldest n
    std::atomic<uint64_t> owner;          // ProcessIdentity of the waiting process
    std::atomic<uint64_t> pid_namespace;  // for the liveness check of `owner`
};
static_assert(sizeof(ConditionWaiterSlot) == 32);

struct alignas(cache_line) ConditionState {
    LockState lock;
    /// Waiters registered now (slots not free, plus overflow waiters): notify() returns at once
    /// when it is 0. A hint only: a waiter that dies leaves it high until its slot is repaired.
    alignas(cache_line) std::atomic<uint32_t> waiters;
    std::atomic<uint32_t> slots_used;   // high-water mark: slots at or above are all free
    std::atomic<uint64_t> next_ticket;  // written under the lock
    alignas(cache_line) std::atomic<uint32_t> overflow_sequence;  // futex word of the overflow
    std::atomic<uint32_t> overflow_waiters;
    alignas(cache_line) ConditionWaiterSlot slots[condition_waiter_slots];
};

/// Releases the lock (held by the caller), waits for a notify or `deadline`, relocks.
/// True if notified (or spuriously woken), false on timeout; a notify that races the timeout
/// is taken (true), never dropped. Throws Error(not_owner) if the caller does not hold the lock.
bool condition_wait(ConditionState& state, steady_clock::time_point deadline);
void condition_notify(ConditionState& state, uint32_t count) noexcept;

// ---- Barrier ----------------------------------------------------------------------------------

struct alignas(cache_line) BarrierState {
    LockState lock;  // guards everything below but `phase`
    /// futex word, bumped (under the lock) on every trip, break and reset.
    alignas(cache_line) std::atomic<uint32_t> phase;
    alignas(cache_line) std::atomic<uint32_t> generation;
    std::atomic<uint32_t> count;   // parties arrived in this generation
    std::atomic<uint32_t> broken;  // this generation was aborted / timed out / lost a party
    uint32_t parties;
    /// Bit (g % 64) tells whether generation g ended by tripping (1) or by reset (0).
    std::atomic<uint64_t> trip_history;
};

}  // namespace shuttle::detail
