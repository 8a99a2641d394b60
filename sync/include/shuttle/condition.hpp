// Condition: Python's multiprocessing.Condition for processes — a condition variable together
// with the Lock it waits under, both in one shared-memory segment. The Condition is itself
// Lockable (lock / try_lock / try_lock_for / unlock), so std::unique_lock<Condition> works:
//
//     std::unique_lock guard(condition);
//     condition.wait([&] { return shared->ready; });
//
// Named (create / open / open_or_create / remove) or anonymous (before fork()). Handles are
// movable, not copyable, valid in a fork()ed child; every member is thread- and process-safe.
//
// Waiting releases the lock, parks on a shared futex sequence word (~0 CPU), and re-acquires
// the lock before returning. Like every condition variable, wait() may return spuriously: use
// the predicate forms. Timed forms use steady_clock; a signal never ends one early.
//
// WHEN A PROCESS DIES:
//   * holding the lock: as Lock — the next owner (a waiter returning from wait() included)
//     holds it normally and sees previous_owner_died() == true until mark_consistent().
//   * while waiting: nothing is lost (later notifies may make one needless futex wake).
//   * between notify's announcement and its wake: waiters notice within ~100 ms (every park has
//     that backstop) and return as notified.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "shuttle/detail/sync_state.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {

namespace detail {
/// Releases the lock (held by the caller), waits for a notify or `deadline`, relocks.
/// True if notified (or spuriously woken), false on timeout. Throws Error(not_owner) if the
/// caller does not hold the lock.
bool condition_wait(ConditionState& state, steady_clock::time_point deadline);
void condition_notify(ConditionState& state, uint32_t count) noexcept;
}  // namespace detail

class Condition {
  public:
    Condition() = default;

    static Condition create(std::string_view name, const CreateOptions& options = {});
    static Condition open(std::string_view name);
    static Condition open_or_create(std::string_view name, const CreateOptions& options = {});
    /// In anonymous shared memory: create before fork(), children inherit it.
    static Condition anonymous();
    static bool remove(std::string_view name) { return Segment::remove(name); }

    // ---- the lock (a non-re-entrant Lock; see lock.hpp for its full contract) ----
    void lock() { detail::lock_acquire(state_->lock, no_deadline, "Condition"); }
    bool try_lock() { return detail::lock_try_acquire(state_->lock); }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::lock_acquire(state_->lock, detail::deadline_for(timeout), "Condition");
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::lock_acquire(state_->lock, detail::steady_deadline(deadline), "Condition");
    }
    void unlock() { detail::lock_release(state_->lock, "Condition"); }
    bool previous_owner_died() const noexcept {
        return state_->lock.owner_died.load(std::memory_order_relaxed) != 0;
    }
    void mark_consistent() {
        detail::require_holder(state_->lock, "Condition::mark_consistent");
        state_->lock.owner_died.store(0, std::memory_order_relaxed);
    }
    bool held_by_caller() const noexcept { return detail::lock_held_by_caller(state_->lock); }

    // ---- waiting: the caller must hold the lock (else Error(not_owner)) ----
    /// Releases the lock, blocks until notified (or spuriously woken), re-acquires the lock.
    void wait() { detail::condition_wait(*state_, no_deadline); }
    /// Waits until `predicate()` is true (checked under the lock, first before any waiting).
    template <class Predicate>
    void wait(Predicate predicate) {
        while (!predicate()) detail::condition_wait(*state_, no_deadline);
    }
    /// Waits at most `timeout`; false if it ran out (the lock is held again either way).
    template <class Rep, class Period>
    bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::condition_wait(*state_, detail::deadline_for(timeout));
    }
    template <class Clock, class Duration>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::condition_wait(*state_, detail::steady_deadline(deadline));
    }
    /// Waits at most `timeout` for `predicate()`; returns its last value.
    template <class Rep, class Period, class Predicate>
    bool wait_for(const std::chrono::duration<Rep, Period>& timeout, Predicate predicate) {
        return wait_until_steady(detail::deadline_for(timeout), predicate);
    }
    template <class Clock, class Duration, class Predicate>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline, Predicate predicate) {
        return wait_until_steady(detail::steady_deadline(deadline), predicate);
    }

    /// Wakes up to `count` waiters (in any process). Non-blocking; may be called with or
    /// without the lock held.
    void notify(uint32_t count = 1) noexcept { detail::condition_notify(*state_, count); }
    /// Wakes every waiter.
    void notify_all() noexcept { detail::condition_notify(*state_, UINT32_MAX); }

    bool valid() const noexcept { return state_ != nullptr; }
    const std::string& name() const noexcept { return segment_.name(); }
    Segment& segment() noexcept { return segment_; }
    detail::ConditionState& state() noexcept { return *state_; }

  private:
    explicit Condition(Segment segment)
        : segment_(std::move(segment)),
          state_(reinterpret_cast<detail::ConditionState*>(segment_.body())) {}

    template <class Predicate>
    bool wait_until_steady(steady_clock::time_point deadline, Predicate& predicate) {
        while (!predicate()) {
            if (!detail::condition_wait(*state_, deadline)) return predicate();
        }
        return true;
    }

    Segment segment_;
    detail::ConditionState* state_ = nullptr;
};

}  // namespace shuttle
