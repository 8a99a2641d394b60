// Timeouts at the extremes (issue 13 §9): every timed call of the queues, the pipe and Process
// converts its timeout with the one saturating helper, deadline_after() (shuttle/wait.hpp). A
// timeout too long to represent (duration::max(), milliseconds(INT64_MAX), infinity) waits
// without limit instead of overflowing into "timeout at once"; duration::min(), -infinity and
// NaN try once; floating-point durations are accepted.
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <tuple>

#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/wait.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using std::chrono::duration;

constexpr double infinity = std::numeric_limits<double>::infinity();

const auto forever_timeouts =
    std::make_tuple(std::chrono::seconds::max(), std::chrono::hours::max(),
                    std::chrono::milliseconds(INT64_MAX), duration<double>(infinity));
const auto past_timeouts =
    std::make_tuple(std::chrono::hours::min(), std::chrono::milliseconds(INT64_MIN), 0s,
                    duration<double>(-infinity), duration<double>(std::nan("")));

/// Calls `check(timeout, forever)` with every extreme timeout: forever ones first, then past.
template <class Check>
void for_each_extreme_timeout(Check check) {
    std::apply([&](auto... timeout) { (check(timeout, true), ...); }, forever_timeouts);
    std::apply([&](auto... timeout) { (check(timeout, false), ...); }, past_timeouts);
}

bool asleep_in_a_system_call(pid_t thread) {
    return test::sleeping_in_system_call(thread, SYS_futex) ||
           test::sleeping_in_system_call(thread, SYS_poll) ||
           test::sleeping_in_system_call(thread, SYS_ppoll);
}

/// One timed call: `call()` (which passes `timeout`) returns true on success, and `release()`
/// makes a waiting call succeed. With a forever timeout the call must wait (its thread is seen
/// asleep in a system call, not returned) until released, then succeed; with a past one it must
/// fail at once.
template <class Timeout, class Call, class Release>
void check_timed_call(Timeout timeout, bool forever, Call call, Release release) {
    SCOPED_TRACE(::testing::Message() << "timeout count " << timeout.count() << " of period "
                                      << Timeout::period::num << "/" << Timeout::period::den);
    if (!forever) {
        const auto start = steady_clock::now();
        EXPECT_FALSE(call());
        EXPECT_LT(steady_clock::now() - start, 2s) << "a past timeout tries once";
        release();
        return;
    }
    std::atomic<pid_t> thread{0};
    std::atomic<bool> returned{false};
    bool succeeded = false;
    std::thread waiter([&] {
        thread = test::current_thread_id();
        succeeded = call();
        returned = true;
    });
    const bool waited = test::eventually(
        [&] { return returned || (thread != 0 && asleep_in_a_system_call(thread)); });
    EXPECT_TRUE(waited && !returned) << "a forever timeout returned at once";
    release();
    waiter.join();
    EXPECT_TRUE(succeeded);
}

TEST(Timeouts, DeadlineAfterSaturatesAndAcceptsAnyDuration) {
    const auto also_forever = std::make_tuple(std::chrono::nanoseconds::max(),
                                              duration<double>(1e12), duration<float>(1e30f));
    std::apply(
        [](auto... timeout) { EXPECT_TRUE(((deadline_after(timeout) == no_deadline) && ...)); },
        also_forever);
    const auto lowest = deadline_after(std::chrono::nanoseconds::min());
    const auto just_past = deadline_after(-1ns);
    EXPECT_LE(lowest, steady_clock::now());
    EXPECT_LE(just_past, steady_clock::now());
    for_each_extreme_timeout([](auto timeout, bool forever) {
        const auto before = steady_clock::now();
        const auto deadline = deadline_after(timeout);
        if (forever) {
            EXPECT_EQ(deadline, no_deadline) << timeout.count();
        } else {
            EXPECT_GE(deadline, before);
            EXPECT_LE(deadline, steady_clock::now()) << timeout.count();
        }
    });
    const auto before = steady_clock::now();
    const auto half = deadline_after(duration<double>(0.5));
    EXPECT_GE(half - before, 500ms);
    EXPECT_LT(half - before, 600ms);
    EXPECT_GT(deadline_after(duration<double, std::nano>(0.001)), before)
        << "a positive timeout, however short, rounds up";
    EXPECT_NE(deadline_after(std::chrono::hours(24 * 365 * 99)), no_deadline);
}

TEST(Timeouts, QueueGetForAndPutFor) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        auto queue = Queue<int>::anonymous(1);
        check_timed_call(
            timeout, forever,
            [&] {
                auto item = queue.get_for(timeout);
                return item && *item == 7;
            },
            [&] { ASSERT_TRUE(queue.put(7)); });
        if (queue.empty()) {
            ASSERT_TRUE(queue.put(9));  // full: put_for has to wait
        }
        check_timed_call(
            timeout, forever, [&] { return queue.put_for(8, timeout).ok(); },
            [&] { ASSERT_TRUE(queue.get()); });
    });
}

