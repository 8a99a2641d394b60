// Python-faithful semantics of the sync primitives (issue 14 §3-§6), each across forked
// processes: BoundedSemaphore(0), Lock's acquire/release spellings, Condition's ownership rules
// and its RLock form, Barrier's action and default timeout.
#include <mutex>
#include <stdexcept>
#include <vector>

#include "shuttle/barrier.hpp"
#include "shuttle/condition.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

template <class F>
errc error_of(F body) {
    try {
        body();
    } catch (const Error& e) {
        return e.condition();
    }
    return errc::ok;
}

// ---- BoundedSemaphore(0) ----------------------------------------------------------------------

TEST(SyncPython, BoundedSemaphoreOfZeroIsLegalAndEveryReleaseFails) {
    BoundedSemaphore semaphore = BoundedSemaphore::anonymous(0);
    EXPECT_TRUE(semaphore.bounded());
    EXPECT_EQ(semaphore.value(), 0u);
    EXPECT_FALSE(semaphore.try_acquire());
    EXPECT_EQ(run_child([&] {
                  if (semaphore.try_acquire_for(20ms)) return 1;
                  return error_of([&] { semaphore.release(); }) == errc::invalid_argument ? 0 : 2;
              }),
              0);
    EXPECT_EQ(error_of([&] { semaphore.release(); }), errc::invalid_argument);
    EXPECT_EQ(semaphore.value(), 0u);
    EXPECT_FALSE(Semaphore::anonymous(0).bounded());
}

// ---- Lock: acquire / release ------------------------------------------------------------------

