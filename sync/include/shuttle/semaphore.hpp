// Semaphore and BoundedSemaphore: Python's multiprocessing.Semaphore ("several keys") for
// processes, in shared memory. Named (create / open / open_or_create / remove) or anonymous
// (before fork()): detail/named_object.hpp's factories. Handles are movable, not copyable,
// valid in a fork()ed child; every member is thread- and process-safe.
//
// Waiting spins a few microseconds, yields briefly, then parks on a shared futex (~0 CPU while
// blocked). release() issues a futex wake only when someone is parked. Timed forms use
// steady_clock; a signal never ends a timed wait early.
//
// WHEN A PROCESS DIES:
//   * holding units it acquired: they are NOT given back (a semaphore has no owner: anyone may
//     release). The count stays lower by what the dead process held. Protocols that must survive
//     that should pair the semaphore with a Lock (which reports a dead owner) or a registry.
//   * while waiting in acquire(): nothing is lost (at worst later release()s make one needless
//     futex wake).
//   * between raising the count and waking waiters: the waiters notice within ~100 ms (every
//     park has that backstop) and take the units.
#pragma once

#include <chrono>
#include <cstdint>

#include "shuttle/detail/sync_object.hpp"

namespace shuttle {

/// Created holding `initial` units (0 .. 2^31 - 1, else Error(invalid_argument)):
/// create(name, initial[, options]), anonymous(initial); open_or_create(name, initial[,
/// options]) uses `initial` only if it creates. open(name) and open_fd(fd) attach to a
/// Semaphore or a BoundedSemaphore (bound() tells which).
class Semaphore : public detail::SyncObject<Semaphore, detail::SemaphoreState, uint32_t> {
  public:
    Semaphore() = default;

    /// Blocks until a unit is available and takes it.
    void acquire() { (void)detail::semaphore_acquire(shared(), no_deadline, {}); }
    /// As acquire(); errc::cancelled (nothing taken) if `stop` is requested first.
    status acquire(const std::stop_token& stop) {
        return detail::semaphore_acquire(shared(), no_deadline, stop);
    }
    /// Never blocks: takes a unit if one is available.
    bool try_acquire() { return detail::semaphore_try_acquire(shared()); }
    /// Waits at most `timeout` (zero or negative: tries once); true if a unit was taken.
    template <class Rep, class Period>
    bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::semaphore_acquire(shared(), detail::deadline_for(timeout), {}).ok();
    }
    template <class Clock, class Duration>
    bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::semaphore_acquire(shared(), detail::steady_deadline(deadline), {}).ok();
    }

    /// Adds `count` units (waking up to `count` waiters). Never blocks. Throws
    /// Error(invalid_argument) and changes nothing if the value would exceed bound() (a
    /// BoundedSemaphore) or 2^31 - 1, or if `count` is 0.
    void release(uint32_t count = 1) { detail::semaphore_release(shared(), count); }

    /// The units available now (a snapshot).
    uint32_t value() const { return shared().count.load(std::memory_order_relaxed); }
    /// The largest value release() may reach, for a BoundedSemaphore (0 for a plain Semaphore,
    /// whose only bound is 2^31 - 1).
    uint32_t bound() const { return shared().bound; }
    /// Whether it is a BoundedSemaphore (then bound() holds, even when it is 0).
    bool bounded() const { return shared().bounded != 0; }

  protected:
    explicit Semaphore(Segment segment) : NamedObject(std::move(segment)) {}
    /// What open() requires (BoundedSemaphore's too).
    static SegmentExpectation expectation();

  private:
    friend NamedObject;
    static void check_parameters(uint32_t initial);
    static Segment make_segment(std::string_view name, uint32_t initial,
                                const CreateOptions& options);
};

/// A Semaphore whose value may never exceed its initial value: a release() beyond it is a bug
/// (more releases than acquires) and throws Error(invalid_argument), changing nothing.
/// `initial` (0 .. 2^31 - 1) is also the bound: BoundedSemaphore(0), as in Python, is legal and
/// every release() of it fails. open(name) and open_fd(fd) throw
/// Error(kind_mismatch) for an unbounded Semaphore.
class BoundedSemaphore
    : public detail::NamedObject<BoundedSemaphore, Semaphore, CreateOptions, uint32_t> {
  public:
    BoundedSemaphore() = default;

  private:
    friend NamedObject;
    explicit BoundedSemaphore(Segment segment) : NamedObject(std::move(segment)) {}
    static void check_parameters(uint32_t initial);
    static Segment make_segment(std::string_view name, uint32_t initial,
                                const CreateOptions& options);
    static void check_opened(const Segment& segment);
};

}  // namespace shuttle
