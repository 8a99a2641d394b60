// shuttle::Pool with workers killed at every point of a task's life: before taking one, after
// taking it, mid-task (SIGKILL from outside, a crash inside), after finishing before the result
// is published, after publishing before the acknowledgement, and while the pool closes. The
// pool never hangs: the task fails with errc::worker_died or is retried, a replacement starts.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "pool_support.hpp"
#include "shuttle/detail/os.hpp"
#include "shuttle/pool.hpp"
#include "shuttle/value.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;

int plus_one(int x) {
    return x + 1;
}

using test::in_child;

/// A kill point armed in exactly one worker (the first to start), `skip` passes before it fires.
/// With one worker in the pool, it is the one that takes the first tasks.
PoolOptions kill_one_worker_at(const char* point, Value<int>& armed, uint64_t skip = 0,
                               WorkerDeath on_death = WorkerDeath::fail()) {
    return PoolOptions{.initializer =
                           [point, &armed, skip] {
                               int expected = 0;
                               if (armed.compare_exchange(expected, 1)) {
                                   detail::arm_kill_point(point, skip);
                               }
                           },
                       .on_worker_death = on_death};
}

/// Whether `error` is the worker_died failure.
template <class R>
bool died(const AsyncResult<R>& result) {
    try {
        (void)result.get_for(10s);
    } catch (const Error& error) {
        return error.condition() == errc::worker_died;
    }
    return false;
}

TEST(PoolCrash, IdleWorkerKilledIsReplaced) {
    in_child([] {
        Pool pool(2);
        const auto before = pool.worker_pids();
        ASSERT_EQ(before.size(), 2u);
        ASSERT_EQ(::kill(before[0], SIGKILL), 0);
        ASSERT_TRUE(test::eventually([&] { return pool.workers_started() == 3; }));
        ASSERT_TRUE(test::eventually([&] {
            auto now = pool.worker_pids();
            return now.size() == 2 && std::find(now.begin(), now.end(), before[0]) == now.end();
        }));
        std::vector<int> inputs(100, 1);
        EXPECT_EQ(pool.map(plus_one, inputs), std::vector<int>(100, 2));
    });
}

TEST(PoolCrash, KilledAfterTakingBeforeStartingRunsTheTaskElsewhere) {
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        // Even with on_worker_death = fail: the task never started, so it is not the cause.
        Pool pool(1, kill_one_worker_at("pool.worker.took", armed));
        std::vector<AsyncResult<int>> results;
        for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(plus_one, i));
        for (int i = 0; i < 20; ++i) EXPECT_EQ(results[i].get_for(10s), i + 1);
        EXPECT_EQ(armed.load(), 1);
        EXPECT_TRUE(test::eventually([&] { return pool.workers_started() == 2; }));
    });
}

TEST(PoolCrash, CrashInTaskFailsItWithWorkerDiedAndErrorCallback) {
    in_child([] {
        Pool pool(2);
        auto crash = [](int) {
            ::raise(SIGKILL);
            return 0;
        };
        std::atomic<int> callbacks{0};
        auto result = pool.apply_async(
            crash, std::tuple{0}, [](int) {},
            [&](const Error& error) {
                EXPECT_EQ(error.condition(), errc::worker_died);
                callbacks.fetch_add(1);
            });
        EXPECT_TRUE(died(result));
        EXPECT_EQ(callbacks.load(), 1);
        // The pool goes on, with a replacement.
        EXPECT_EQ(pool.apply(plus_one, 1), 2);
        EXPECT_TRUE(test::eventually([&] { return pool.worker_pids().size() == 2; }));
        // A crashing task never takes the pool down: every one fails, the others succeed.
        std::vector<AsyncResult<int>> crashes;
        for (int i = 0; i < 5; ++i) crashes.push_back(pool.apply_async(crash, i));
        for (auto& crashed : crashes) EXPECT_TRUE(died(crashed));
        EXPECT_EQ(pool.map(plus_one, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 3, 4}));
    });
}

TEST(PoolCrash, KilledMidTaskFromOutsideIsRetried) {
    in_child([] {
        auto running = Value<int>::anonymous(0);  // the pid of the worker in the slow task
        auto attempts = Value<int>::anonymous(0);
        Pool pool(2, PoolOptions{.on_worker_death = WorkerDeath::retry(2)});
        auto slow = [&running, &attempts](int x) {
            if (attempts.fetch_add(1) == 0) {
                running.store(getpid());
                for (;;) pause();  // killed here
            }
            return x * 10;
        };
        auto result = pool.apply_async(slow, 4);
        ASSERT_TRUE(test::eventually([&] { return running.load() != 0; }));
        ASSERT_EQ(::kill(running.load(), SIGKILL), 0);
        EXPECT_EQ(result.get_for(10s), 40);
        EXPECT_EQ(attempts.load(), 2);
    });
}

