#include <sys/syscall.h>

#include <thread>

#include "counters_segment.hpp"
#include "shuttle/wait.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::run_child;

std::atomic<uint32_t>& word_in(const Segment& segment, int index = 0) {
    return *reinterpret_cast<std::atomic<uint32_t>*>(segment.body() + 8 * index);
}

Segment anonymous_words() {
    return Segment::create_anonymous(test::counters_info(), test::counters_body_size, {});
}

TEST(Wait, TimedWaitNeverReturnsEarlyAndIsLateByLessThan50ms) {
    std::atomic<uint32_t> word{0};
    for (auto timeout : {1ms, 20ms, 100ms}) {
        auto start = steady_clock::now();
        EXPECT_EQ(wait_on(word, 0, start + timeout), wake_reason::timeout);
        auto took = steady_clock::now() - start;
        EXPECT_GE(took, timeout);
        EXPECT_LT(took, timeout + 50ms);
    }
}

TEST(Wait, ChangedWordReturnsAtOnce) {
    std::atomic<uint32_t> word{1};
    auto start = steady_clock::now();
    EXPECT_EQ(wait_on(word, 0, start + 5s), wake_reason::notified);
    EXPECT_LT(steady_clock::now() - start, 1s);
}

TEST(Wait, DeadlineInThePastTriesOnce) {
    std::atomic<uint32_t> word{0};
    EXPECT_EQ(wait_on(word, 0, deadline_after(-1s)), wake_reason::timeout);
    EXPECT_EQ(wait_on(word, 0, deadline_after(0s)), wake_reason::timeout);
}

// A waiter in another process is woken by a wake in this one.
TEST(Wait, WakesAWaiterInAnotherProcess) {
    Segment segment = anonymous_words();
    std::atomic<uint32_t>& word = word_in(segment);
    std::atomic<uint32_t>& ready = word_in(segment, 1);
    Process child([&] {
        ready.store(1);
        while (word.load() == 0) wait_on(word, 0, no_deadline);
        return word.load() == 7 ? 0 : 1;
    });
    child.start();
    ASSERT_TRUE(test::eventually([&] { return ready.load() != 0; })) << "the child never started";
    word.store(7);
    wake_all(word);
    ASSERT_TRUE(test::join_and_expect_exit(child, 0, 10000ms));
}

// A signal (EINTR) does not end a timed wait early.
TEST(Wait, SignalsDoNotEndAWaitEarly) {
    int code = run_child([] {
        ::signal(SIGUSR1, [](int) {});
        pthread_t self = pthread_self();
        std::thread pester([self] {
            for (int i = 0; i < 20; ++i) {
                pthread_kill(self, SIGUSR1);
                std::this_thread::sleep_for(5ms);
            }
        });
        std::atomic<uint32_t> word{0};
        auto start = steady_clock::now();
        wake_reason reason = wait_on(word, 0, start + 200ms);
        auto took = steady_clock::now() - start;
        pester.join();
        return reason == wake_reason::timeout && took >= 200ms ? 0 : 1;
    });
    EXPECT_EQ(code, 0);
}

// The stop lands while the waiter is asleep in FUTEX_WAIT on the word (checked in /proc), so
// the requester's wake is what ends the wait, not the waiter's own check before sleeping.
TEST(Wait, StopTokenInterruptsAWaiterAsleepInTheFutex) {
    std::atomic<uint32_t> word{0};
    std::stop_source source;
    std::atomic<pid_t> waiter_thread{0};
    std::atomic<bool> done{false};
    wake_reason reason = wake_reason::notified;
    std::thread waiter([&] {
        waiter_thread = test::current_thread_id();
        reason = wait_on(word, 0, no_deadline, source.get_token());
        done = true;
    });
    const bool started = test::eventually([&] { return waiter_thread.load() != 0; });
    const bool asleep =
        started && test::wait_until_sleeping_in_system_call(waiter_thread.load(), SYS_futex,
                                                            reinterpret_cast<uintptr_t>(&word));
    EXPECT_TRUE(asleep) << "the waiter never went to sleep in futex()";
    source.request_stop();
    const bool woken = test::eventually([&] { return done.load(); }, 5000ms);
    EXPECT_TRUE(woken) << "request_stop did not wake a waiter asleep in futex()";
    if (!woken) {  // release the waiter so the test ends instead of hanging in join()
        word.store(1);
        wake_all(word);
    }
    waiter.join();
    EXPECT_EQ(reason, wake_reason::cancelled);
    EXPECT_EQ(wait_on(word, 0, no_deadline, source.get_token()), wake_reason::cancelled);
}

TEST(Wait, BackoffGivesUpWithinItsLimit) {
    Backoff backoff;
    auto start = steady_clock::now();
    int steps = 0;
    while (backoff.step()) ++steps;
    auto took = steady_clock::now() - start;
    EXPECT_GT(steps, 16);
    EXPECT_LE(took, Backoff::busy_yield_limit + 20ms);
}

// The spin is scored per thread: waits that needed a yield use up its credit, after which a
// wait starts yielding at once, except every 16th, which spins first to notice a change; one
// wait satisfied while spinning brings spinning back. A fresh thread keeps the policy's state
// out of the other tests.
TEST(Wait, BackoffStopsSpinningWhenSpinsDoNotPayAndProbesAgain) {
    std::thread([] {
        // A wait satisfied after yields: let it reach its yielding phase first.
        auto wait_satisfied_after_a_yield = [] {
            Backoff backoff;
            while (!backoff.yielding()) ASSERT_TRUE(backoff.step());
            ASSERT_TRUE(backoff.step());
            backoff.satisfied();
        };
        EXPECT_FALSE(Backoff{}.yielding()) << "a new thread spins first";
        for (int i = 0; i < 8; ++i) wait_satisfied_after_a_yield();
        int spinning = 0;
        for (int i = 0; i < 32; ++i) {
            Backoff backoff;
            if (!backoff.yielding()) ++spinning;
        }
        EXPECT_EQ(spinning, 2) << "without credit only every 16th wait spins";
        Backoff probe;
        while (probe.yielding()) probe = Backoff{};  // the next probe
        probe.satisfied();                           // satisfied while spinning
        EXPECT_FALSE(Backoff{}.yielding());
        EXPECT_FALSE(Backoff{}.yielding());
    }).join();
}

}  // namespace
}  // namespace shuttle
