#include <mutex>
#include <thread>
#include <vector>

#include "shuttle/condition.hpp"
#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

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
    ASSERT_TRUE(test::join_all_and_expect_exit(consumers));
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
        condition.notify();
    }
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
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
    ASSERT_TRUE(test::join_and_expect_exit(other));
}

// A scribbled count of used waiter slots must never index past the slot array: notify (and the
// dead-waiter repair) clamp it, and a real waiter is still woken.
TEST(SyncCondition, ScribbledSlotCountNeverIndexesPastTheSlots) {
    Condition condition = Condition::anonymous();
    SharedWords words;
    Process waiter = spawn([&] {
        std::unique_lock guard(condition);
        words[0] = 1;
        return condition.wait_for(10s, [&] { return words[1].load() != 0; }) ? 0 : 1;
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    ASSERT_TRUE(test::wait_until_true([&] { return condition.state().waiters.load() != 0; }));
    EXPECT_EQ(run_child([&] {
                  std::lock_guard guard(condition);
                  condition.state().slots_used.store(UINT32_MAX);
                  condition.notify(0);
                  condition.notify(1000);
                  condition.state().slots_used.store(detail::condition_waiter_slots + 1);
                  words[1] = 1;
                  condition.notify();
                  return 0;
              }),
              0);
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
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

// notify(n) wakes at most n of the waiters (Python's semantics), not all of them: with 4
// parked waiter processes, notify(1) lets exactly one return, notify(2) two more, and the rest
// stay parked (watched for four ~100 ms backstop periods) until notify_all(). Each waiter that
// returns releases a Semaphore, so the parent blocks (no polling) while it watches.
TEST(SyncCondition, NotifyWakesAtMostTheRequestedNumberOfWaiters) {
    Condition condition = Condition::anonymous();
    Semaphore returned = Semaphore::anonymous(0);  // one unit per waiter back from wait()
    const uint32_t processes = 4;
    std::vector<Process> waiters;
    for (uint32_t p = 0; p < processes; ++p) {
        waiters.push_back(spawn([&] {
            std::unique_lock guard(condition);
            condition.wait();  // no predicate: a wake-up of any kind is counted
            returned.release();
            return condition.held_by_caller() ? 0 : 1;
        }));
    }
    ASSERT_TRUE(test::wait_until_true([&] {
        return condition.state().waiters.load() == processes;  // all registered
    }));
    const auto watch = 400ms;  // a waiter woken by mistake would show up within a backstop

    {
        std::lock_guard guard(condition);
        condition.notify(1);
    }
    ASSERT_TRUE(returned.try_acquire_for(10s)) << "notify(1) woke nobody";
    EXPECT_FALSE(returned.try_acquire_for(watch)) << "notify(1) woke more than one waiter";
    EXPECT_EQ(condition.state().waiters.load(), processes - 1);

    {
        std::lock_guard guard(condition);
        condition.notify(2);
    }
    ASSERT_TRUE(returned.try_acquire_for(10s));
    ASSERT_TRUE(returned.try_acquire_for(10s)) << "notify(2) woke only one waiter";
    EXPECT_FALSE(returned.try_acquire_for(watch)) << "notify(2) woke more than two waiters";
    EXPECT_EQ(condition.state().waiters.load(), 1u);

    {
        std::lock_guard guard(condition);
        condition.notify_all();
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(waiters));
    EXPECT_EQ(returned.value(), 1u);
    EXPECT_EQ(condition.state().waiters.load(), 0u);
    std::unique_lock guard(condition);
    condition.notify(3);  // nobody waits: nothing happens, nothing is stored up for later
    EXPECT_FALSE(condition.wait_for(20ms));
}

// More simultaneous waiters than the segment has slots (128): the extra ones share the
// overflow word, and notify_all() still wakes every one (threads of one child process, so the
// whole test is bounded by run_child's watchdog).
TEST(SyncCondition, MoreWaitersThanSlotsAreAllWoken) {
    Condition condition = Condition::anonymous();
    EXPECT_EQ(run_child([&] {
                  const uint32_t threads = detail::condition_waiter_slots + 4;
                  bool go = false;  // guarded by the condition's lock
                  std::atomic<uint32_t> woken{0};
                  std::vector<std::thread> waiters;
                  for (uint32_t t = 0; t < threads; ++t) {
                      waiters.emplace_back([&] {
                          std::unique_lock guard(condition);
                          condition.wait([&] { return go; });
                          woken.fetch_add(1);
                      });
                  }
                  if (!test::wait_until_true(
                          [&] { return condition.state().waiters.load() == threads; })) {
                      ::_exit(2);  // threads still blocked: leave at once
                  }
                  if (condition.state().overflow_waiters.load() != 4) ::_exit(3);
                  {
                      std::lock_guard guard(condition);
                      go = true;
                      condition.notify_all();
                  }
                  for (auto& waiter : waiters) waiter.join();
                  return woken.load() == threads && condition.state().waiters.load() == 0 ? 0 : 1;
              }),
              0);
}

// The oldest waiter is killed while parked; a notify(1) that picks its slot is not absorbed by
// the dead process: a live waiter gets it within about a backstop period.
TEST(SyncCondition, ADeadWaiterDoesNotAbsorbANotification) {
    Condition condition = Condition::anonymous();
    Process doomed = spawn([&] {
        std::unique_lock guard(condition);
        condition.wait();
        return 0;
    });
    ASSERT_TRUE(test::wait_until_true([&] { return condition.state().waiters.load() == 1; }));
    doomed.kill();
    doomed.join();
    Process survivor = spawn([&] {
        std::unique_lock guard(condition);
        return condition.wait_for(10s) ? 0 : 1;
    });
    ASSERT_TRUE(test::wait_until_true([&] {
        std::lock_guard guard(condition);
        return condition.state().waiters.load() == 2;  // the dead one is still counted
    }));
    auto start = std::chrono::steady_clock::now();
    {
        std::lock_guard guard(condition);
        condition.notify(1);
    }
    ASSERT_TRUE(test::join_and_expect_exit(survivor, 0, 5000ms));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(condition.state().waiters.load(), 0u);  // the dead waiter's slot was reclaimed
}

// wait_until with a predicate that stays false: never early, late by less than 50 ms, for a
// steady_clock and a system_clock deadline; the lock is held again afterwards.
TEST(SyncCondition, PredicateWaitUntilHonoursTheDeadline) {
    Condition condition = Condition::anonymous();
    std::unique_lock guard(condition);
    int calls = 0;
    auto never = [&] {
        ++calls;
        return false;
    };
    test::expect_takes(80ms, [&] {
        EXPECT_FALSE(condition.wait_until(std::chrono::steady_clock::now() + 80ms, never));
    });
    EXPECT_GE(calls, 2);  // checked before waiting and once more at the deadline
    calls = 0;
    EXPECT_TRUE(condition.held_by_caller());
    test::expect_takes(40ms, [&] {
        EXPECT_FALSE(condition.wait_until(std::chrono::system_clock::now() + 40ms, never));
    });
    calls = 0;
    test::expect_takes(0ms, [&] {
        EXPECT_FALSE(condition.wait_until(std::chrono::steady_clock::now() - 1s, never));
    });
    EXPECT_EQ(calls, 1);  // no time left: checked once
    EXPECT_TRUE(condition.held_by_caller());
}

}  // namespace
}  // namespace shuttle
