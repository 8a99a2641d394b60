// Waiting across processes: a futex wait that honours a steady_clock deadline and a
// std::stop_token, and the spin -> yield -> park policy every blocking call in shuttle uses.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <thread>

#include "shuttle/detail/os.hpp"

namespace shuttle {

using steady_clock = std::chrono::steady_clock;

inline constexpr steady_clock::time_point no_deadline = steady_clock::time_point::max();

/// The one conversion of a timeout into a steady_clock deadline, used by every timed call of
/// shuttle (`x_for(timeout)` is `x_until(deadline_after(timeout))`). Takes any
/// std::chrono::duration, integral or floating (`0.5s` as duration<double> included), and never
/// overflows: zero, negative (down to duration::min()) and NaN try once (the deadline is now),
/// as in Python; a timeout of 100 years or more (duration::max(), milliseconds(INT64_MAX),
/// infinity) waits without limit (no_deadline). Converting such a duration to nanoseconds
/// first would overflow (undefined; in practice a deadline in the past, so "timeout at once").
template <class Rep, class Period>
steady_clock::time_point deadline_after(
    const std::chrono::duration<Rep, Period>& timeout) noexcept {
    using namespace std::chrono;
    constexpr double forever_seconds = 100.0 * 365 * 24 * 3600;  // far below 2^63 ns (292 y)
    const auto now = steady_clock::now();
    // Compared as double seconds: exact enough at both ends, and never overflows.
    const double seconds = duration<double>(timeout).count();
    if (!(seconds > 0)) return now;  // also NaN
    if (seconds >= forever_seconds) return no_deadline;
    const auto step = ceil<steady_clock::duration>(timeout);  // < 100 years: representable
    if (step >= no_deadline - now) return no_deadline;
    return now + step;
}

enum class wake_reason { notified, timeout, cancelled };

/// Sleeps while `word == expected` (a futex shared between processes), until woken, the
/// deadline passes or `stop` is requested. Spurious wake-ups are possible (callers re-check);
/// EINTR is not reported. Process-safe; blocking. A stop request from another thread wakes
/// this waiter promptly (the requesting thread wakes the word until the waiter has noticed).
inline wake_reason wait_on(const std::atomic<uint32_t>& word, uint32_t expected,
                           steady_clock::time_point deadline, const std::stop_token& stop = {}) {
    if (!stop.stop_possible()) {
        return detail::futex_wait_until(word, expected, deadline) ? wake_reason::notified
                                                                  : wake_reason::timeout;
    }
    if (stop.stop_requested()) return wake_reason::cancelled;
    std::atomic<bool> waiter_done{false};
    const std::thread::id waiter = std::this_thread::get_id();
    {
        // The futex word is shared state we must not change, so a wake can be lost if it lands
        // just before the waiter sleeps: the requester repeats the wake until acknowledged.
        std::stop_callback on_stop(stop, [&] {
            if (std::this_thread::get_id() == waiter) return;
            while (!waiter_done.load(std::memory_order_acquire)) {
                detail::futex_wake_all(word);
                detail::yield_processor();
            }
        });
        bool woken = !stop.stop_requested() && detail::futex_wait_until(word, expected, deadline);
        waiter_done.store(true, std::memory_order_release);
        if (stop.stop_requested()) return wake_reason::cancelled;
        return woken ? wake_reason::notified : wake_reason::timeout;
    }
}

/// Wakes up to `count` waiters of `word`, in any process.
inline void wake(const std::atomic<uint32_t>& word, int count = 1) noexcept {
    detail::futex_wake(word, count);
}
inline void wake_all(const std::atomic<uint32_t>& word) noexcept {
    detail::futex_wake_all(word);
}

/// The policy between "the condition is false" and "park on the futex" (docs/design.md §4): spin a
/// few microseconds, then sched_yield until about 200 µs of *idle* yields (a yield that comes back
/// within 4 µs: nobody else wanted the CPU) have added up or 10 ms have passed, then park.
/// Oversubscribed, a waiter keeps yielding to the processes that will fill/drain its queue;
/// alone, it parks after ~0.2 ms and costs nothing while idle.
///
/// Spinning only helps when the other side runs on another CPU. When it shares this one, every
/// spin is time the other side cannot use (at capacity 10 that was 8 of every 13 µs here). So a
/// thread keeps score of how its waits ended: one satisfied while spinning earns credit, one
/// that needed a yield costs some; at no credit it goes straight to yielding, and still spins
/// first on every 16th wait, so a change of placement is noticed. A wrong guess costs one
/// sched_yield or one spin.
class Backoff {
  public:
    static constexpr auto spin_time = std::chrono::microseconds(4);
    static constexpr auto idle_yield_budget = std::chrono::microseconds(200);
    static constexpr auto busy_yield_limit = std::chrono::milliseconds(10);
    static constexpr auto idle_yield_threshold = std::chrono::microseconds(4);

    Backoff() noexcept : yielding_(spin_credit == 0 && ++probe % 16 != 0) {}

    /// One step of waiting. Returns false once it is time to park.
    bool step() noexcept {
        if (!yielding_ && iterations_ < 16) {  // first polls: no clock reads at all
            ++iterations_;
            detail::cpu_relax();
            return true;
        }
        auto now = steady_clock::now();
        if (!started_) {
            start_ = now;
            started_ = true;
        }
        if (!yielding_) {
            if (now - start_ < spin_time) {
                for (int i = 0; i < 8; ++i) detail::cpu_relax();
                return true;
            }
            yielding_ = true;
        }
        if (now - start_ >= busy_yield_limit || idle_ >= idle_yield_budget) return false;
        detail::yield_processor();
        auto took = steady_clock::now() - now;
        if (took < idle_yield_threshold) idle_ += took;
        return true;
    }

    /// True once the pure spinning phase is over (the waiter yields the CPU from now on).
    bool yielding() const noexcept { return yielding_; }

    /// The wait ended before parking: scores the spin (see above).
    void satisfied() noexcept {
        if (!yielding_) {
            spin_credit = std::min<uint8_t>(spin_credit + 2, max_spin_credit);
        } else if (spin_credit > 0) {
            --spin_credit;
        }
    }

    /// Starts over (after progress was made).
    void reset() noexcept { *this = Backoff{}; }

  private:
    static constexpr uint8_t max_spin_credit = 8;
    static inline thread_local uint8_t spin_credit = max_spin_credit;
    static inline thread_local uint8_t probe = 0;

    uint32_t iterations_ = 0;
    bool yielding_ = false;
    bool started_ = false;
    steady_clock::time_point start_{};
    steady_clock::duration idle_{};
};

}  // namespace shuttle
