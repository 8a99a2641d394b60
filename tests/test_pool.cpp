// shuttle::Pool: the API across real worker processes (apply, apply_async with callbacks, map,
// starmap, imap, close/join/terminate, errors). Crash behaviour: test_pool_crash.cpp.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "pool_support.hpp"
#include "shuttle/pool.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;

int square(int x) {
    return x * x;
}
int add(int a, int b) {
    return a + b;
}
pid_t worker_pid() {
    return getpid();
}
int fail_on_negative(int x) {
    if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
    return x;
}

using test::in_child;

TEST(Pool, ApplyRunsInAWorkerProcess) {
    in_child([] {
        Pool pool(2);
        EXPECT_EQ(pool.apply(add, 2, 3), 5);
        const pid_t pid = pool.apply(worker_pid);
        EXPECT_NE(pid, getpid());
        const auto workers = pool.worker_pids();
        EXPECT_EQ(workers.size(), 2u);
        EXPECT_NE(std::find(workers.begin(), workers.end(), pid), workers.end());
    });
}

TEST(Pool, ArgumentsAndResultsOfAnyCodecType) {
    in_child([] {
        Pool pool(2);
        auto shout = [](std::string text, std::vector<int> counts) {
            for (int count : counts) text += std::string(static_cast<std::size_t>(count), '!');
            return std::tuple<std::string, std::size_t>(text, counts.size());
        };
        auto [text, size] = pool.apply(shout, std::string("hey"), std::vector<int>{1, 2});
        EXPECT_EQ(text, "hey!!!");
        EXPECT_EQ(size, 2u);
        using Mixed = std::variant<int, std::string>;
        auto describe = [](Mixed value) -> std::map<std::string, int> {
            if (auto* number = std::get_if<int>(&value)) return {{"int", *number}};
            return {{std::get<std::string>(value), 0}};
        };
        EXPECT_EQ(pool.apply(describe, Mixed(7)).at("int"), 7);
        EXPECT_EQ(pool.apply(describe, Mixed(std::string("abc"))).count("abc"), 1u);
        int calls = 0;
        (void)calls;
        auto nothing = [](int) {};
        pool.apply(nothing, 1);  // a void task
    });
}

TEST(Pool, TriviallyCopyableCallableCarriesItsState) {
    in_child([] {
        Pool pool(1);
        const int offset = 100;
        auto shifted = [offset](int x) { return x + offset; };
        EXPECT_EQ(pool.apply(shifted, 1), 101);
        struct Scale {
            double factor;
            double operator()(double x) const { return x * factor; }
        };
        EXPECT_EQ(pool.apply(Scale{2.5}, 2.0), 5.0);
    });
}

TEST(Pool, MapKeepsInputOrderForEveryChunksize) {
    in_child([] {
        Pool pool(2);
        std::vector<int> inputs(1000);
        std::iota(inputs.begin(), inputs.end(), -500);
        std::vector<int> expected;
        for (int x : inputs) expected.push_back(x * x);
        for (std::size_t chunksize : {0, 1, 7, 1000, 5000}) {
            EXPECT_EQ(pool.map(square, inputs, chunksize), expected) << chunksize;
        }
        EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
        // Strings bigger than one message's worth per chunk: chunks are cut to fit.
        Pool small(2, PoolOptions{.max_message_size = 256});
        std::vector<std::string> words(200, std::string(50, 'x'));
        auto length = [](const std::string& word) { return word.size(); };
        EXPECT_EQ(small.map(length, words), std::vector<std::size_t>(200, 50));
    });
}

TEST(Pool, StarmapTakesTuplesOfArguments) {
    in_child([] {
        Pool pool(2);
        std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
        EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 11}));
    });
}

TEST(Pool, ApplyAsyncCallbacksRunInTheParentOneAtATime) {
    in_child([] {
        Pool pool(2);
        std::atomic<int> running{0};
        std::atomic<int> overlaps{0};
        std::atomic<int> sum{0};
        const pid_t parent = getpid();
        std::atomic<bool> wrong_process{false};
        std::vector<AsyncResult<int>> results;
        for (int i = 0; i < 200; ++i) {
            results.push_back(pool.apply_async(square, std::tuple{i}, [&](int value) {
                if (running.fetch_add(1) != 0) overlaps.fetch_add(1);
                if (getpid() != parent) wrong_process = true;
                sum += value;
                running.fetch_sub(1);
            }));
        }
        int expected = 0;
        for (int i = 0; i < 200; ++i) {
            EXPECT_EQ(results[i].get(), i * i);
            expected += i * i;
        }
        EXPECT_EQ(sum.load(), expected);  // each callback ran before its get() returned
        EXPECT_EQ(overlaps.load(), 0);
        EXPECT_FALSE(wrong_process.load());
    });
}

