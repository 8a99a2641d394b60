// Condition: Python's multiprocessing.Condition for processes — a condition variable together
// with the Lock it waits under, both in one shared-memory segment. The Condition is itself
// Lockable (lock / try_lock / try_lock_for / unlock), so std::unique_lock<Condition> works:
//
//     std::unique_lock guard(condition);
//     condition.wait([&] { return shared->ready; });
//
// Named (create / open / open_or_create / remove) or anonymous (before fork()):
// detail/named_object.hpp's factories. Handles are movable, not copyable, valid in a fork()ed
// child; every member is thread- and process-safe.
//
// Waiting releases the lock, parks on a futex word of its own (one of 128 waiter slots in the
// segment; ~0 CPU), and re-acquires the lock before returning. notify(n) wakes at most n of the
// threads waiting at the time, oldest first, as Python's notify(n); notify_all() wakes them
// all. Beyond 128 simultaneous waiters, the extra ones share one word and any notify wakes all
// of those. Like every condition variable, wait() may return spuriously: use the predicate
// forms. Timed forms use steady_clock; a signal never ends one early.
//
// WHEN A PROCESS DIES:
//   * holding the lock: as Lock — the next owner (a waiter returning from wait() included)
//     holds it normally and sees previous_owner_died() == true until mark_consistent().
//   * while waiting: its slot is reclaimed once proven dead. If a notify picks it first (it was
//     the oldest waiter), the notification is not lost: a live waiter notices within ~100 ms
//     (every park has that backstop) and hands it to the oldest live waiter.
//   * after being notified, before returning: as above (a notification may then reach one more
//     waiter than asked: a spurious wake-up).
//   * a notifier between choosing a waiter and waking it: the waiter's backstop (~100 ms)
//     notices its slot says "notified".
#pragma once

#include <chrono>
#include <cstdint>

#include "shuttle/detail/sync_object.hpp"

namespace shuttle {

/// The lock a Condition waits under: a Lock (the default here) or an RLock (Python's default).
enum class ConditionLock : uint32_t { lock, rlock };

class Condition : public detail::SyncObject<Condition, detail::ConditionState, ConditionLock> {
  public:
    Condition() = default;

    // The factories take the kind of lock: create(name, ConditionLock::rlock[, options]),
    // anonymous(ConditionLock::rlock), open_or_create(name, kind[, options]); without it, a Lock.
    // open(name) attaches to either (recursive() tells which).
    using NamedObject::anonymous;
    using NamedObject::create;
    using NamedObject::open_or_create;
    static Condition create(std::string_view name, const CreateOptions& options = {}) {
        return create(name, ConditionLock::lock, options);
    }
    static Condition open_or_create(std::string_view name, const CreateOptions& options = {}) {
        return open_or_create(name, ConditionLock::lock, options);
    }
    static Condition anonymous() { return anonymous(ConditionLock::lock); }

    /// Whether its lock is an RLock (re-entrant: see lock.hpp).
    bool recursive() const { return shared().lock.recursive != 0; }
    /// How many times the calling thread holds the lock (0 if it does not; at most 1 unless
    /// recursive()).
    uint32_t depth() const { return detail::lock_depth(shared().lock); }

    // ---- the lock (a Lock or an RLock as created; see lock.hpp for its full contract) ----
    void lock() { detail::lock_acquire(shared().lock, no_deadline, "Condition"); }
    bool try_lock() { return detail::lock_try_acquire(shared().lock); }
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::lock_acquire(shared().lock, detail::deadline_for(timeout), "Condition");
    }
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::lock_acquire(shared().lock, detail::steady_deadline(deadline), "Condition");
    }
    void unlock() { detail::lock_release(shared().lock, "Condition"); }
    bool previous_owner_died() const {
        return shared().lock.owner_died.load(std::memory_order_relaxed) != 0;
    }
    void mark_consistent() {
        detail::require_holder(shared().lock, "Condition::mark_consistent");
        shared().lock.owner_died.store(0, std::memory_order_relaxed);
    }
    bool held_by_caller() const { return detail::lock_held_by_caller(shared().lock); }

    // ---- waiting: the caller must hold the lock (else Error(not_owner)) ----
    /// Releases the lock (every level of an RLock), blocks until notified (or spuriously
    /// woken), re-acquires it (at the same depth).
    void wait() { detail::condition_wait(shared(), no_deadline); }
    /// Waits until `predicate()` is true (checked under the lock, first before any waiting).
    template <class Predicate>
    void wait(Predicate predicate) {
        detail::require_holder(shared().lock, "Condition::wait");
        while (!predicate()) detail::condition_wait(shared(), no_deadline);
    }
    /// Waits at most `timeout`; false if it ran out (the lock is held again either way).
    template <class Rep, class Period>
    bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::condition_wait(shared(), detail::deadline_for(timeout));
    }
    template <class Clock, class Duration>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::condition_wait(shared(), detail::steady_deadline(deadline));
    }
    /// Waits at most `timeout` for `predicate()`; returns its last value. With no time left
    /// (timeout <= 0, a past deadline) the predicate is evaluated exactly once.
    template <class Rep, class Period, class Predicate>
    bool wait_for(const std::chrono::duration<Rep, Period>& timeout, Predicate predicate) {
        return wait_until_steady(detail::deadline_for(timeout), predicate);
    }
    template <class Clock, class Duration, class Predicate>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline, Predicate predicate) {
        return wait_until_steady(detail::steady_deadline(deadline), predicate);
    }

    /// Wakes up to `count` of the threads waiting now (in any process), the longest-waiting
    /// first; the others stay parked. The caller must hold the lock, else Error(not_owner) (as
    /// Python raises). Non-blocking (one scan of the waiter slots and one futex wake per woken
    /// waiter). Thread- and process-safe. A notifier that dies half-way has woken a prefix of
    /// its choice.
    void notify(uint32_t count = 1) {
        detail::require_holder(shared().lock, "Condition::notify");
        detail::condition_notify(shared(), count);
    }
    /// Wakes every thread waiting now. As notify(): the caller must hold the lock.
    void notify_all() { notify(UINT32_MAX); }

  private:
    friend NamedObject;
    explicit Condition(Segment segment) : NamedObject(std::move(segment)) {}
    static Segment make_segment(std::string_view name, ConditionLock kind,
                                const CreateOptions& options);
    static SegmentExpectation expectation();

    template <class Predicate>
    bool wait_until_steady(steady_clock::time_point deadline, Predicate& predicate) {
        detail::require_holder(shared().lock, "Condition::wait");  // even with no time left
        while (!predicate()) {
            if (deadline != no_deadline && steady_clock::now() >= deadline) return false;
            if (!detail::condition_wait(shared(), deadline)) return predicate();
        }
        return true;
    }
};

}  // namespace shuttle
