#include <mutex>
#include <thread>
#include <vector>

#include "shuttle/lock.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

// The timed forms on a lock another process holds: never early, late by less than 50 ms,
// whichever clock the deadline is on; a negative timeout tries once.
template <class Lockable>
void expect_timed_forms_time_out(Lockable& lock) {
    test::expect_takes(100ms, [&] { EXPECT_FALSE(lock.try_lock_for(100ms)); });
    test::expect_takes(
        50ms, [&] { EXPECT_FALSE(lock.try_lock_until(std::chrono::steady_clock::now() + 50ms)); });
    test::expect_takes(
        30ms, [&] { EXPECT_FALSE(lock.try_lock_until(std::chrono::system_clock::now() + 30ms)); });
    test::expect_takes(0ms, [&] { EXPECT_FALSE(lock.try_lock_for(-5ms)); });
}

// A counter incremented with a plain load + store (no atomic read-modify-write) by several
// processes under the Lock ends exact: nothing was lost to interleaving.
TEST(SyncLock, MutualExclusionAcrossProcesses) {
    Lock lock = Lock::anonymous();
    SharedWords words;
    const int processes = 4;
    const uint64_t rounds = test::sanitized() ? 2000 : 20000;
    std::vector<Process> children;
    for (int p = 0; p < processes; ++p) {
        children.push_back(spawn([&] {
            for (uint64_t i = 0; i < rounds; ++i) {
                std::lock_guard guard(lock);
                words[0].store(words[0].load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
            }
        }));
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
    EXPECT_EQ(words[0].load(), processes * rounds);
}

TEST(SyncLock, NamedLockIsSharedByName) {
    NameGuard name(test::unique_name("lock"));
    Lock lock = Lock::create(*name);
    SharedWords words;
    Process child = spawn([&] {
        Lock mine = Lock::open(*name);
        mine.lock();
        words[0] = 1;
        test::await_at_least(words[1], 1);  // the parent saw it held
        mine.unlock();
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    EXPECT_FALSE(lock.try_lock());
    words[1] = 1;
    EXPECT_TRUE(lock.try_lock_for(10s));
    lock.unlock();
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

TEST(SyncLock, CreateOpenValidation) {
    NameGuard name(test::unique_name("lock"));
    Lock lock = Lock::create(*name);
    EXPECT_THROW(
        {
            try {
                Lock::create(*name);
            } catch (const Error& e) {
                EXPECT_EQ(e.condition(), errc::already_exists);
                throw;
            }
        },
        Error);
    try {
        RLock::open(*name);
        ADD_FAILURE() << "a Lock opened as an RLock";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::kind_mismatch);
    }
    try {
        Lock::open(test::unique_name("absent"));
        ADD_FAILURE() << "opened a missing lock";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::not_found);
    }
    Lock again = Lock::open_or_create(*name);
    again.lock();
    EXPECT_FALSE(lock.try_lock());
    again.unlock();
    EXPECT_TRUE(Lock::remove(*name));
    EXPECT_FALSE(Lock::remove(*name));
    EXPECT_TRUE(lock.try_lock());  // attached handles keep working after remove
    lock.unlock();
}

// The notes' contract for a dead holder: the next locker gets the lock normally, learns the
// owner died, repairs, marks consistent; the lock stays usable.
TEST(SyncLock, HolderKilledNextOwnerLearnsAndLockStaysUsable) {
    Lock lock = Lock::anonymous();
    SharedWords words;
    int code = run_child([&] {
        lock.lock();
        words[0] = 41;  // half-done update
        test::die_now();
    });
    EXPECT_EQ(code, -SIGKILL);

    lock.lock();  // no exception
    EXPECT_TRUE(lock.previous_owner_died());
    EXPECT_EQ(words[0].load(), 41u);
    words[0] = 0;  // repair
    lock.mark_consistent();
    EXPECT_FALSE(lock.previous_owner_died());
    lock.unlock();

    // Usable afterwards, from other processes too, with no owner-died report.
    EXPECT_EQ(run_child([&] {
                  if (!lock.try_lock_for(5s)) return 1;
                  bool died = lock.previous_owner_died();
                  lock.unlock();
                  return died ? 2 : 0;
              }),
              0);
}

// Without mark_consistent() the flag is handed on to the next owner.
TEST(SyncLock, OwnerDiedFlagPersistsUntilMarkedConsistent) {
    Lock lock = Lock::anonymous();
    EXPECT_EQ(run_child([&] {
                  lock.lock();
                  test::die_now();
              }),
              -SIGKILL);
    ASSERT_TRUE(lock.try_lock());
    EXPECT_TRUE(lock.previous_owner_died());
    lock.unlock();  // not repaired
    EXPECT_EQ(run_child([&] {
                  std::unique_lock guard(lock);
                  if (!lock.previous_owner_died()) return 1;
                  lock.mark_consistent();
                  return 0;
              }),
              0);
    ASSERT_TRUE(lock.try_lock());
    EXPECT_FALSE(lock.previous_owner_died());
    lock.unlock();
}

// A holder that dies while others are blocked in lock(): one of them gets it. The holder is
// killed only once the waiter is provably asleep in the kernel inside lock() (it has flagged
// the mutex's futex word as having waiters, and its process sleeps), so this exercises the
// kernel's robust-list wake of a parked waiter, not a later lock() of an abandoned mutex.
TEST(SyncLock, BlockedWaiterGetsLockWhenHolderIsKilled) {
    Lock lock = Lock::anonymous();
    SharedWords words;
    Process holder = spawn(ProcessOptions{.daemon = true}, [&] {  // daemon: paused forever
        lock.lock();
        words[0] = 1;
        for (;;) ::pause();
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    Process waiter = spawn([&] {
        words[1] = 1;
        lock.lock();
        int result = lock.previous_owner_died() ? 0 : 1;
        lock.mark_consistent();
        lock.unlock();
        return result;
    });
    ASSERT_TRUE(test::await_at_least(words[1], 1));
    ASSERT_TRUE(test::wait_until_true([&] {
        return test::futex_word_has_waiters(lock.state()) &&
               test::process_state(waiter.pid()) == 'S';
    })) << "the waiter never parked in lock()";
    EXPECT_FALSE(waiter.join_for(0ms)) << "the waiter got a lock that is still held";
    holder.kill();
    holder.join();
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
}

TEST(SyncLock, UnlockByNonOwnerIsRefused) {
    Lock lock = Lock::anonymous();
    try {
        lock.unlock();
        ADD_FAILURE() << "unlocked a free lock";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::not_owner);
    }
    lock.lock();
    // Another process...
    EXPECT_EQ(run_child([&] {
                  try {
                      lock.unlock();
                  } catch (const Error& e) {
                      return e.condition() == errc::not_owner ? 0 : 2;
                  }
                  return 1;
              }),
              0);
    // ...and another thread of this one.
    std::thread other([&] {
        try {
            lock.unlock();
            ADD_FAILURE() << "another thread unlocked it";
        } catch (const Error& e) {
            EXPECT_EQ(e.condition(), errc::not_owner);
        }
        EXPECT_THROW(lock.mark_consistent(), Error);
    });
    other.join();
    EXPECT_TRUE(lock.held_by_caller());
    lock.unlock();  // still ours, untouched by the refused attempts
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
}

TEST(SyncLock, RelockingFromTheSameThreadIsAnErrorNotADeadlock) {
    Lock lock = Lock::anonymous();
    lock.lock();
    EXPECT_FALSE(lock.try_lock());
    EXPECT_THROW(lock.lock(), Error);
    EXPECT_FALSE(lock.try_lock_for(10ms));  // Python: waits the timeout out, then false
    lock.unlock();
}

// A lock held by the parent at fork() stays the parent's: the child does not own it.
TEST(SyncLock, LockHeldAtForkStaysWithTheParent) {
    Lock lock = Lock::anonymous();
    lock.lock();
    EXPECT_EQ(run_child([&] {
                  if (lock.held_by_caller()) return 1;
                  if (lock.try_lock()) return 2;
                  try {
                      lock.unlock();
                      return 3;
                  } catch (const Error&) {
                  }
                  return 0;
              }),
              0);
    lock.unlock();
}

TEST(SyncLock, TimedFormsHonourTheirTimeout) {
    Lock lock = Lock::anonymous();
    SharedWords words;
    Process holder = spawn([&] {
        lock.lock();
        words[0] = 1;
        test::await_at_least(words[1], 1);
        lock.unlock();
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    expect_timed_forms_time_out(lock);
    words[1] = 1;
    EXPECT_TRUE(lock.try_lock_for(10s));
    lock.unlock();
    ASSERT_TRUE(test::join_or_fail(holder));
}

TEST(SyncLock, WorksWithStandardGuards) {
    Lock first = Lock::anonymous();
    RLock second = RLock::anonymous();
    {
        std::scoped_lock both(first, second);
        EXPECT_TRUE(first.held_by_caller());
        EXPECT_EQ(second.depth(), 1u);
    }
    EXPECT_FALSE(first.held_by_caller());
    std::unique_lock guard(first, std::defer_lock);
    EXPECT_TRUE(guard.try_lock_for(1s));
}

TEST(SyncRLock, ReentersAndNeedsAsManyUnlocks) {
    RLock lock = RLock::anonymous();
    lock.lock();
    lock.lock();
    EXPECT_TRUE(lock.try_lock());
    EXPECT_TRUE(lock.try_lock_for(1ms));
    EXPECT_EQ(lock.depth(), 4u);
    auto other_can_take = [&] {
        return run_child([&] {
            if (!lock.try_lock()) return 1;
            lock.unlock();
            return 0;
        });
    };
    for (uint32_t left = 4; left > 1; --left) {
        lock.unlock();
        EXPECT_EQ(lock.depth(), left - 1);
        EXPECT_EQ(other_can_take(), 1) << "released too early at depth " << left - 1;
    }
    lock.unlock();
    EXPECT_EQ(lock.depth(), 0u);
    EXPECT_EQ(other_can_take(), 0);
    try {
        lock.unlock();
        ADD_FAILURE() << "one unlock too many was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::not_owner);
    }
}

TEST(SyncRLock, DeadOwnerAtAnyDepthIsRecoveredAtDepthOne) {
    NameGuard name(test::unique_name("rlock"));
    RLock lock = RLock::create(*name);
    EXPECT_EQ(run_child([&] {
                  RLock mine = RLock::open(*name);
                  mine.lock();
                  mine.lock();
                  mine.lock();
                  test::die_now();
              }),
              -SIGKILL);
    lock.lock();
    EXPECT_TRUE(lock.previous_owner_died());
    EXPECT_EQ(lock.depth(), 1u);
    lock.mark_consistent();
    lock.unlock();
    EXPECT_EQ(lock.depth(), 0u);
    EXPECT_EQ(run_child([&] {
                  if (!lock.try_lock()) return 1;
                  lock.unlock();
                  return 0;
              }),
              0);
}

// RLock's timed forms, held by another process: never early, late by less than 50 ms; the
// holder itself re-enters at once.
TEST(SyncRLock, TimedFormsHonourTheirTimeout) {
    RLock lock = RLock::anonymous();
    SharedWords words;
    Process holder = spawn([&] {
        lock.lock();
        lock.lock();
        if (!lock.try_lock_for(10s)) return 1;  // re-entry by the owner never waits
        words[0] = 1;
        if (!test::await_at_least(words[1], 1)) return 2;
        lock.unlock();
        lock.unlock();
        lock.unlock();
        return 0;
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    expect_timed_forms_time_out(lock);
    EXPECT_EQ(lock.depth(), 0u);
    words[1] = 1;
    EXPECT_TRUE(lock.try_lock_for(10s));
    EXPECT_EQ(lock.depth(), 1u);
    lock.unlock();
    ASSERT_TRUE(test::join_and_expect_exit(holder));
}

}  // namespace
}  // namespace shuttle
