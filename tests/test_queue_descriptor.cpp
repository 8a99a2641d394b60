// Queue descriptors for event loops (docs/event_loop.md): readiness made by producers and
// consumers in other (fork()ed) processes, spurious readiness, shutdown, killed waiters and
// killed producers, many queues in one epoll set.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "shuttle/detail/os.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "support.hpp"

using namespace shuttle;
using namespace std::chrono_literals;

namespace {

/// Whether `fd` polls readable within `timeout` (0: right now).
bool readable(int fd, std::chrono::milliseconds timeout = 0ms) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, static_cast<int>(timeout.count())) == 1 && (entry.revents & POLLIN);
}

constexpr auto patience = 5000ms;  // a bound that only a broken wake-up reaches

/// A child process running `body` (exit code: its result); joined by the caller.
template <class F>
Process spawn(F body) {
    Process child(std::move(body), ProcessOptions{.daemon = true});
    child.start();
    return child;
}

// Every handle kind's get side: quiet when empty, readable once another process puts, quiet
// again after try_get drained it.
template <class Q, class Put, class Get>
void expect_get_readiness(Q& queue, Put put, Get try_get) {
    const int fd = queue.get_descriptor();
    EXPECT_EQ(queue.get_descriptor(), fd);  // one per handle
    EXPECT_FALSE(readable(fd));
    Process producer = spawn([&] { return put(queue) ? 0 : 1; });
    EXPECT_TRUE(readable(fd, patience));
    EXPECT_TRUE(test::join_and_expect_exit(producer, 0));
    EXPECT_TRUE(try_get(queue));
    EXPECT_FALSE(try_get(queue));  // empty: re-arms
    EXPECT_FALSE(readable(fd));
}

}  // namespace

TEST(QueueDescriptor, GetSideReadableForEveryHandleKind) {
    auto typed = Queue<uint64_t>::anonymous(4);
    expect_get_readiness(
        typed, [](auto& q) { return bool(q.try_put(7)); },
        [](auto& q) { return bool(q.try_get()); });
    auto bytes = ByteQueue::anonymous(4, 32);
    expect_get_readiness(
        bytes, [](auto& q) { return bool(q.try_put("hi")); },
        [](auto& q) {
            std::byte buffer[32];
            return bool(q.try_get(buffer));
        });
    auto joinable = JoinableQueue<uint64_t>::anonymous(4);
    expect_get_readiness(
        joinable, [](auto& q) { return bool(q.try_put(7)); },
        [](auto& q) { return bool(q.try_get()); });
    auto leased = JoinableQueue<uint64_t>::anonymous(4, {.redelivery = true});
    expect_get_readiness(
        leased, [](auto& q) { return bool(q.try_put(7)); },
        [](auto& q) {
            auto task = q.try_get_task();
            return task && q.task_done(*task).ok();
        });
}

TEST(QueueDescriptor, PutSideReadableWhenAnotherProcessMakesRoom) {
    auto queue = Queue<uint64_t>::anonymous(1);
    ASSERT_TRUE(queue.try_put(1));
    const int fd = queue.put_descriptor();
    EXPECT_FALSE(readable(fd));
    EXPECT_EQ(queue.try_put(2).error(), errc::full);
    Process consumer = spawn([&] { return queue.try_get() ? 0 : 1; });
    EXPECT_TRUE(readable(fd, patience));
    EXPECT_TRUE(test::join_and_expect_exit(consumer, 0));
    EXPECT_TRUE(queue.try_put(2));
    EXPECT_EQ(queue.try_put(3).error(), errc::full);  // re-arms
    EXPECT_FALSE(readable(fd));
}

TEST(QueueDescriptor, ReadableOnceAnItemIsAlreadyThere) {
    auto queue = Queue<uint64_t>::anonymous(4);
    ASSERT_TRUE(queue.try_put(1));
    EXPECT_TRUE(readable(queue.get_descriptor()));
    auto room = Queue<uint64_t>::anonymous(4);
    EXPECT_TRUE(readable(room.put_descriptor()));
}

