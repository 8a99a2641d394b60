// A lock whose handle goes away while its thread holds it (issue 13 §1): destroyed, moved over,
// or — the realistic trigger — a global handle destroyed by exit() before the process is gone.
// Each behaves as the holder's death: the next owner gets the lock and is told.
#include <cstdlib>
#include <mutex>
#include <thread>

#include "shuttle/condition.hpp"
#include "shuttle/lock.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

// Global handles, destroyed by exit()'s static destructors in the child that holds them.
Lock global_lock;
RLock global_rlock;
Condition global_condition;

/// The child locks with `lock_it` and calls std::exit(3) holding it; the parent's
/// try_lock_for(2s) must succeed and report the previous owner's death.
template <class Handle, class LockIt>
void expect_exit_while_holding_is_a_death(Handle& handle, LockIt lock_it) {
    EXPECT_EQ(run_child([&] {
                  lock_it(handle);
                  std::exit(3);
                  return 0;
              }),
              3);
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(handle.try_lock_for(2s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_TRUE(handle.previous_owner_died());
    handle.mark_consistent();
    handle.unlock();
    EXPECT_FALSE(handle.held_by_caller());
    handle = Handle();
}

TEST(SyncLockAbandon, GlobalLockHeldAtExitIsTakenOverAndReported) {
    global_lock = Lock::anonymous();
    expect_exit_while_holding_is_a_death(global_lock, [](Lock& lock) { lock.lock(); });
}

TEST(SyncLockAbandon, GlobalRLockHeldAtDepthThreeAtExitIsTakenOverAtDepthOne) {
    global_rlock = RLock::anonymous();
    EXPECT_EQ(run_child([&] {
                  for (int level = 0; level < 3; ++level) global_rlock.lock();
                  if (global_rlock.depth() != 3) return 1;
                  std::exit(3);
                  return 0;
              }),
              3);
    ASSERT_TRUE(global_rlock.try_lock_for(2s));
    EXPECT_EQ(global_rlock.depth(), 1u);
    EXPECT_TRUE(global_rlock.previous_owner_died());
    global_rlock.unlock();
    EXPECT_EQ(global_rlock.depth(), 0u);
    global_rlock = RLock();
}

TEST(SyncLockAbandon, GlobalConditionsLockHeldAtExitIsTakenOverAndReported) {
    global_condition = Condition::anonymous();
    expect_exit_while_holding_is_a_death(global_condition,
                                         [](Condition& condition) { condition.lock(); });
}

// In one process: a handle destroyed, or moved over, while its thread holds the lock releases
// it; another handle of the same lock then gets it (no wedge for the rest of the process).
TEST(SyncLockAbandon, DestroyingOrMovingOverAHoldingHandleReleasesItAsADeath) {
    NameGuard name(test::unique_name("abandon"));
    Lock survivor = Lock::create(*name);
    {
        Lock doomed = Lock::open(*name);
        doomed.lock();
    }
    ASSERT_TRUE(survivor.try_lock());
    EXPECT_TRUE(survivor.previous_owner_died());
    survivor.mark_consistent();
    survivor.unlock();

    Lock overwritten = Lock::open(*name);
    overwritten.lock();
    overwritten = Lock::anonymous();
    ASSERT_TRUE(survivor.try_lock());
    EXPECT_TRUE(survivor.previous_owner_died());
    survivor.mark_consistent();
    survivor.unlock();
    EXPECT_TRUE(overwritten.try_lock());  // the new lock it now holds is its own
    overwritten.unlock();
}

// A thread that ends holding the lock, its process alive: the next locker takes it over.
TEST(SyncLockAbandon, ThreadEndingWhileHoldingIsADeath) {
    Lock lock = Lock::anonymous();
    std::thread([&] { lock.lock(); }).join();
    ASSERT_TRUE(lock.try_lock_for(2s));
    EXPECT_TRUE(lock.previous_owner_died());
    lock.unlock();
}

// A holder killed between taking the word and naming its process (its identity never written)
// is judged by its thread after a grace period: the lock is not lost for good.
TEST(SyncLockAbandon, HolderKilledBeforeNamingItselfIsTakenOver) {
    Lock lock = Lock::anonymous();
    EXPECT_EQ(run_child([&] {
                  lock.lock();
                  // Unname the holder, as a kill right after the word's CAS would leave it.
                  lock.state().owner.store(0);
                  lock.state().owner_pid_namespace.store(0);
                  test::die_now();
              }),
              -SIGKILL);
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(lock.try_lock_for(5s));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_TRUE(lock.previous_owner_died());
    lock.unlock();
}

}  // namespace
}  // namespace shuttle