TEST(PoolCrash, RetriesStopAtTheConfiguredCount) {
    in_child([] {
        auto runs = Value<int>::anonymous(0);
        Pool pool(2, PoolOptions{.on_worker_death = WorkerDeath::retry(2)});
        auto crash = [&runs](int) {
            runs.fetch_add(1);
            ::raise(SIGKILL);
            return 0;
        };
        EXPECT_TRUE(died(pool.apply_async(crash, 0)));
        EXPECT_EQ(runs.load(), 3);  // the first run and two retries
        EXPECT_EQ(pool.apply(plus_one, 1), 2);
    });
}

TEST(PoolCrash, KilledAfterFinishingBeforePublishing) {
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        Pool pool(1, kill_one_worker_at("pool.worker.finished", armed));
        EXPECT_TRUE(died(pool.apply_async(plus_one, 1)));
        EXPECT_EQ(pool.apply(plus_one, 2), 3);
    });
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        Pool pool(1, kill_one_worker_at("pool.worker.finished", armed, 0, WorkerDeath::retry(1)));
        EXPECT_EQ(pool.apply_async(plus_one, 1).get_for(10s), 2);
        EXPECT_EQ(armed.load(), 1);
    });
}

TEST(PoolCrash, KilledAfterPublishingKeepsTheResult) {
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        Pool pool(1, kill_one_worker_at("pool.worker.published", armed));
        std::vector<AsyncResult<int>> results;
        for (int i = 0; i < 10; ++i) results.push_back(pool.apply_async(plus_one, i));
        for (int i = 0; i < 10; ++i) EXPECT_EQ(results[i].get_for(10s), i + 1);
        EXPECT_EQ(armed.load(), 1);
        EXPECT_TRUE(test::eventually([&] { return pool.workers_started() == 2; }));
    });
}

TEST(PoolCrash, MapChunkOfAKilledWorker) {
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        Pool pool(1, kill_one_worker_at("pool.worker.finished", armed, 1, WorkerDeath::retry(1)));
        std::vector<int> inputs(1000, 5);
        EXPECT_EQ(pool.map(plus_one, inputs, 50), std::vector<int>(1000, 6));
        EXPECT_EQ(armed.load(), 1);
    });
    in_child([] {
        auto armed = Value<int>::anonymous(0);
        Pool pool(1, kill_one_worker_at("pool.worker.finished", armed, 1));
        try {
            pool.map(plus_one, std::vector<int>(1000, 5), 50);
            ADD_FAILURE() << "no exception";
        } catch (const Error& error) {
            EXPECT_EQ(error.condition(), errc::worker_died);
        }
    });
}

TEST(PoolCrash, KilledWhileThePoolClosesAndJoins) {
    for (WorkerDeath on_death : {WorkerDeath::fail(), WorkerDeath::retry(1)}) {
        in_child([on_death] {
            auto armed = Value<int>::anonymous(0);
            auto closed = Value<int>::anonymous(0);
            Pool pool(2, PoolOptions{.on_worker_death = on_death});
            // Every task waits until the pool is closing; the first to get there arms its
            // worker's kill point: that worker dies after finishing it, during close/join.
            auto after_close = [&closed, &armed](int x) {
                const auto limit = std::chrono::steady_clock::now() + 10s;
                while (closed.load() == 0 && std::chrono::steady_clock::now() < limit) {
                }
                int expected = 0;
                if (armed.compare_exchange(expected, 1)) {
                    detail::arm_kill_point("pool.worker.finished");
                }
                return x;
            };
            std::vector<AsyncResult<int>> results;
            for (int i = 0; i < 8; ++i) results.push_back(pool.apply_async(after_close, i));
            pool.close();
            closed.store(1);
            ASSERT_TRUE(pool.join_for(10s));
            int failed = 0;
            for (int i = 0; i < 8; ++i) {
                ASSERT_TRUE(results[i].ready());
                if (results[i].successful()) {
                    EXPECT_EQ(results[i].get(), i);
                } else {
                    EXPECT_TRUE(died(results[i]));
                    ++failed;
                }
            }
            EXPECT_EQ(armed.load(), 1);
            EXPECT_EQ(failed, on_death.retries == 0 ? 1 : 0);
            EXPECT_TRUE(pool.worker_pids().empty());
        });
    }
}

TEST(PoolCrash, EveryWorkerKilledMidTaskStillSettlesEverything) {
    in_child([] {
        Pool pool(2, PoolOptions{.on_worker_death = WorkerDeath::retry(100)});
        auto pid_of = [](int x) {
            const auto until = std::chrono::steady_clock::now() + 2ms;
            while (std::chrono::steady_clock::now() < until) {
            }
            return x;
        };
        auto results = pool.map_async(pid_of, std::vector<int>(200, 1), 4);
        for (int round = 0; round < 5 && !results.ready(); ++round) {
            const uint64_t started = pool.workers_started();
            for (pid_t pid : pool.worker_pids()) ::kill(pid, SIGKILL);
            ASSERT_TRUE(test::eventually([&] { return pool.workers_started() >= started + 2; }));
        }
        EXPECT_EQ(results.get_for(15s), std::vector<int>(200, 1));
    });
}

}  // namespace
}  // namespace shuttle
