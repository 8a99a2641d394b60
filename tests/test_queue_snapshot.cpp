// inspect_queue(): what a queue used by other processes holds, read from outside (the `shuttle
// inspect` command's source), checked field by field against what those processes did.
#include <array>
#include <cstring>

#include "counters_segment.hpp"
#include "queue_support.hpp"
#include "shuttle/queue_inspect.hpp"

namespace shuttle {
namespace {

/// Flags and facts children publish for the parent: an anonymous segment they inherit.
struct SharedFacts {
    Segment segment = Segment::create_anonymous(test::counters_info(4), test::counters_body_size,
                                                [](Segment&) {});
    std::atomic<uint64_t>& operator[](std::size_t index) const {
        return test::counters(segment)[index];
    }
};

std::vector<std::byte> bytes_of(const Item& item) {
    std::vector<std::byte> bytes(sizeof item);
    std::memcpy(bytes.data(), &item, sizeof item);
    return bytes;
}

// A JoinableQueue with redelivery, created and used by a child: three puts, a consumer killed
// holding the first item (journaled by recovery, its task settled), and a task the child holds.
TEST(QueueSnapshot, ShowsTasksLeasesAndLostItemsOfAQueueAnotherProcessUses) {
    NameGuard name(unique_name("snapshot"));
    SharedFacts facts;  // [0] ready, [1] the killed consumer's pid, [2] the lease's holder
    Process owner(
        [&] {
            auto queue =
                JoinableQueue<Item>::create(*name, 4, {.max_participants = 8, .redelivery = true});
            for (uint64_t i = 1; i <= 3; ++i) queue.put({i, i}).value();
            Process consumer([&] {
                detail::arm_kill_point("queue.get.claimed");
                (void)queue.get();
                return 99;
            });
            consumer.start();
            if (!consumer.join_for(20s)) return 1;
            if (!queue.recover()) return 2;
            auto task = queue.get_task();
            if (!task || task->item != Item{2, 2}) return 3;
            facts[1] = static_cast<uint64_t>(consumer.pid());
            facts[2] = task->id.holder;
            facts[0] = 1;
            ::raise(SIGSTOP);  // alive, holding its task, until the test kills it
            return 0;
        },
        ProcessOptions{.daemon = true});
    owner.start();
    ASSERT_TRUE(test::eventually([&] { return facts[0].load() == 1; }, 20s));

    const QueueSnapshot queue = inspect_queue(*name);
    EXPECT_EQ(queue.name, *name);
    EXPECT_EQ(queue.kind, ObjectKind::queue);
    EXPECT_EQ(queue.capacity, 4u);
    EXPECT_EQ(queue.element_size, sizeof(Item));
    EXPECT_EQ(queue.max_message_size, 0u);
    EXPECT_EQ(queue.max_participants, 8u);
    EXPECT_EQ(queue.puts, 3u);
    EXPECT_EQ(queue.gets, 2u);
    EXPECT_EQ(queue.size, 1u);
    EXPECT_FALSE(queue.shut_down);
    EXPECT_TRUE(queue.joinable);
    EXPECT_TRUE(queue.redelivery);
    // Ticket 0 was settled with its killed consumer; tickets 1 (leased) and 2 are unfinished.
    EXPECT_EQ(queue.settled_tasks, 1u);
    EXPECT_EQ(queue.unfinished_tasks, 2u);
    EXPECT_EQ(queue.redelivered, 0u);
    ASSERT_EQ(queue.leases.size(), 1u);
    EXPECT_EQ(queue.leases[0].holder, facts[2].load());
    EXPECT_EQ(queue.leases[0].ticket, 1u);
    EXPECT_EQ(queue.leases[0].state, LeasedTask::State::held);
    EXPECT_EQ(queue.waiting_getters, 0u);
    EXPECT_EQ(queue.waiting_putters, 0u);
    EXPECT_EQ(queue.lost_count, 1u);
    ASSERT_EQ(queue.lost_items.size(), 1u);
    EXPECT_EQ(queue.lost_items[0].ticket, 0u);
    EXPECT_EQ(queue.lost_items[0].operation, LostOperation::get);
    EXPECT_EQ(static_cast<uint64_t>(queue.lost_items[0].pid), facts[1].load());
    EXPECT_EQ(queue.lost_items[0].length, sizeof(Item));
    EXPECT_EQ(queue.lost_items[0].contents, bytes_of({1, 1}));
    EXPECT_EQ(queue.discarded_puts, 0u);
    EXPECT_TRUE(queue.stalls.empty());

    owner.kill();
    ASSERT_TRUE(test::join_or_fail(owner));
}

// A byte queue a child creates and waits on, while another child is frozen mid-put: a waiting
// getter and a stall. Then the frozen producer is killed and the queue shut down: the lost put is
// journaled and discarded, the getter sees the shutdown.
TEST(QueueSnapshot, ShowsWaitersAStallAndThenTheLostPutAndTheClose) {
    NameGuard name(unique_name("snapshot"));
    SharedFacts facts;  // [0] created
    Process getter([&] {
        auto queue = ByteQueue::create(*name, 2, 64, {.max_participants = 4});
        facts[0] = 1;
        std::array<std::byte, 64> buffer{};
        return queue.get(buffer).error() == errc::shut_down ? 0 : 1;
    });
    getter.start();
    ASSERT_TRUE(test::eventually([&] { return facts[0].load() == 1; }, 20s));
    Process producer(
        [&] {
            auto queue = ByteQueue::open(*name);
            detail::set_kill_point_hook([](const char*) { ::raise(SIGSTOP); });
            detail::arm_kill_point("queue.put.claimed");
            (void)queue.put("never published");
            return 99;
        },
        ProcessOptions{.daemon = true});
    producer.start();

    QueueSnapshot queue;
    ASSERT_TRUE(test::eventually([&] {
        queue = inspect_queue(*name);
        return queue.waiting_getters == 1 && queue.stalls.size() == 1 && queue.stalls[0].stopped;
    }));
    EXPECT_EQ(queue.kind, ObjectKind::byte_queue);
    EXPECT_EQ(queue.capacity, 2u);
    EXPECT_EQ(queue.element_size, 1u);
    EXPECT_EQ(queue.max_message_size, 64u);
    EXPECT_EQ(queue.max_participants, 4u);
    EXPECT_EQ(queue.puts, 1u);  // claimed, not published: counted as queued
    EXPECT_EQ(queue.gets, 0u);
    EXPECT_EQ(queue.size, 1u);
    EXPECT_FALSE(queue.shut_down);
    EXPECT_FALSE(queue.joinable);
    EXPECT_FALSE(queue.redelivery);
    EXPECT_EQ(queue.unfinished_tasks, 0u);
    EXPECT_TRUE(queue.leases.empty());
    EXPECT_EQ(queue.waiting_putters, 0u);
    EXPECT_EQ(queue.stalls[0].pid, producer.pid());
    EXPECT_EQ(queue.stalls[0].ticket, 0u);
    EXPECT_TRUE(queue.stalls[0].putting);
    EXPECT_EQ(queue.lost_count, 0u);

    producer.kill();
    ASSERT_TRUE(test::join_or_fail(producer));
    ByteQueue::open(*name).shutdown();
    ASSERT_TRUE(test::join_or_fail(getter));
    EXPECT_EQ(getter.exitcode(), 0);  // its get ended with errc::shut_down

    queue = inspect_queue(*name);
    EXPECT_TRUE(queue.shut_down);
    EXPECT_EQ(queue.puts, 1u);
    EXPECT_EQ(queue.gets, 1u);  // the lost put's slot, discarded
    EXPECT_EQ(queue.size, 0u);
    EXPECT_EQ(queue.waiting_getters, 0u);
    EXPECT_TRUE(queue.stalls.empty());
    EXPECT_EQ(queue.discarded_puts, 1u);
    EXPECT_EQ(queue.lost_count, 1u);
    ASSERT_EQ(queue.lost_items.size(), 1u);
    EXPECT_EQ(queue.lost_items[0].ticket, 0u);
    EXPECT_EQ(queue.lost_items[0].operation, LostOperation::put);
    EXPECT_EQ(queue.lost_items[0].pid, producer.pid());
    EXPECT_TRUE(queue.lost_items[0].contents.empty());
}

TEST(QueueSnapshot, RefusesWhatIsNoQueue) {
    const std::string missing = unique_name("snapshot-missing");
    try {
        (void)inspect_queue(missing);
        ADD_FAILURE() << "no error for a missing segment";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::not_found);
    }
    NameGuard name(unique_name("snapshot-counters"));
    auto counters = test::create_counters(*name);
    try {
        (void)inspect_queue(*name);
        ADD_FAILURE() << "no error for a segment that holds no queue";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::kind_mismatch);
    }
}

}  // namespace
}  // namespace shuttle
