#include <thread>
#include <vector>

#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

// At most `n` processes are ever inside at once, and they do get in concurrently.
TEST(SyncSemaphore, NeverExceedsItsCountAcrossProcesses) {
    const uint32_t n = 3;
    Semaphore semaphore = Semaphore::anonymous(n);
    SharedWords words;  // [0] inside now, [1] most ever inside
    const int processes = 6;
    const int rounds = test::sanitized() ? 200 : 2000;
    std::vector<Process> children;
    for (int p = 0; p < processes; ++p) {
        children.push_back(spawn([&] {
            for (int i = 0; i < rounds; ++i) {
                semaphore.acquire();
                uint64_t inside = words[0].fetch_add(1) + 1;
                uint64_t most = words[1].load();
                while (inside > most && !words[1].compare_exchange_weak(most, inside)) {
                }
                std::this_thread::yield();
                words[0].fetch_sub(1);
                semaphore.release();
            }
        }));
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
    EXPECT_LE(words[1].load(), n);
    EXPECT_GE(words[1].load(), 2u);
    EXPECT_EQ(semaphore.value(), n);
}

TEST(SyncSemaphore, ReleaseWakesAnAcquirerInAnotherProcess) {
    NameGuard name(test::unique_name("sem"));
    Semaphore semaphore = Semaphore::create(*name, 0);
    SharedWords words;
    Process child = spawn([&] {
        Semaphore mine = Semaphore::open(*name);
        words[0] = 1;
        mine.acquire();
        mine.acquire();
        words[1] = 1;
    });
    ASSERT_TRUE(test::await_at_least(words[0], 1));
    // Wait until the child is parked (counted as a waiter) so the wake path is exercised.
    ASSERT_TRUE(test::wait_until_true([&] { return semaphore.state().waiters.load() != 0; }));
    semaphore.release(2);
    ASSERT_TRUE(test::join_or_fail(child));
    EXPECT_EQ(words[1].load(), 1u);
    EXPECT_EQ(semaphore.value(), 0u);
}

TEST(SyncSemaphore, TryAndTimedAcquire) {
    Semaphore semaphore = Semaphore::anonymous(2);
    EXPECT_EQ(semaphore.bound(), 0u);
    EXPECT_TRUE(semaphore.try_acquire());
    EXPECT_TRUE(semaphore.try_acquire_for(0ms));
    EXPECT_FALSE(semaphore.try_acquire());
    EXPECT_EQ(semaphore.value(), 0u);
    test::expect_takes(100ms, [&] { EXPECT_FALSE(semaphore.try_acquire_for(100ms)); });
    test::expect_takes(40ms, [&] {
        EXPECT_FALSE(semaphore.try_acquire_until(std::chrono::steady_clock::now() + 40ms));
    });
    semaphore.release();
    EXPECT_TRUE(semaphore.try_acquire_for(1s));
    semaphore.release(5);
    EXPECT_EQ(semaphore.value(), 5u);
    EXPECT_THROW(semaphore.release(0), Error);
}

TEST(SyncSemaphore, StopTokenCancelsABlockedAcquire) {
    Semaphore semaphore = Semaphore::anonymous(0);
    std::stop_source source;
    std::thread stopper([&] {
        // Stop either way, so an acquirer that never parks fails the test instead of hanging it.
        EXPECT_TRUE(test::wait_until_true([&] { return semaphore.state().waiters.load() != 0; }));
        source.request_stop();
    });
    EXPECT_EQ(semaphore.acquire(source.get_token()), errc::cancelled);
    stopper.join();
    EXPECT_EQ(semaphore.value(), 0u);
}

// Units taken by a process that dies are not given back (documented contract).
TEST(SyncSemaphore, UnitsHeldByADeadProcessAreNotReturned) {
    Semaphore semaphore = Semaphore::anonymous(2);
    EXPECT_EQ(run_child([&] {
                  semaphore.acquire();
                  test::die_now();
              }),
              -SIGKILL);
    EXPECT_EQ(semaphore.value(), 1u);
}

TEST(SyncBoundedSemaphore, OverReleaseIsRefusedAndChangesNothing) {
    BoundedSemaphore semaphore = BoundedSemaphore::anonymous(2);
    EXPECT_EQ(semaphore.bound(), 2u);
    try {
        semaphore.release();
        ADD_FAILURE() << "released above the initial value";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::invalid_argument);
    }
    EXPECT_EQ(semaphore.value(), 2u);
    semaphore.acquire();
    EXPECT_THROW(semaphore.release(2), Error);
    EXPECT_EQ(semaphore.value(), 1u);
    // From another process too.
    EXPECT_EQ(run_child([&] {
                  try {
                      semaphore.release(2);
                  } catch (const Error&) {
                      return 0;
                  }
                  return 1;
              }),
              0);
    semaphore.release();
    EXPECT_EQ(semaphore.value(), 2u);
}

TEST(SyncBoundedSemaphore, NamedOpenChecksTheKind) {
    NameGuard plain(test::unique_name("sem"));
    NameGuard bounded(test::unique_name("bsem"));
    Semaphore a = Semaphore::create(*plain, 1);
    BoundedSemaphore b = BoundedSemaphore::create(*bounded, 3);
    try {
        BoundedSemaphore::open(*plain);
        ADD_FAILURE() << "a Semaphore opened as a BoundedSemaphore";
    } catch (const Error& e) {
        EXPECT_EQ(e.condition(), errc::kind_mismatch);
    }
    Semaphore any = Semaphore::open(*bounded);  // a bounded one is a Semaphore too
    EXPECT_EQ(any.bound(), 3u);
    EXPECT_THROW(any.release(), Error);
    BoundedSemaphore again = BoundedSemaphore::open_or_create(*bounded, 7);
    EXPECT_EQ(again.bound(), 3u);
    EXPECT_THROW(BoundedSemaphore::anonymous(detail::semaphore_max_value + 1), Error);
}

}  // namespace
}  // namespace shuttle
