// Lock and RLock: Python's multiprocessing.Lock / RLock ("one key") for processes, in shared
// memory, robust when a holder dies. They meet the standard Lockable and TimedLockable
// requirements, so std::lock_guard, std::unique_lock and std::scoped_lock work with them.
//
// Named (create / open / open_or_create / remove: any process attaches by name) or anonymous
// (Lock::anonymous() before fork(): the child inherits it); the factories are
// detail/named_object.hpp's. Handles are movable, not copyable,
// and stay valid in a fork()ed child. Ownership belongs to a *thread of a process*: a child
// forked while its parent holds the lock does not hold it (the parent still does).
//
// Waiting parks the thread in the kernel (a robust pthread mutex on a shared futex): no
// spinning, ~0 CPU while blocked. Timed forms use steady_clock (CLOCK_MONOTONIC): a wall-clock
// jump changes nothing, and a signal never ends a timed wait early.
//
// WHEN A HOLDER DIES (exits, or is SIGKILLed, or its thread ends while holding the lock):
//   * The lock does not stay held. The next thread to acquire it gets it normally: lock()
//     returns without an exception and try_lock()/try_lock_for() return true.
//   * That new owner sees previous_owner_died() == true. The data the lock protects may be
//     half-updated: repair it, then call mark_consistent().
//   * The flag stays set until some owner calls mark_consistent(): if the new owner unlocks
//     without repairing, the owner after it sees previous_owner_died() == true as well.
//   * Unlike pthread's ENOTRECOVERABLE, the lock never becomes unusable, whatever the owners do.
//   * A waiter that dies while blocked in lock() leaves no trace.
// For an RLock the whole re-entry depth of the dead owner goes with it: the next owner holds it
// at depth 1. If the pid namespace differs between processes (containers sharing /dev/shm),
// kernel thread ids collide and ownership checks are unreliable: share locks within one pid
// namespace.
#pragma once

#include <chrono>

#include "shuttle/detail/sync_object.hpp"

namespace shuttle {

namespace detail {

/// What Lock and RLock share. Not used directly.
class LockHandle : public SharedState<LockState> {
  public:
    /// Blocks until the calling thread holds the lock. Thread- and process-safe. A dead
    /// previous owner is recovered (see previous_owner_died()). Lock: throws
    /// Error(invalid_argument) if this thread already holds it (it would deadlock forever);
    /// RLock: enters once more. If the caller dies while waiting: nothing happens; if it dies
    /// holding the lock: the next owner learns it.
    void lock() { lock_acquire(shared(), no_deadline, what_); }

    /// Never blocks. True if the calling thread now holds the lock (for a Lock already held by
    /// this thread: false).
    bool try_lock() { return lock_try_acquire(shared()); }

    /// Blocks at most `timeout` (zero or negative: tries once). True if acquired. Never returns
    /// early (EINTR is retried); late by scheduling only. A Lock already held by the calling
    /// thread waits the timeout out and returns false (Python's acquire(timeout=...)).
    template <class Rep, class Period>
    bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
        return lock_acquire(shared(), deadline_for(timeout), what_);
    }
    /// As try_lock_for, with a deadline (steady_clock; other clocks are converted once).
    template <class Clock, class Duration>
    bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return lock_acquire(shared(), steady_deadline(deadline), what_);
    }

    /// Python's acquire(block=True): blocks (as lock()) and returns true; acquire(false) is
    /// try_lock(). Thread- and process-safe.
    bool acquire(bool blocking = true) {
        if (!blocking) return try_lock();
        lock();
        return true;
    }
    /// Python's acquire(True, timeout): as try_lock_for(timeout). A timeout with
    /// blocking == false is Error(invalid_argument), as Python's ValueError.
    template <class Rep, class Period>
    bool acquire(bool blocking, const std::chrono::duration<Rep, Period>& timeout) {
        if (!blocking) refuse_timeout_without_blocking(what_);
        return try_lock_for(timeout);
    }
    /// Python's release(): as unlock(). Only the holding thread may release a Lock; Python's
    /// any-thread release is a BoundedSemaphore(1)'s (see semaphore.hpp).
    void release() { unlock(); }

    /// Releases the lock (one level of an RLock). Non-blocking. Throws Error(not_owner), and
    /// changes nothing, if the calling thread does not hold it.
    void unlock() { lock_release(shared(), what_); }

    /// True while the data the lock protects may be inconsistent because an owner died holding
    /// it, until mark_consistent(). Meaningful to the holder; reading it is always safe.
    bool previous_owner_died() const {
        return shared().owner_died.load(std::memory_order_relaxed) != 0;
    }
    /// Clears previous_owner_died() once the holder repaired the protected data. Throws
    /// Error(not_owner) unless the calling thread holds the lock.
    void mark_consistent() {
        require_holder(shared(), what_);
        shared().owner_died.store(0, std::memory_order_relaxed);
    }

    /// Whether the calling thread holds the lock. Non-blocking.
    bool held_by_caller() const { return lock_held_by_caller(shared()); }

  protected:
    LockHandle() = default;
    LockHandle(Segment segment, const char* what) : SharedState(std::move(segment)), what_(what) {}

    const char* what_ = "Lock";
};

}  // namespace detail

/// A non-re-entrant lock. Locking it twice from one thread is an error (Error(invalid_argument)
/// from lock()/try_lock_for(); false from try_lock()), not a deadlock. Created unlocked:
/// create(name[, options]), anonymous(); attached: open(name) (an RLock is not a Lock:
/// Error(kind_mismatch)), open_or_create(name[, options]), open_fd(fd).
class Lock : public detail::NamedObject<Lock, detail::LockHandle, CreateOptions> {
  public:
    Lock() = default;

  private:
    friend NamedObject;
    explicit Lock(Segment segment) : NamedObject(std::move(segment), "Lock") {}
    static Segment make_segment(std::string_view name, const CreateOptions& options);
    static SegmentExpectation expectation();
};

/// A re-entrant lock: the owning thread may lock it again; it is released after as many
/// unlock()s as lock()s. Everything else as Lock.
class RLock : public detail::NamedObject<RLock, detail::LockHandle, CreateOptions> {
  public:
    RLock() = default;

    /// How many times the calling thread holds it (0 if it does not).
    uint32_t depth() const { return detail::lock_depth(shared()); }

  private:
    friend NamedObject;
    explicit RLock(Segment segment) : NamedObject(std::move(segment), "RLock") {}
    static Segment make_segment(std::string_view name, const CreateOptions& options);
    static SegmentExpectation expectation();
};

}  // namespace shuttle
