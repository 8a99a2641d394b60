// Barrier: Python's multiprocessing.Barrier for processes. `parties` processes (or threads)
// call wait(); the last to arrive releases them all, and each learns its arrival index
// (0 .. parties-1). abort() breaks it; reset() makes it usable again. Named (create / open /
// open_or_create / remove) or anonymous (before fork()): detail/named_object.hpp's factories,
// for `parties` 1 .. 4000 (else Error(invalid_argument)). Handles are movable, not copyable,
// valid in a fork()ed child; every member is thread- and process-safe.
//
// Results are values: wait() returns the index, or errc::broken (the barrier was aborted,
// reset while this party waited, timed out by another party, or lost a party), or, for the
// timed forms, errc::timeout — and then, as in Python, the barrier is broken for the others.
// A broken barrier fails every wait() at once until reset().
//
// Waiting spins a few microseconds, yields briefly, then parks on a shared futex (~0 CPU).
//
// WHEN A PROCESS DIES:
//   * while waiting (arrived, not yet released): the barrier BREAKS rather than hangs: the
//     others return errc::broken within ~100 ms (each arriving process records itself in the
//     segment's registry; parked waiters check, every ~100 ms, whether an arrived party died).
//   * before arriving: the barrier cannot know it was expected; use a timed wait.
//   * inside a barrier operation (holding its internal lock): the next operation finds the
//     state possibly half-updated and breaks the barrier; reset() repairs it.
// Death detection needs a registry entry per process (parties + 32 entries, reclaimed from
// dead processes); a process that finds none waits without being watched.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "shuttle/detail/sync_object.hpp"
#include "shuttle/registry.hpp"

namespace shuttle {

class Barrier : public detail::SyncObject<Barrier, detail::BarrierState, uint32_t> {
  public:
    Barrier() = default;

    /// Python's `action`: run by exactly one party per round — the last to arrive, with its own
    /// handle's action (a function cannot cross processes: set it on every handle that may
    /// arrive last) — after every party arrived and before any is released, holding the
    /// barrier's internal lock (it must not call this barrier). If it throws, that party's
    /// wait() throws it and the barrier breaks (the others get errc::broken). Empty: none.
    /// Not thread-safe against a concurrent wait() on this handle.
    void set_action(std::function<void()> action) { action_ = std::move(action); }
    /// Python's `timeout`: what wait() waits at most (this handle's; default: forever).
    template <class Rep, class Period>
    void set_default_timeout(const std::chrono::duration<Rep, Period>& timeout) {
        default_timeout_ = std::chrono::duration<double>(timeout);
    }

    /// Blocks until `parties` have arrived (at most the default timeout, if set); returns this
    /// party's arrival index, or errc::broken (errc::timeout when the default timeout ran out).
    /// If the caller dies while waiting, the others see errc::broken.
    result<uint32_t> wait() {
        return wait_steady(default_timeout_ ? detail::deadline_for(*default_timeout_)
                                            : no_deadline);
    }
    /// As wait(), at most `timeout`: errc::timeout if it ran out (the barrier is then broken
    /// for everybody, as in Python). Never returns early (EINTR is retried).
    template <class Rep, class Period>
    result<uint32_t> wait_for(const std::chrono::duration<Rep, Period>& timeout) {
        return wait_steady(detail::deadline_for(timeout));
    }
    template <class Clock, class Duration>
    result<uint32_t> wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return wait_steady(detail::steady_deadline(deadline));
    }

    /// Breaks the barrier: every waiter and every later wait() gets errc::broken until
    /// reset(). Non-blocking (takes the internal lock briefly).
    void abort();
    /// Returns the barrier to its initial, empty state. Parties waiting now get errc::broken.
    void reset();
    /// Whether it is broken now.
    bool broken() const { return shared().broken.load(std::memory_order_acquire) != 0; }
    uint32_t parties() const {
        (void)shared();
        return parties_;
    }
    /// Parties waiting now (a snapshot); 0 once broken (as Python). Non-blocking. A party is
    /// counted only once it has recorded itself in the registry, so one counted here and then
    /// killed breaks the barrier.
    uint32_t n_waiting() const {
        return broken() ? 0 : shared().count.load(std::memory_order_acquire);
    }

  private:
    friend NamedObject;
    explicit Barrier(Segment segment);
    static void check_parameters(uint32_t parties);
    static Segment make_segment(std::string_view name, uint32_t parties,
                                const CreateOptions& options);
    static SegmentExpectation expectation();

    result<uint32_t> wait_steady(steady_clock::time_point deadline);
    /// Takes the internal lock by `deadline` (false if not); a dead previous holder breaks the
    /// barrier.
    bool enter(steady_clock::time_point deadline);
    void break_locked();
    bool arrived_party_died(uint32_t generation) const;
    result<uint32_t> outcome(uint32_t generation, uint32_t index) const;

    uint32_t parties_ = 0;
    Participant participant_;
    std::function<void()> action_;
    std::optional<std::chrono::duration<double>> default_timeout_;
};

}  // namespace shuttle