TEST(SyncPython, LockAcquireAndReleaseSpellingsAcrossProcesses) {
    Lock lock = Lock::anonymous();
    SharedWords words;  // [0] child holds it, [1] parent done
    Process holder = spawn([&] {
        if (!lock.acquire()) return 1;
        words[0] = 1;
        if (!test::await_at_least(words[1], 1)) return 2;
        lock.release();
        return 0;
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    EXPECT_FALSE(lock.acquire(false));
    test::expect_takes(50ms, [&] { EXPECT_FALSE(lock.acquire(true, 50ms)); });
    EXPECT_EQ(error_of([&] { lock.acquire(false, 10ms); }), errc::invalid_argument);
    words[1] = 1;
    ASSERT_TRUE(test::join_and_expect_exit(holder));
    EXPECT_TRUE(lock.acquire(true, 5s));
    lock.release();
    EXPECT_EQ(error_of([&] { lock.release(); }), errc::not_owner);
}

// Python: acquire(timeout=t) by the thread that already holds a Lock waits out t and returns
// False (no exception); the untimed lock() still refuses the certain deadlock.
TEST(SyncPython, LockAcquireWithATimeoutByItsHolderWaitsItOutAndReturnsFalse) {
    Lock lock = Lock::anonymous();
    EXPECT_EQ(run_child([&] {
                  lock.acquire();
                  auto start = std::chrono::steady_clock::now();
                  if (lock.acquire(true, 100ms)) return 1;
                  if (std::chrono::steady_clock::now() - start < 100ms) return 2;
                  if (lock.try_lock_for(30ms)) return 3;
                  if (lock.acquire(false)) return 4;
                  if (error_of([&] { lock.lock(); }) != errc::invalid_argument) return 5;
                  lock.release();
                  return lock.held_by_caller() ? 6 : 0;
              }),
              0);
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
}

// ---- Condition ----------------------------------------------------------------------------------

// notify()/notify_all() by a thread that does not hold the lock fail (Python raises), even
// while another process holds it.
TEST(SyncPython, ConditionNotifyWithoutTheLockIsRefused) {
    Condition condition = Condition::anonymous();
    EXPECT_EQ(error_of([&] { condition.notify(); }), errc::not_owner);
    EXPECT_EQ(error_of([&] { condition.notify_all(); }), errc::not_owner);
    std::unique_lock guard(condition);
    EXPECT_EQ(run_child([&] {
                  if (error_of([&] { condition.notify(); }) != errc::not_owner) return 1;
                  return error_of([&] { condition.notify_all(); }) == errc::not_owner ? 0 : 2;
              }),
              0);
    condition.notify();
    condition.notify_all();
}

TEST(SyncPython, ConditionWaitForWithNoTimeLeftEvaluatesThePredicateOnce) {
    Condition condition = Condition::anonymous();
    std::unique_lock guard(condition);
    for (auto timeout : {0ms, -5ms}) {
        int calls = 0;
        EXPECT_FALSE(condition.wait_for(timeout, [&] {
            ++calls;
            return false;
        }));
        EXPECT_EQ(calls, 1);
        calls = 0;
        EXPECT_TRUE(condition.wait_for(timeout, [&] {
            ++calls;
            return true;
        }));
        EXPECT_EQ(calls, 1);
    }
    int calls = 0;
    EXPECT_FALSE(condition.wait_until(std::chrono::steady_clock::now() - 1s, [&] {
        ++calls;
        return false;
    }));
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(condition.held_by_caller());
}

// A Condition over an RLock (Python's default): the holder re-enters at any depth; wait()
// releases every level (another process takes the lock meanwhile) and restores them all.
TEST(SyncPython, ConditionOverAnRLockReleasesEveryLevelWhileWaiting) {
    NameGuard name(test::unique_name("rcond"));
    Condition condition = Condition::create(*name, ConditionLock::rlock);
    EXPECT_TRUE(condition.recursive());
    EXPECT_TRUE(Condition::open(*name).recursive());
    EXPECT_FALSE(Condition::anonymous().recursive());
    SharedWords words;  // [0] the other process locked it, [1] ready
    Process other = spawn([&] {
        Condition mine = Condition::open(*name);
        if (!test::wait_until_true([&] { return mine.state().waiters.load() != 0; })) return 2;
        if (!mine.try_lock_for(5s)) return 1;  // every level was released
        words[0] = 1;
        words[1] = 1;
        mine.notify_all();
        mine.unlock();
        return 0;
    });
    condition.lock();
    condition.lock();
    ASSERT_TRUE(condition.try_lock());
    EXPECT_EQ(condition.depth(), 3u);
    EXPECT_TRUE(condition.wait_for(10s, [&] { return words[1].load() == 1; }));
    EXPECT_EQ(words[0].load(), 1u);
    EXPECT_EQ(condition.depth(), 3u);
    condition.unlock();
    condition.unlock();
    EXPECT_TRUE(condition.held_by_caller());
    condition.notify();  // still the holder at depth 1
    condition.unlock();
    EXPECT_FALSE(condition.held_by_caller());
    ASSERT_TRUE(test::join_and_expect_exit(other));
}

// ---- Barrier ------------------------------------------------------------------------------------

// The action runs exactly once per round, in one party, after every party arrived and before
// any is released.
TEST(SyncPython, BarrierActionRunsOnceAfterAllArrivedBeforeAnyIsReleased) {
    const uint32_t parties = 3;
    const uint64_t rounds = 4;
    Barrier barrier = Barrier::anonymous(parties);
    SharedWords words;  // [0] actions run, [1] parties released, [2] action saw a released party
    barrier.set_action([&] {
        if (words[1].load() != words[0].load() * parties) words[2] = 1;
        words[0].fetch_add(1);
    });
    std::vector<Process> children;
    for (uint32_t p = 0; p + 1 < parties; ++p) {
        children.push_back(spawn([&] {
            for (uint64_t r = 0; r < rounds; ++r) {
                if (!barrier.wait_for(10s)) return 1;
                words[1].fetch_add(1);
                if (!test::await_at_least(words[1], (r + 1) * parties)) return 2;
            }
            return 0;
        }));
    }
    for (uint64_t r = 0; r < rounds; ++r) {
        ASSERT_TRUE(barrier.wait_for(10s).has_value());
        words[1].fetch_add(1);
        ASSERT_TRUE(test::await_at_least(words[1], (r + 1) * parties));
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
    EXPECT_EQ(words[0].load(), rounds);
    EXPECT_EQ(words[2].load(), 0u);
}

// An action that throws: the party that ran it gets the exception, the others errc::broken, and
// the barrier stays broken (n_waiting 0) until reset().
TEST(SyncPython, BarrierActionThatThrowsBreaksTheBarrier) {
    Barrier barrier = Barrier::anonymous(2);
    barrier.set_action([] { throw std::runtime_error("action failed"); });
    Process waiter = spawn([&] {
        barrier.set_action({});  // this process's handle has none: the parent's runs
        return barrier.wait_for(10s).error() == errc::broken ? 0 : 1;
    });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() == 1; }));
    EXPECT_THROW((void)barrier.wait_for(10s), std::runtime_error);
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
    EXPECT_TRUE(barrier.broken());
    EXPECT_EQ(barrier.n_waiting(), 0u);
    barrier.reset();
    barrier.set_action({});
    EXPECT_FALSE(barrier.broken());
}

// Python's Barrier(parties, timeout=t): wait() with no timeout of its own uses t (and then
// breaks the barrier); n_waiting() is 0 once broken, although a party still waits.
TEST(SyncPython, BarrierDefaultTimeoutAndNWaitingOnceBroken) {
    Barrier barrier = Barrier::anonymous(3);
    Process patient = spawn([&] { return barrier.wait().error() == errc::broken ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return barrier.n_waiting() == 1; }));
    barrier.set_default_timeout(80ms);
    test::expect_takes(80ms, [&] { EXPECT_EQ(barrier.wait().error(), errc::timeout); });
    EXPECT_TRUE(barrier.broken());
    EXPECT_EQ(barrier.n_waiting(), 0u);
    ASSERT_TRUE(test::join_and_expect_exit(patient));
}

}  // namespace
}  // namespace shuttle
