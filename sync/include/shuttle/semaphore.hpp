// Semaphore and BoundedSemaphore: Python's multiprocessing.Semaphore ("several keys") for
// processes, in shared memory. Named (create / open / open_or_create / remove) or anonymous
// (before fork()). Handles are movable, not copyable, valid in a fork()ed child; every member
// is thread- and process-safe.
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
#include <stop_token>
#include <string_view>

#include "shuttle/detail/sync_state.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {

namespace detail {
/// Takes one unit, waiting until `deadline`; errc::timeout or errc::cancelled if not.
status semaphore_acquire(SemaphoreState& state, steady_clock::time_point deadline,
                         const std::stop_token& stop);
bool semaphore_try_acquire(SemaphoreState& state) noexcept;
void semaphore_release(SemaphoreState& state, uint32_t count);
}  // namespace detail

class Semaphore {
  public:
    Semaphore() = default;

    /// Creates a named semaphore holding `initial` units (at most 2^31 - 1). Throws
    /// Error(already_exists, invalid_name, permission, no_space, invalid_argument).
    static Semaphore create(std::string_view name, uint32_t initial,
                            const CreateOptions& options = {});
    /// Attaches to a named Semaphore or BoundedSemaphore (bound() tells which).
    static Semaphore open(std::string_view name);
    /// Opens `name`, creating it with `initial` units if absent (`initial` is then ignored).
    static Semaphore open_or_create(std::string_view name, uint32_t initial,
                                    const CreateOptions& options = {});
    /// In anonymous shared memory: create before fork(), children inherit it.
    static Semaphore anonymous(uint32_t initial);
    static bool remove(std::string_view name) { return Segment::remove(name); }

    /// Blocks until a unit is available and takes it.
    void acquire() { (void)detail::semaphore_acquire(*state_, no_deadline, {}); }
    /// As acquire(); errc::cancelled (nothing taken) if `stop` is requested first.
    status acquire(const std::stop_token& stop) {
        return detail::semaphore_acquire(*state_, no_deadline, stop);
    }
    /// Never blocks: takes a unit if one is available.
    bool try_acquire() noexcept { return detail::semaphore_try_acquire(*state_); }
    /// Waits at most `timeout` (zero or negative: tries once); true if a unit was taken.
    template <class Rep, class Period>
    bool try_acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::semaphore_acquire(*state_, detail::deadline_for(timeout), {}).ok();
    }
    template <class Clock, class Duration>
    bool try_acquire_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::semaphore_acquire(*state_, detail::steady_deadline(deadline), {}).ok();
    }

    /// Adds `count` units (waking up to `count` waiters). Never blocks. Throws
    /// Error(invalid_argument) and changes nothing if the value would exceed bound() (a
    /// BoundedSemaphore) or 2^31 - 1, or if `count` is 0.
    void release(uint32_t count = 1) { detail::semaphore_release(*state_, count); }

    /// The units available now (a snapshot).
    uint32_t value() const noexcept { return state_->count.load(std::memory_order_relaxed); }
    /// The largest value release() may reach: 0 for a plain Semaphore (no bound but 2^31 - 1).
    uint32_t bound() const noexcept { return state_->bound; }

    bool valid() const noexcept { return state_ != nullptr; }
    const std::string& name() const noexcept { return segment_.name(); }
    Segment& segment() noexcept { return segment_; }
    detail::SemaphoreState& state() noexcept { return *state_; }

  protected:
    explicit Semaphore(Segment segment)
        : segment_(std::move(segment)),
          state_(reinterpret_cast<detail::SemaphoreState*>(segment_.body())) {}

    Segment segment_;
    detail::SemaphoreState* state_ = nullptr;
};

/// A Semaphore whose value may never exceed its initial value: a release() beyond it is a bug
/// (more releases than acquires) and throws Error(invalid_argument), changing nothing.
class BoundedSemaphore : public Semaphore {
  public:
    BoundedSemaphore() = default;

    /// `initial` (1 .. 2^31 - 1) is also the bound.
    static BoundedSemaphore create(std::string_view name, uint32_t initial,
                                   const CreateOptions& options = {});
    /// Throws Error(kind_mismatch) if `name` is an unbounded Semaphore.
    static BoundedSemaphore open(std::string_view name);
    static BoundedSemaphore open_or_create(std::string_view name, uint32_t initial,
                                           const CreateOptions& options = {});
    static BoundedSemaphore anonymous(uint32_t initial);

  private:
    explicit BoundedSemaphore(Segment segment) : Semaphore(std::move(segment)) {}
};

}  // namespace shuttle