TEST(QueueDescriptor, ShutdownInAnotherProcessMakesBothSidesReadable) {
    auto queue = Queue<uint64_t>::anonymous(1);
    ASSERT_TRUE(queue.try_put(1));
    auto getter = Queue<uint64_t>::anonymous(1);
    const int put_fd = queue.put_descriptor();
    const int get_fd = getter.get_descriptor();
    EXPECT_FALSE(readable(put_fd));
    EXPECT_FALSE(readable(get_fd));
    Process closer = spawn([&] {
        queue.shutdown();
        getter.shutdown();
        return 0;
    });
    EXPECT_TRUE(readable(put_fd, patience));
    EXPECT_TRUE(readable(get_fd, patience));
    EXPECT_TRUE(test::join_and_expect_exit(closer, 0));
    EXPECT_EQ(queue.try_put(2).error(), errc::shut_down);
    EXPECT_EQ(getter.try_get().error(), errc::shut_down);
}

// Readiness is a hint: another consumer may take the item first. try_get then says empty, and
// the descriptor goes quiet again (no busy loop).
TEST(QueueDescriptor, SpuriousReadinessEndsInEmptyAndRearms) {
    auto queue = Queue<uint64_t>::anonymous(4);
    const int fd = queue.get_descriptor();
    ASSERT_TRUE(queue.try_put(5));
    ASSERT_TRUE(readable(fd, patience));
    Process thief = spawn([&] {
        auto got = queue.try_get();
        return got && *got == 5u ? 0 : 1;
    });
    EXPECT_TRUE(test::join_and_expect_exit(thief, 0));
    EXPECT_TRUE(readable(fd));  // still: nothing re-armed it
    EXPECT_EQ(queue.try_get().error(), errc::empty);
    EXPECT_FALSE(readable(fd));
    ASSERT_TRUE(queue.try_put(6));
    EXPECT_TRUE(readable(fd));
}

// A waiter killed while armed leaves its bit set: the next put rings a socket that is gone
// (no block, no error), and its slot goes to the next descriptor that needs one.
TEST(QueueDescriptor, WaiterKilledWhileArmedBlocksNoPutter) {
    auto queue = Queue<uint64_t>::anonymous(64);
    int ready[2];  // each waiter says "armed" with a byte (a registry-free channel)
    ASSERT_EQ(::pipe(ready), 0);
    std::vector<Process> waiters;
    for (int i = 0; i < 32; ++i) {  // every doorbell slot of the get side
        waiters.push_back(spawn([&] {
            const int fd = queue.get_descriptor();
            const char byte = 1;
            if (::write(ready[1], &byte, 1) != 1) return 1;
            pollfd entry{fd, POLLIN, 0};
            (void)::poll(&entry, 1, -1);
            return 0;
        }));
        ASSERT_TRUE(readable(ready[0], patience));
        char byte;
        ASSERT_EQ(::read(ready[0], &byte, 1), 1);
    }
    ::close(ready[0]);
    ::close(ready[1]);
    EXPECT_EQ(test::error_of([&] { (void)queue.get_descriptor(); }), errc::registry_full);
    for (auto& waiter : waiters) waiter.kill();
    for (auto& waiter : waiters) ASSERT_TRUE(test::join_or_fail(waiter));
    for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(queue.try_put(i));
    const int fd = queue.get_descriptor();  // a dead holder's slot is taken over
    EXPECT_TRUE(readable(fd));
}

