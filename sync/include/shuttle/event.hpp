// Event: Python's multiprocessing.Event for processes — a flag that processes wait for.
// set() wakes every waiter in every process; clear() lowers the flag; wait() blocks until it
// is set. Named (create / open / open_or_create / remove) or anonymous (before fork()):
// detail/named_object.hpp's factories; created clear. Handles are movable, not copyable, valid
// in a fork()ed child; every member is thread- and process-safe.
//
// A waiter spins a few microseconds, yields briefly, then parks on a shared futex (~0 CPU while
// blocked); set() makes a futex wake only when someone is parked. A waiter that was blocked
// when set() happened returns true even if clear() followed at once (a "pulse" is not lost).
//
// WHEN A PROCESS DIES: an Event has no owner. A dead waiter leaves nothing behind (at worst
// later set()s make one needless futex wake). A setter that dies between raising the flag and
// waking leaves the waiters to notice within ~100 ms (every park has that backstop).
#pragma once

#include <chrono>
#include <cstdint>

#include "shuttle/detail/sync_object.hpp"

namespace shuttle {

class Event : public detail::SyncObject<Event, detail::EventState> {
  public:
    Event() = default;

    /// Sets the flag and wakes every waiter in every process. Non-blocking.
    void set() { detail::event_set(shared()); }
    /// Lowers the flag. Non-blocking.
    void clear() { shared().word.fetch_and(~1u, std::memory_order_seq_cst); }
    /// Whether the flag is set now. Non-blocking (the "try" form of wait()).
    bool is_set() const { return (shared().word.load(std::memory_order_acquire) & 1u) != 0; }

    /// Blocks until the flag is set.
    void wait() { (void)detail::event_wait(shared(), no_deadline, {}); }
    /// As wait(); errc::cancelled if `stop` is requested first.
    status wait(const std::stop_token& stop) {
        return detail::event_wait(shared(), no_deadline, stop);
    }
    /// Waits at most `timeout`; true if the flag was set (Python's Event.wait(timeout)).
    /// Never returns false early (EINTR is retried).
    template <class Rep, class Period>
    bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
        return detail::event_wait(shared(), detail::deadline_for(timeout), {}).ok();
    }
    template <class Clock, class Duration>
    bool wait_until(const std::chrono::time_point<Clock, Duration>& deadline) {
        return detail::event_wait(shared(), detail::steady_deadline(deadline), {}).ok();
    }

  private:
    friend NamedObject;
    explicit Event(Segment segment) : NamedObject(std::move(segment)) {}
    static Segment make_segment(std::string_view name, const CreateOptions& options);
    static SegmentExpectation expectation();
};

}  // namespace shuttle