TEST(Timeouts, JoinableQueueJoinForAndGetTaskFor) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        auto queue = JoinableQueue<int>::anonymous(2, {.redelivery = true});
        ASSERT_TRUE(queue.put(1));
        check_timed_call(
            timeout, forever, [&] { return queue.join_for(timeout).ok(); },
            [&] {
                ASSERT_TRUE(queue.get());
                ASSERT_TRUE(queue.task_done());
            });
        check_timed_call(
            timeout, forever,
            [&] {
                // task_done(task) comes from the thread that got the task.
                auto got = queue.get_task_for(timeout);
                return got && got->item == 2 && queue.task_done(*got).ok();
            },
            [&] { ASSERT_TRUE(queue.put(2)); });
    });
}

TEST(Timeouts, ByteQueueTimedCalls) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        auto queue = JoinableByteQueue::anonymous(1, 16, {.redelivery = true});
        std::array<std::byte, 16> buffer{};
        auto fill = [&] {
            if (queue.empty()) {
                ASSERT_TRUE(queue.put("full"));
            }
        };
        check_timed_call(
            timeout, forever, [&] { return queue.get_for(buffer, timeout).has_value(); },
            [&] { ASSERT_TRUE(queue.put("a")); });
        fill();
        check_timed_call(
            timeout, forever, [&] { return queue.put_for("bb", timeout).ok(); },
            [&] { ASSERT_TRUE(queue.get(buffer)); });
        fill();
        check_timed_call(
            timeout, forever,
            [&] { return queue.put_for(std::as_bytes(std::span("c", 1)), timeout).ok(); },
            [&] { ASSERT_TRUE(queue.get(buffer)); });
        while (queue.try_get(buffer)) {
        }
        check_timed_call(
            timeout, forever,
            [&] {
                auto got = queue.get_task_for(buffer, timeout);
                return got && queue.task_done(*got).ok();
            },
            [&] { ASSERT_TRUE(queue.put("d")); });
    });
}

TEST(Timeouts, PipeReceivesAndPolls) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        auto [here, there] = Pipe();
        auto drain = [&] {
            while (here.try_recv()) {
            }
        };
        check_timed_call(
            timeout, forever, [&] { return here.recv_for(timeout).has_value(); },
            [&] { ASSERT_TRUE(there.send("1")); });
        drain();
        check_timed_call(
            timeout, forever, [&] { return here.recv_bytes_for(timeout).has_value(); },
            [&] { ASSERT_TRUE(there.send("2")); });
        drain();
        std::array<std::byte, 8> buffer{};
        check_timed_call(
            timeout, forever, [&] { return here.recv_bytes_into_for(buffer, timeout).has_value(); },
            [&] { ASSERT_TRUE(there.send("3")); });
        drain();
        check_timed_call(
            timeout, forever, [&] { return here.poll_for(timeout); },
            [&] { ASSERT_TRUE(there.send("4")); });
        drain();
        Connection* receivers[] = {&here};
        check_timed_call(
            timeout, forever, [&] { return wait_for(receivers, timeout).size() == 1; },
            [&] { ASSERT_TRUE(there.send("5")); });
    });
}

TEST(Timeouts, PipeSends) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        auto [here, there] = Pipe(true, {.capacity = 4096});
        const std::string chunk(512, 'x');
        auto fill = [&] {
            while (there.try_send(chunk)) {
            }
        };
        auto drain = [&] {
            while (here.try_recv()) {
            }
        };
        fill();
        check_timed_call(
            timeout, forever, [&] { return there.send_for(chunk, timeout).ok(); }, drain);
        fill();
        check_timed_call(
            timeout, forever,
            [&] { return there.send_bytes_for(std::as_bytes(std::span(chunk)), timeout).ok(); },
            drain);
    });
}

TEST(Timeouts, ProcessJoinFor) {
    for_each_extreme_timeout([](auto timeout, bool forever) {
        int go[2];
        ASSERT_EQ(::pipe(go), 0);
        Process child(
            [&] {
                char byte = 0;
                return ::read(go[0], &byte, 1) == 1 ? 0 : 1;
            },
            {.daemon = true});
        child.start();
        check_timed_call(
            timeout, forever, [&] { return child.join_for(timeout); },
            [&] { ASSERT_EQ(::write(go[1], "g", 1), 1); });
        ASSERT_TRUE(test::join_and_expect_exit(child, 0));
        ::close(go[0]);
        ::close(go[1]);
    });
}

TEST(Timeouts, FloatingPointTimeoutsWaitThatLong) {
    auto queue = Queue<int>::anonymous(1);
    const auto start = steady_clock::now();
    EXPECT_EQ(queue.get_for(duration<double>(0.02)).error(), errc::timeout);
    EXPECT_GE(steady_clock::now() - start, 20ms);
    auto [here, there] = Pipe();
    const auto pipe_start = steady_clock::now();
    EXPECT_EQ(here.recv_for(duration<float, std::milli>(20.0f)).error(), errc::timeout);
    EXPECT_GE(steady_clock::now() - pipe_start, 20ms);
}

}  // namespace
}  // namespace shuttle