// A producer killed after claiming a slot (before or after publishing the item) while the
// consumer sleeps in epoll_wait: the consumer is woken, and it gets the next item another
// producer puts (recovery repairs the dead producer's slot meanwhile).
TEST(QueueDescriptor, ProducerKilledMidPutWakesTheEpollConsumer) {
    for (const char* point : {"queue.put.claimed", "queue.put.published"}) {
        SCOPED_TRACE(point);
        auto queue = Queue<uint64_t>::anonymous(8);
        const int fd = queue.get_descriptor();
        const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
        ASSERT_GE(epoll, 0);
        epoll_event event{};
        event.events = EPOLLIN;
        ASSERT_EQ(::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event), 0);
        Process victim = spawn([&] {
            detail::arm_kill_point(point);
            (void)queue.try_put(1);
            return 0;
        });
        ASSERT_EQ(::epoll_wait(epoll, &event, 1, static_cast<int>(patience.count())), 1);
        ASSERT_TRUE(test::join_or_fail(victim));
        Process survivor = spawn([&] { return queue.try_put(2) ? 0 : 1; });
        std::vector<uint64_t> got;
        const auto deadline = std::chrono::steady_clock::now() + patience;
        while (std::find(got.begin(), got.end(), 2u) == got.end() &&
               std::chrono::steady_clock::now() < deadline) {
            if (::epoll_wait(epoll, &event, 1, 100) != 1) continue;
            while (auto item = queue.try_get()) got.push_back(*item);
        }
        EXPECT_NE(std::find(got.begin(), got.end(), 2u), got.end());
        EXPECT_TRUE(test::join_and_expect_exit(survivor, 0));
        ::close(epoll);
    }
}

// One epoll set over many queues, filled in another process: every item arrives, and a loop
// with nothing left to do sleeps (epoll_wait times out).
TEST(QueueDescriptor, ManyQueuesInOneEpollLoop) {
    constexpr int count = 24;
    std::vector<Queue<uint64_t>> queues;
    for (int i = 0; i < count; ++i) queues.push_back(Queue<uint64_t>::anonymous(4));
    const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(epoll, 0);
    for (int i = 0; i < count; ++i) {
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u32 = static_cast<uint32_t>(i);
        ASSERT_EQ(::epoll_ctl(epoll, EPOLL_CTL_ADD, queues[i].get_descriptor(), &event), 0);
    }
    Process producer = spawn([&] {
        for (int round = 0; round < 3; ++round) {
            for (int i = count - 1; i >= 0; --i) {
                if (!queues[i].put_for(static_cast<uint64_t>(i * 10 + round), patience)) return 1;
            }
        }
        return 0;
    });
    std::vector<int> seen(count, 0);
    int total = 0;
    const auto deadline = std::chrono::steady_clock::now() + patience;
    epoll_event events[8];
    while (total < 3 * count && std::chrono::steady_clock::now() < deadline) {
        const int ready = ::epoll_wait(epoll, events, 8, 100);
        for (int e = 0; e < ready; ++e) {
            auto& queue = queues[events[e].data.u32];
            while (auto item = queue.try_get()) {
                EXPECT_EQ(*item / 10, events[e].data.u32);
                ++seen[events[e].data.u32];
                ++total;
            }
        }
    }
    EXPECT_EQ(total, 3 * count);
    EXPECT_TRUE(test::join_and_expect_exit(producer, 0));
    epoll_event idle[8];
    EXPECT_EQ(::epoll_wait(epoll, idle, 8, 20), 0);  // all drained: every descriptor quiet
    ::close(epoll);
}

// Edge-triggered use: the empty try_get that ends a drain re-arms, so each later put is an edge.
TEST(QueueDescriptor, EdgeTriggeredDrainsSeeEveryPut) {
    auto queue = Queue<uint64_t>::anonymous(4);
    const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    ASSERT_GE(epoll, 0);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLET;
    ASSERT_EQ(::epoll_ctl(epoll, EPOLL_CTL_ADD, queue.get_descriptor(), &event), 0);
    Process producer = spawn([&] {
        for (uint64_t i = 0; i < 50; ++i) {
            if (!queue.put_for(i, patience)) return 1;
        }
        return 0;
    });
    uint64_t next = 0;
    const auto deadline = std::chrono::steady_clock::now() + patience;
    while (next < 50 && std::chrono::steady_clock::now() < deadline) {
        if (::epoll_wait(epoll, &event, 1, 1000) != 1) continue;
        while (auto item = queue.try_get()) EXPECT_EQ(*item, next++);
    }
    EXPECT_EQ(next, 50u);
    EXPECT_TRUE(test::join_and_expect_exit(producer, 0));
    ::close(epoll);
}
