#include <mutex>
#include <thread>
#include <vector>

#include "shuttle/condition.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::NameGuard;
using test::run_child;
using test::SharedWords;

// Consumers in other processes wait (with a predicate) for items a producer counts up under the
// condition's lock; every item is taken exactly once.
TEST(SyncCondition, PredicateWaitAcrossProcesses) {
    NameGuard name(test::unique_name("cond"));
    Condition condition = Condition::create(*name);
    SharedWords words;  // [0] items available, [1] items taken, [2] producer done
    const uint64_t items = test::sanitized() ? 200 : 2000;
    std::vector<Process> consumers;
    for (int c = 0; c < 2; ++c) {
        consumers.push_back(spawn([&] {
            Condition mine = Condition::open(*name);
            for (;;) {
                std::unique_lock guard(mine);
                mine.wait([&] { return words[0].load() > 0 || words[2].load() != 0; });
                if (words[0].load() == 0) return 0;  // done and drained
                words[0].fetch_sub(1);
                words[1].fetch_add(1);
            }
        }));
    }
    for (uint64_t i = 0; i < items; ++i) {
        std::unique_lock guard(condition);
        words[0].fetch_add(1);
        condition.notify();
    }
    {
        std::unique_lock guard(condition);
        words[2] = 1;
        condition.notify_all();
    }
    for (auto& consumer : consumers) {
        ASSERT_TRUE(test::join_or_fail(consumer));
        EXPECT_EQ(consumer.exitcode(), 0);
    }
    EXPECT_EQ(words[1].load(), items);
    EXPECT_EQ(words[0].load(), 0u);
}

TEST(SyncCondition, NotifyWakesAWaiterInAnotherProcess) {
    Condition condition = Condition::anonymous();
    SharedWords words;
    Process waiter = spawn([&] {
        std::unique_lock guard(condition);
        words[0] = 1;
        bool notified = condition.wait_for(10s, [&] { return words[1].load() != 0; });
        return notified && condition.held_by_caller() ? 0 : 1;
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    ASSERT_TRUE(test::wait_until_true([&] { return condition.state().waiters.load() != 0; }));
    {
        std::lock_guard guard(condition);
        words[1] = 1;
    }
    condition.notify();
    ASSERT_TRUE(test::join_or_fail(waiter));
    EXPECT_EQ(waiter.exitcode(), 0);
}

TEST(SyncCondition, TimedWaitsHonourTheTimeoutAndHoldTheLockAfter) {
    Condition condition = Condition::anonymous();
    std::unique_lock guard(condition);
    test::expect_takes(100ms, [&] { EXPECT_FALSE(condition.wait_for(100ms)); });
    EXPECT_TRUE(condition.held_by_caller());
    test::expect_takes(50ms, [&] { EXPECT_FALSE(condition.wait_for(50ms, [] { return false; })); });
    test::expect_takes(
        30ms, [&] { EXPECT_FALSE(condition.wait_until(std::chrono::steady_clock::now() + 30ms)); });
    EXPECT_TRUE(condition.wait_for(0ms, [] { return true; }));
    EXPECT_TRUE(condition.held_by_caller());
}

TEST(SyncCondition, WaitReleasesTheLockWhileParked) {
    Condition condition = Condition::anonymous();
    SharedWords words;
    Process other = spawn([&] {
        if (!test::wait_until_true([&] { return condition.state().waiters.load() != 0; })) {
            return 2;
        }
        if (!condition.try_lock_for(5s)) return 1;
        words[0] = 1;
        condition.notify_all();
        condition.unlock();
        return 0;
    });
    std::unique_lock guard(condition);
    EXPECT_TRUE(condition.wait_for(10s, [&] { return words[0].load() == 1; }));
    ASSERT_TRUE(test::join_or_fail(other));
    EXPECT_EQ(other.exitcode(), 0);
}

TEST(SyncCondition, WaitWithoutTheLockIsRefused) {
    Condition condition = Condition::anonymous();
    try {
        condition.wait_for(10ms);
        ADD_FAILURE() << "waited without holding the lock";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::not_owner);
    }
}

TEST(SyncCondition, LockHolderKilledIsReportedToTheNextOwner) {
    Condition condition = Condition::anonymous();
    EXPECT_EQ(run_child([&] {
                  condition.lock();
                  test::die_now();
              }),
              -SIGKILL);
    std::unique_lock guard(condition);
    EXPECT_TRUE(condition.previous_owner_died());
    condition.mark_consistent();
    EXPECT_FALSE(condition.previous_owner_died());
}

}  // namespace
}  // namespace shuttle
