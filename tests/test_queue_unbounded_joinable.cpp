// UnboundedJoinableQueue<T> and UnboundedJoinableByteQueue (issue 14 §2): task_done()/join()
// across chunks and processes, with the bounded JoinableQueue's crash rules (docs/recovery.md):
// a consumer SIGKILLed holding tasks has them settled, so join() returns.
#include "queue_support.hpp"
#include "shuttle/inspect.hpp"
#include "shuttle/sync.hpp"
#include "shuttle/unbounded_queue.hpp"

namespace shuttle {
namespace {

bool chunk_exists(const std::string& name, uint64_t index) {
    return inspect_segment(name + "." + std::to_string(index)).has_value();
}

Process spawn_child(std::function<int()> body) {
    Process process(std::move(body), ProcessOptions{.daemon = true});
    process.start();
    return process;
}

// join() waits for every task put in every chunk, done by consumers in other processes;
// a chunk's name goes once it is drained and its tasks are done.
TEST(UnboundedJoinableQueue, JoinWaitsForEveryTaskAcrossChunksAndProcesses) {
    NameGuard name(unique_name("unbounded-join"));
    auto queue = UnboundedJoinableQueue<uint64_t>::create(*name, {.chunk_capacity = 8});
    const uint64_t count = 200;
    for (uint64_t i = 0; i < count; ++i) ASSERT_TRUE(queue.put(i));
    EXPECT_GT(queue.chunks(), 3u);
    EXPECT_EQ(queue.unfinished_tasks(), count);
    EXPECT_EQ(queue.join_for(0ms), errc::timeout);
    queue.shutdown();  // consumers drain, then stop
    std::vector<Process> consumers;
    for (int c = 0; c < 2; ++c) {
        consumers.push_back(spawn_child([&] {
            auto q = UnboundedJoinableQueue<uint64_t>::open(*name);
            while (auto item = q.get()) {
                if (*item >= count) return 1;
                if (!q.task_done()) return 2;
            }
            return 0;
        }));
    }
    EXPECT_EQ(queue.join_for(20s), errc::ok);
    EXPECT_EQ(queue.unfinished_tasks(), 0u);
    for (auto& consumer : consumers) ASSERT_TRUE(test::join_and_expect_exit(consumer, 0));
    EXPECT_FALSE(chunk_exists(*name, 0));                    // drained and finished: unlinked
    EXPECT_EQ(queue.task_done(), errc::task_done_overflow);  // nothing is unfinished
    EXPECT_EQ(queue.join(), errc::ok);
    UnboundedJoinableQueue<uint64_t>::remove(*name);
}

// A consumer killed while it holds tasks from two chunks: join() waits while it lives, and
// returns once it is killed (its tasks settled, as the bounded JoinableQueue's).
TEST(UnboundedJoinableQueue, SigkilledConsumerHoldingTasksIsSettledAndJoinReturns) {
    NameGuard name(unique_name("unbounded-join-kill"));
    auto queue = UnboundedJoinableQueue<uint64_t>::create(*name, {.chunk_capacity = 8});
    auto holding = Event::anonymous();
    const uint64_t count = 40, held = 12;  // the first 12 span chunks 0 and 1
    for (uint64_t i = 0; i < count; ++i) ASSERT_TRUE(queue.put(i));
    Process consumer = spawn_child([&] {
        auto q = UnboundedJoinableQueue<uint64_t>::open(*name);
        for (uint64_t i = 0; i < held; ++i) {
            auto item = q.get_for(10s);
            if (!item || *item != i) return 1;
        }
        holding.set();
        (void)Event::anonymous().wait_for(60s);  // holds them until killed
        return 0;
    });
    ASSERT_TRUE(holding.wait_for(20s));
    for (uint64_t i = held; i < count; ++i) {
        auto item = queue.get_for(10s);
        ASSERT_TRUE(item);
        ASSERT_EQ(*item, i);
        ASSERT_TRUE(queue.task_done());
    }
    EXPECT_EQ(queue.unfinished_tasks(), held);
    EXPECT_EQ(queue.join_for(50ms), errc::timeout);  // the live consumer holds them
    consumer.kill();
    ASSERT_TRUE(test::join_or_fail(consumer));
    EXPECT_EQ(queue.join_for(20s), errc::ok);
    EXPECT_EQ(queue.unfinished_tasks(), 0u);
    // The queue goes on: new tasks are counted and joined as before.
    ASSERT_TRUE(queue.put(7));
    EXPECT_EQ(queue.join_for(0ms), errc::timeout);
    ASSERT_EQ(*queue.get(), 7u);
    ASSERT_TRUE(queue.task_done());
    EXPECT_EQ(queue.join_for(0ms), errc::ok);
    UnboundedJoinableQueue<uint64_t>::remove(*name);
}

TEST(UnboundedJoinableQueue, AttachChecksTheJoinableForm) {
    NameGuard name(unique_name("unbounded-join-form"));
    auto queue = UnboundedJoinableQueue<uint64_t>::create(*name);
    EXPECT_EQ(test::error_of([&] { (void)UnboundedQueue<uint64_t>::open(*name); }),
              errc::kind_mismatch);
    NameGuard plain(unique_name("unbounded-plain-form"));
    auto plain_queue = UnboundedQueue<uint64_t>::create(*plain);
    EXPECT_EQ(test::error_of([&] { (void)UnboundedJoinableQueue<uint64_t>::open(*plain); }),
              errc::kind_mismatch);
    EXPECT_EQ(test::error_of(
                  [&] { (void)UnboundedJoinableQueue<uint64_t>::anonymous({.redelivery = true}); }),
              errc::invalid_argument);
    UnboundedJoinableQueue<uint64_t>::remove(*name);
    UnboundedQueue<uint64_t>::remove(*plain);
}

TEST(UnboundedJoinableByteQueue, TasksOfMessagesJoinAcrossProcesses) {
    auto queue = UnboundedJoinableByteQueue::anonymous(32, {.chunk_capacity = 4});
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(queue.put("message " + std::to_string(i)));
    Process consumer = spawn_child([&] {
        std::array<std::byte, 32> buffer;
        for (int i = 0; i < 20; ++i) {
            auto length = queue.get_for(buffer, 10s);
            if (!length) return 1;
            const std::string text(reinterpret_cast<const char*>(buffer.data()), *length);
            if (text != "message " + std::to_string(i)) return 2;
            if (!queue.task_done()) return 3;
        }
        return 0;
    });
    EXPECT_EQ(queue.join_for(20s), errc::ok);
    ASSERT_TRUE(test::join_and_expect_exit(consumer, 0));
    EXPECT_EQ(queue.unfinished_tasks(), 0u);
}

}  // namespace
}  // namespace shuttle