TEST(Pool, ExceptionReachesGetAndErrorCallback) {
    in_child([] {
        Pool pool(2);
        try {
            pool.apply(fail_on_negative, -3);
            ADD_FAILURE() << "no exception";
        } catch (const TaskError& error) {
            EXPECT_EQ(error.condition(), errc::task_failed);
            EXPECT_EQ(error.type_name(), "std::invalid_argument");
            EXPECT_EQ(error.message(), "negative: -3");
        }
        std::atomic<int> errors{0};
        std::string seen;
        auto result = pool.apply_async(
            fail_on_negative, std::tuple{-1}, [](int) { ADD_FAILURE() << "callback on failure"; },
            [&](const Error& error) {
                seen = error.what();
                errors.fetch_add(1);
            });
        result.wait();
        EXPECT_TRUE(result.ready());
        EXPECT_FALSE(result.successful());
        EXPECT_THROW(result.get(), TaskError);
        EXPECT_EQ(errors.load(), 1);
        EXPECT_NE(seen.find("negative: -1"), std::string::npos) << seen;
        // A map fails with the first failure once every item settled; the pool goes on.
        EXPECT_THROW(pool.map(fail_on_negative, std::vector<int>{1, -2, 3}), TaskError);
        EXPECT_EQ(pool.apply(fail_on_negative, 4), 4);
    });
}

TEST(Pool, GetForTimesOutWhileTheTaskRuns) {
    in_child([] {
        Pool pool(1);
        auto slow = [](int) {
            const auto until = std::chrono::steady_clock::now() + 200ms;
            while (std::chrono::steady_clock::now() < until) {
            }
            return 1;
        };
        auto result = pool.apply_async(slow, 0);
        EXPECT_THROW(result.get_for(1ms), Timeout);
        EXPECT_FALSE(result.ready());
        EXPECT_THROW((void)result.successful(), Error);
        EXPECT_EQ(result.get_for(10s), 1);
        EXPECT_TRUE(result.successful());
    });
}

TEST(Pool, ImapYieldsInOrderAndUnorderedYieldsEverything) {
    in_child([] {
        Pool pool(2, PoolOptions{.queue_capacity = 4});  // more chunks than fit: fed lazily
        std::vector<int> inputs(100);
        std::iota(inputs.begin(), inputs.end(), 0);
        std::vector<int> ordered;
        auto stream = pool.imap(square, inputs);
        EXPECT_EQ(stream.size(), 100u);
        for (int value : stream) ordered.push_back(value);
        std::vector<int> expected;
        for (int x : inputs) expected.push_back(x * x);
        EXPECT_EQ(ordered, expected);
        std::multiset<int> unordered;
        for (int value : pool.imap_unordered(square, inputs, 3)) unordered.insert(value);
        EXPECT_EQ(unordered, std::multiset<int>(expected.begin(), expected.end()));
    });
}

TEST(Pool, CloseFinishesQueuedTasksThenJoinReturns) {
    in_child([] {
        Pool pool(2);
        auto results = pool.map_async(square, std::vector<int>{1, 2, 3, 4}, 1);
        pool.close();
        EXPECT_THROW(pool.apply_async(square, 1), Closed);
        EXPECT_TRUE(pool.join_for(10s));
        EXPECT_EQ(results.get_for(0s), (std::vector<int>{1, 4, 9, 16}));
        EXPECT_TRUE(pool.worker_pids().empty());
    });
}

TEST(Pool, JoinBeforeCloseIsRefused) {
    in_child([] {
        Pool pool(1);
        EXPECT_THROW(pool.join(), Error);
    });
}

TEST(Pool, TerminateFailsUnfinishedTasks) {
    in_child([] {
        Pool pool(1);
        auto forever = [](int) {
            for (;;) pause();
            return 0;
        };
        std::atomic<int> errors{0};
        auto stuck = pool.apply_async(
            forever, std::tuple{0}, [](int) {},
            [&](const Error& error) {
                EXPECT_EQ(error.condition(), errc::closed);
                errors.fetch_add(1);
            });
        pool.terminate();
        EXPECT_THROW(stuck.get_for(5s), Closed);
        EXPECT_EQ(errors.load(), 1);
        EXPECT_TRUE(pool.join_for(1s));
    });
}

TEST(Pool, InitializerRunsInEveryWorkerAndMaxTasksReplacesThem) {
    in_child([] {
        static int initialised = 0;  // in each worker's own memory
        Pool pool(2, PoolOptions{.initializer = [] { initialised = 42; }, .maxtasksperchild = 3});
        auto read = [](int) { return initialised; };
        std::set<pid_t> pids;
        for (int i = 0; i < 30; ++i) {
            EXPECT_EQ(pool.apply(read, i), 42);
            pids.insert(pool.apply(worker_pid));
        }
        EXPECT_GT(pids.size(), 2u);  // workers were replaced after 3 tasks each
        EXPECT_GE(pool.workers_started(), 10u);
    });
}

TEST(Pool, TooLargeArgumentsAreRefusedAndNothingIsLost) {
    in_child([] {
        Pool pool(1, PoolOptions{.max_message_size = 1024});
        auto length = [](const std::string& text) { return text.size(); };
        EXPECT_THROW(pool.apply_async(length, std::string(4096, 'x')), Error);
        auto big = [](int size) { return std::string(static_cast<std::size_t>(size), 'y'); };
        try {
            pool.apply(big, 4096);
            ADD_FAILURE() << "no exception";
        } catch (const Error& error) {
            EXPECT_EQ(error.condition(), errc::too_large);
        }
        EXPECT_EQ(pool.apply(length, std::string(100, 'x')), 100u);
        EXPECT_EQ(pool.pending(), 0u);
    });
}

TEST(Pool, BadSizesAreRefused) {
    EXPECT_THROW(Pool(25), Error);
    EXPECT_THROW(Pool(1, PoolOptions{.max_message_size = 8}), Error);
}

}  // namespace
}  // namespace shuttle
