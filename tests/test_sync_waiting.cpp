// How every sync primitive waits: timed forms are not cut short by signals (EINTR is retried),
// and a blocked process costs ~0 CPU.
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include "shuttle/barrier.hpp"
#include "shuttle/condition.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

std::atomic<uint64_t> signals_delivered{0};
sem_t signal_handled;  // posted by the handler (sem_post is async-signal-safe)

void count_signal(int) {
    signals_delivered.fetch_add(1, std::memory_order_relaxed);
    sem_post(&signal_handled);
}

/// Runs `timed_wait` (which must time out after `timeout` and return true if it did) in a
/// child whose waiting thread a second thread pelts with SIGUSR1 for the whole wait: it sends
/// one, blocks until the handler ran, pauses 1 ms (pacing only, so the storm does not starve
/// the other tests on this 2-core machine) and sends the next. The handler is installed without
/// SA_RESTART, so every signal interrupts the futex / pthread call inside the wait. Exit code 0
/// if it timed out, not early, less than 50 ms late, and was hit by at least 10 signals.
template <class TimedWait>
int timed_wait_under_signals(std::chrono::milliseconds timeout, TimedWait timed_wait) {
    return run_child([&] {
        if (sem_init(&signal_handled, 0, 0) != 0) return 11;
        struct sigaction action {};
        action.sa_handler = count_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;  // no SA_RESTART: interrupted system calls return EINTR
        if (sigaction(SIGUSR1, &action, nullptr) != 0) return 10;
        std::atomic<bool> done{false};
        const pthread_t waiter = pthread_self();
        std::thread pester([&] {
            while (!done.load()) {
                pthread_kill(waiter, SIGUSR1);
                while (sem_wait(&signal_handled) != 0) {
                }
                std::this_thread::sleep_for(1ms);  // pacing, not synchronisation
            }
        });
        const auto start = std::chrono::steady_clock::now();
        const bool timed_out = timed_wait();
        const auto took = std::chrono::steady_clock::now() - start;
        const uint64_t signals = signals_delivered.load();
        done = true;
        pester.join();
        if (took < timeout || took >= timeout + 50ms || !timed_out || signals < 10) {
            std::fprintf(stderr, "timed out: %d, took %lld µs, %llu signals\n", timed_out,
                         static_cast<long long>(
                             std::chrono::duration_cast<std::chrono::microseconds>(took).count()),
                         static_cast<unsigned long long>(signals));
        }
        if (!timed_out) return 1;
        if (took < timeout) return 2;  // returned early
        if (took >= timeout + 50ms) return 3;
        if (signals < 10) return 4;  // the wait was not really interrupted
        return 0;
    });
}

constexpr auto timeout = 150ms;
constexpr const char* codes = "1 not a timeout, 2 early, 3 late by 50 ms or more, 4 < 10 signals";

TEST(SyncWaiting, SignalsDoNotEndLockTryLockForEarly) {
    Lock lock = Lock::anonymous();
    std::lock_guard held(lock);  // by this process: the child's try_lock_for must time out
    EXPECT_EQ(timed_wait_under_signals(timeout, [&] { return !lock.try_lock_for(timeout); }), 0)
        << codes;
    RLock rlock = RLock::anonymous();
    std::lock_guard rheld(rlock);
    EXPECT_EQ(
        timed_wait_under_signals(
            timeout,
            [&] { return !rlock.try_lock_until(std::chrono::steady_clock::now() + timeout); }),
        0)
        << codes;
}

TEST(SyncWaiting, SignalsDoNotEndSemaphoreTryAcquireForEarly) {
    Semaphore semaphore = Semaphore::anonymous(0);
    EXPECT_EQ(
        timed_wait_under_signals(timeout, [&] { return !semaphore.try_acquire_for(timeout); }), 0)
        << codes;
}

TEST(SyncWaiting, SignalsDoNotEndEventWaitForEarly) {
    Event event = Event::anonymous();
    EXPECT_EQ(timed_wait_under_signals(timeout, [&] { return !event.wait_for(timeout); }), 0)
        << codes;
}

TEST(SyncWaiting, SignalsDoNotEndConditionWaitForEarly) {
    Condition condition = Condition::anonymous();
    EXPECT_EQ(timed_wait_under_signals(timeout,
                                       [&] {
                                           std::unique_lock guard(condition);
                                           return !condition.wait_for(timeout) &&
                                                  condition.held_by_caller();
                                       }),
              0)
        << codes;
}

TEST(SyncWaiting, SignalsDoNotEndBarrierWaitForEarly) {
    Barrier barrier = Barrier::anonymous(2);
    EXPECT_EQ(timed_wait_under_signals(timeout,
                                       [&] {
                                           auto index = barrier.wait_for(timeout);
                                           return !index && index.error() == errc::timeout;
                                       }),
              0)
        << codes;
}

/// Starts `blocked_child`, waits until `parked()` says it is asleep in the kernel, then checks
/// that over one second (the child must stay blocked all along) it used under 2 % of a CPU,
/// then lets it go with `release()` and expects exit code 0.
template <class Parked, class Release>
void expect_idle_while_blocked(Process& child, Parked parked, Release release) {
    ASSERT_TRUE(test::wait_until_true([&] {
        return parked() && test::process_state(child.pid()) == 'S';
    })) << "the child never parked";
    const auto before = test::process_cpu_time(child.pid());
    ASSERT_GE(before.count(), 0);
    EXPECT_FALSE(child.join_for(1s)) << "the child stopped waiting";  // the measured second
    const auto used = test::process_cpu_time(child.pid()) - before;
    EXPECT_LT(used, 20ms) << used.count() << " µs of CPU in one second of waiting";
    release();
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

TEST(SyncWaiting, ABlockedSemaphoreAcquireUsesNoCpu) {
    Semaphore semaphore = Semaphore::anonymous(0);
    Process child = spawn([&] { semaphore.acquire(); });
    expect_idle_while_blocked(
        child, [&] { return semaphore.state().waiters.load() == 1; }, [&] { semaphore.release(); });
}

TEST(SyncWaiting, ABlockedEventWaitUsesNoCpu) {
    Event event = Event::anonymous();
    Process child = spawn([&] { event.wait(); });
    expect_idle_while_blocked(
        child, [&] { return event.state().waiters.load() == 1; }, [&] { event.set(); });
}

TEST(SyncWaiting, ABlockedLockUsesNoCpu) {
    Lock lock = Lock::anonymous();
    lock.lock();
    Process child = spawn([&] {
        lock.lock();
        lock.unlock();
    });
    expect_idle_while_blocked(
        child, [&] { return test::futex_word_has_waiters(lock.state()); }, [&] { lock.unlock(); });
}

}  // namespace
}  // namespace shuttle
