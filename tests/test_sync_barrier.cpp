#include <set>
#include <thread>
#include <vector>

#include "shuttle/barrier.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

// N processes meet several times; each generation hands out the indices 0..N-1 once each.
TEST(SyncBarrier, ProcessesMeetAndGetDistinctArrivalIndices) {
    NameGuard name(test::unique_name("barrier"));
    const uint32_t parties = 4;
    const int generations = 3;
    Barrier barrier = Barrier::create(*name, parties);
    EXPECT_EQ(barrier.parties(), parties);
    SharedWords words(64);  // [g * parties + index] = 1 + who
    std::vector<Process> children;
    for (uint32_t p = 0; p < parties; ++p) {
        children.push_back(spawn([&, p] {
            Barrier mine = Barrier::open(*name);
            for (int g = 0; g < generations; ++g) {
                auto index = mine.wait();
                if (!index || *index >= parties) return 1;
                if (words[g * parties + *index].exchange(1 + p) != 0) return 2;  // duplicate
            }
            return 0;
        }));
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
    for (int g = 0; g < generations; ++g) {
        std::set<uint64_t> who;
        for (uint32_t i = 0; i < parties; ++i) who.insert(words[g * parties + i].load());
        EXPECT_EQ(who.size(), parties) << "generation " << g;
        EXPECT_EQ(who.count(0), 0u);
    }
    EXPECT_FALSE(barrier.broken());
}

TEST(SyncBarrier, AbortBreaksWaitersAndResetMakesItUsableAgain) {
    Barrier barrier = Barrier::anonymous(3);
    std::vector<Process> waiters;
    for (int p = 0; p < 2; ++p) {
        waiters.push_back(spawn([&] {
            auto index = barrier.wait();
            return !index && index.error() == errc::broken ? 0 : 1;
        }));
    }
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() >= 2; }));
    barrier.abort();
    ASSERT_TRUE(test::join_all_and_expect_exit(waiters));
    EXPECT_TRUE(barrier.broken());
    EXPECT_EQ(barrier.wait().error(), errc::broken);  // fails at once while broken

    barrier.reset();
    EXPECT_FALSE(barrier.broken());
    std::vector<Process> parties;
    for (int p = 0; p < 2; ++p) {
        parties.push_back(spawn([&] { return barrier.wait_for(10s) ? 0 : 1; }));
    }
    EXPECT_TRUE(barrier.wait_for(10s).has_value());
    ASSERT_TRUE(test::join_all_and_expect_exit(parties));
}

TEST(SyncBarrier, ResetWhileWaitingFailsTheWaiters) {
    Barrier barrier = Barrier::anonymous(2);
    Process waiter = spawn([&] { return barrier.wait().error() == errc::broken ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() >= 1; }));
    barrier.reset();
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
    EXPECT_FALSE(barrier.broken());
}

TEST(SyncBarrier, TimedWaitTimesOutAndBreaksTheBarrier) {
    Barrier barrier = Barrier::anonymous(2);
    test::expect_takes(100ms, [&] { EXPECT_EQ(barrier.wait_for(100ms).error(), errc::timeout); });
    EXPECT_TRUE(barrier.broken());
    barrier.reset();
    test::expect_takes(40ms, [&] {
        EXPECT_EQ(barrier.wait_until(std::chrono::steady_clock::now() + 40ms).error(),
                  errc::timeout);
    });
    barrier.reset();
    // A party still waiting when the barrier is aborted sees "broken".
    Process waiter = spawn([&] { return barrier.wait().error() == errc::broken ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() >= 1; }));
    barrier.abort();
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
}

TEST(SyncBarrier, TimeoutOfOnePartyBreaksTheOthers) {
    Barrier barrier = Barrier::anonymous(3);
    Process patient = spawn([&] { return barrier.wait().error() == errc::broken ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() >= 1; }));
    EXPECT_EQ(barrier.wait_for(50ms).error(), errc::timeout);
    ASSERT_TRUE(test::join_and_expect_exit(patient));
}

// A party killed while waiting breaks the barrier instead of hanging the others.
TEST(SyncBarrier, APartyKilledWhileWaitingBreaksTheBarrier) {
    NameGuard name(test::unique_name("barrier"));
    Barrier barrier = Barrier::create(*name, 3);
    Process doomed = spawn([&] {
        Barrier mine = Barrier::open(*name);
        (void)mine.wait();
        return 0;
    });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() >= 1; }));
    doomed.kill();
    doomed.join();
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(barrier.wait_for(10s).error(), errc::broken);  // not a hang, not a timeout
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    barrier.reset();
    EXPECT_FALSE(barrier.broken());
}

// Deterministic versions of the above: the party kills itself at the two points of its arrival
// (registered but not yet counted, with the internal lock held; counted and the lock released,
// not yet parked). Either way the next party finds the barrier broken, not a hang.
TEST(SyncBarrier, APartyDyingAtEachPointOfItsArrivalBreaksTheBarrier) {
    for (const char* point : {"barrier.wait.registered", "barrier.wait.counted"}) {
        SCOPED_TRACE(point);
        Barrier barrier = Barrier::anonymous(3);
        EXPECT_EQ(run_child([&] {
                      detail::arm_kill_point(point);
                      (void)barrier.wait();
                      return 0;
                  }),
                  -SIGKILL);
        auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(barrier.wait_for(10s).error(), errc::broken);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
        barrier.reset();
        EXPECT_FALSE(barrier.broken());
    }
}

// A party stopped (SIGSTOP) while it holds the barrier's internal lock must not stretch another
// party's timed wait: the deadline bounds taking that lock too.
TEST(SyncBarrier, TimedWaitHonoursItsDeadlineWhileAPartyIsStoppedInside) {
    Barrier barrier = Barrier::anonymous(3);
    Process stopped = spawn(ProcessOptions{.daemon = true}, [&] {
        detail::arm_kill_point("barrier.wait.registered", 0, SIGSTOP);
        (void)barrier.wait();
        return 0;
    });
    ASSERT_TRUE(test::wait_until_true([&] { return test::process_state(stopped.pid()) == 'T'; }));
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(barrier.wait_for(100ms).error(), errc::timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    stopped.kill();
    stopped.join();
}

// A count scribbled past the number of parties is impossible: the barrier breaks, and no
// arrival index out of range is ever handed out.
TEST(SyncBarrier, ScribbledCountBreaksTheBarrier) {
    Barrier barrier = Barrier::anonymous(3);
    barrier.state().count.store(UINT32_MAX);
    EXPECT_EQ(barrier.wait_for(1s).error(), errc::broken);
    barrier.reset();
    barrier.state().count.store(7);
    EXPECT_EQ(barrier.wait_for(1s).error(), errc::broken);
}

TEST(SyncBarrier, CreateValidatesParties) {
    EXPECT_THROW(Barrier::anonymous(0), Error);
    EXPECT_THROW(Barrier::anonymous(100000), Error);
    Barrier one = Barrier::anonymous(1);
    EXPECT_EQ(*one.wait(), 0u);
    EXPECT_EQ(*one.wait(), 0u);
}

}  // namespace
}  // namespace shuttle
