// UnboundedQueue<T> and UnboundedByteQueue (issue 14 §2): put never blocks, memory grows by
// chunks and shrinks back as they drain, shutdown/close as the bounded queues', no_space (not
// SIGBUS) when a chunk cannot be had, and killed producers/consumers across real processes.
#include <sys/resource.h>

#include "queue_support.hpp"
#include "shuttle/inspect.hpp"
#include "shuttle/unbounded_queue.hpp"

namespace shuttle {
namespace {

bool chunk_exists(const std::string& name, uint64_t index) {
    return inspect_segment(name + "." + std::to_string(index)).has_value();
}

/// Runs `body()` in a forked child; its exit code.
template <class F>
Process spawn_child(F body) {
    Process process(std::move(body), ProcessOptions{.daemon = true});
    process.start();
    return process;
}

TEST(UnboundedQueue, PutNeverBlocksMemoryGrowsByChunksAndShrinksBack) {
    NameGuard name(unique_name("unbounded"));
    auto queue = UnboundedQueue<Item>::create(*name, {.chunk_capacity = 8});
    EXPECT_EQ(queue.chunk_capacity(), 8u);
    EXPECT_EQ(queue.chunks(), 1u);
    EXPECT_EQ(queue.try_get().error(), errc::empty);
    // Chunks of 8, then (consumers a whole chunk behind) 8, 16, 32, 64 for 83 items.
    const uint64_t count = 8 + 8 + 16 + 32 + 19;
    for (uint64_t i = 0; i < count; ++i) ASSERT_TRUE(queue.put({0, i})) << i;
    EXPECT_EQ(queue.chunks(), 5u);
    EXPECT_EQ(queue.size(), count);
    for (uint64_t index = 0; index < 5; ++index) EXPECT_TRUE(chunk_exists(*name, index));
    for (uint64_t i = 0; i < count; ++i) {
        auto item = queue.try_get();
        ASSERT_TRUE(item) << i;
        ASSERT_EQ(item->sequence, i);
    }
    EXPECT_EQ(queue.try_get().error(), errc::empty);
    EXPECT_EQ(queue.chunks(), 1u);  // shrunk back to the chunk producers fill
    for (uint64_t index = 0; index < 4; ++index) EXPECT_FALSE(chunk_exists(*name, index));
    EXPECT_TRUE(chunk_exists(*name, 4));
    // Consumers caught up: the next chunk is the base size again.
    for (uint64_t i = 0; i < 64 + 1; ++i) ASSERT_TRUE(queue.put({2, i}));
    EXPECT_EQ(queue.chunks(), 2u);
    EXPECT_EQ(queue.size(), 64u + 1);
    for (uint64_t i = 0; i < 64 + 1; ++i) ASSERT_EQ(queue.get()->sequence, i);
    // The last chunk is used as a ring while consumers keep up: no new chunk.
    for (uint64_t i = 0; i < 100; ++i) {
        ASSERT_TRUE(queue.put({1, i}));
        ASSERT_EQ(queue.get()->sequence, i);
    }
    EXPECT_EQ(queue.chunks(), 1u);
    EXPECT_TRUE(UnboundedQueue<Item>::remove(*name));
    EXPECT_FALSE(chunk_exists(*name, 5));
}

TEST(UnboundedQueue, ItemsPutWithoutAGetThenDrainedInAnotherProcess) {
    NameGuard name(unique_name("unbounded-million"));
    // 1e6 and more: bench/unbounded (here enough for a few hundred chunks, fast under ASan).
    const uint64_t count = sanitized() ? 50'000 : 250'000;
    auto queue = UnboundedQueue<uint64_t>::create(*name);
    Process producer = spawn_child([&] {
        auto q = UnboundedQueue<uint64_t>::open(*name);
        for (uint64_t i = 0; i < count; ++i) {
            if (!q.put(i)) return 1;
        }
        return 0;
    });
    ASSERT_TRUE(test::join_and_expect_exit(producer, 0, 60000ms));
    EXPECT_EQ(queue.size(), count);
    EXPECT_GT(queue.chunks(), 2u);                // grown by chunks ...
    EXPECT_LT(queue.chunks(), count / 1024 / 4);  // ... that doubled behind the backlog
    for (uint64_t i = 0; i < count; ++i) {
        auto item = queue.try_get();
        ASSERT_TRUE(item) << i;
        ASSERT_EQ(*item, i);
    }
    EXPECT_EQ(queue.try_get().error(), errc::empty);
    EXPECT_EQ(queue.chunks(), 1u);
    UnboundedQueue<uint64_t>::remove(*name);
}

// 2 producer and 2 consumer processes over chunks of 16: every item exactly once, each
// producer's items in order, across many chunk changes; shutdown() ends the consumers.
TEST(UnboundedQueue, ProducersAndConsumersInProcessesExactlyOnceInOrder) {
    NameGuard name(unique_name("unbounded-mpmc"));
    auto queue = UnboundedQueue<Item>::create(*name, {.chunk_capacity = 16});
    constexpr int producers = 2, consumers = 2;
    const uint64_t per_producer = sanitized() ? 2'000 : 20'000;
    Segment shared = Segment::create_anonymous(
        test::counters_info(1),
        [&](const SegmentInfo&) { return std::optional<uint64_t>(producers * per_producer); }, {});
    auto* receipts = reinterpret_cast<std::atomic<uint8_t>*>(shared.body());
    std::vector<Process> children;
    for (int c = 0; c < consumers; ++c) {
        children.push_back(spawn_child([&] {
            auto q = UnboundedQueue<Item>::open(*name);
            std::vector<int64_t> last(producers, -1);
            result<Item> item = errc::empty;
            while ((item = q.get())) {
                if (item->producer >= producers || item->sequence >= per_producer) return 1;
                if (static_cast<int64_t>(item->sequence) <= last[item->producer]) return 2;
                last[item->producer] = static_cast<int64_t>(item->sequence);
                receipts[item->producer * per_producer + item->sequence].fetch_add(1);
            }
            return item.error() == errc::shut_down ? 0 : 3;
        }));
    }
    std::vector<Process> producer_processes;
    for (int p = 0; p < producers; ++p) {
        producer_processes.push_back(spawn_child([&, p] {
            auto q = UnboundedQueue<Item>::open(*name);
            for (uint64_t i = 0; i < per_producer; ++i) {
                if (!q.put({static_cast<uint64_t>(p), i})) return 1;
            }
            q.close();  // this producer is done; the other goes on
            return 0;
        }));
    }
    for (auto& producer : producer_processes) {
        ASSERT_TRUE(test::join_and_expect_exit(producer, 0, 60000ms));
    }
    queue.shutdown();
    for (auto& consumer : children) ASSERT_TRUE(test::join_and_expect_exit(consumer, 0, 60000ms));
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < producers * per_producer; ++i) wrong += receipts[i].load() != 1;
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(queue.get().error(), errc::shut_down);
    UnboundedQueue<Item>::remove(*name);
}

TEST(UnboundedQueue, ShutdownWakesBlockedGettersInOtherProcessesAfterTheDrain) {
    auto queue = UnboundedQueue<Item>::anonymous({.chunk_capacity = 4});
    for (uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(queue.put({0, i}));  // two chunks
    Segment shared =
        Segment::create_anonymous(test::counters_info(4), test::counters_body_size, {});
    auto* got = test::counters(shared);
    std::vector<Process> getters;
    for (int g = 0; g < 2; ++g) {
        getters.push_back(spawn_child([&] {
            result<Item> item = errc::empty;
            while ((item = queue.get())) got[0].fetch_add(1);
            return item.error() == errc::shut_down ? 0 : 1;
        }));
    }
    ASSERT_TRUE(test::eventually([&] { return got[0].load() == 6; }));
    queue.shutdown();
    EXPECT_TRUE(queue.is_shutdown());
    EXPECT_EQ(queue.put({0, 99}), errc::shut_down);
    EXPECT_THROW(queue.put_nowait({0, 99}), ShutDown);
    for (auto& getter : getters) ASSERT_TRUE(test::join_and_expect_exit(getter, 0, 5000ms));
    EXPECT_EQ(got[0].load(), 6u);
}

TEST(UnboundedQueue, ImmediateShutdownDropsWhatIsQueuedInEveryChunk) {
    auto queue = UnboundedQueue<Item>::anonymous({.chunk_capacity = 4});
    for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(queue.put({0, i}));
    Process stopper = spawn_child([&] { return queue.shutdown(true) == 10 ? 0 : 1; });
    ASSERT_TRUE(test::join_and_expect_exit(stopper));
    EXPECT_EQ(queue.get().error(), errc::shut_down);
    EXPECT_EQ(queue.size(), 0u);
}

TEST(UnboundedQueue, CloseEndsOnlyThisHandle) {
    NameGuard name(unique_name("unbounded-close"));
    auto queue = UnboundedQueue<Item>::create(*name, {.chunk_capacity = 4});
    auto other = UnboundedQueue<Item>::open(*name);
    ASSERT_TRUE(queue.put({0, 0}));
    queue.close();
    queue.close();
    EXPECT_TRUE(queue.closed());
    EXPECT_EQ(queue.put({0, 1}), errc::closed);
    EXPECT_EQ(queue.get().error(), errc::closed);
    EXPECT_THROW(queue.get_nowait(), Closed);
    EXPECT_FALSE(other.closed());
    EXPECT_FALSE(other.is_shutdown());
    for (uint64_t i = 1; i < 10; ++i) ASSERT_TRUE(other.put({0, i}));
    for (uint64_t i = 0; i < 10; ++i) ASSERT_EQ(other.get()->sequence, i);
    // A blocked get of a handle wakes with closed when that handle is closed.
    errc outcome = errc::ok;
    std::thread waiter([&] { outcome = other.get().error(); });
    ASSERT_TRUE(test::eventually([&] { return other.waiting_getters() == 1; }));
    other.close();
    waiter.join();
    EXPECT_EQ(outcome, errc::closed);
    EXPECT_TRUE(UnboundedQueue<Item>::remove(*name));
}

// A producer killed at any moment: the survivors go on; what it put before is delivered in
// order, at most its one item in flight is lost (the chunk's journal says so).
TEST(UnboundedQueue, SigkilledProducerLeavesTheQueueUsable) {
    NameGuard name(unique_name("unbounded-kill-producer"));
    auto queue = UnboundedQueue<Item>::create(*name, {.chunk_capacity = 16});
    Process producer = spawn_child([&] {
        auto q = UnboundedQueue<Item>::open(*name);
        for (uint64_t i = 0;; ++i) {
            if (!q.put({1, i})) return 1;
        }
    });
    uint64_t next = 0;
    {
        test::KillWhen kill(producer, [&] { return queue.chunks() >= 5; });
        kill.join();
        EXPECT_TRUE(kill.ready_seen());
    }
    ASSERT_TRUE(test::join_or_fail(producer));
    EXPECT_EQ(producer.exitcode(), -SIGKILL);
    Process survivor = spawn_child([&] {
        auto q = UnboundedQueue<Item>::open(*name);
        for (uint64_t i = 0; i < 100; ++i) {
            if (!q.put({2, i})) return 1;
        }
        return 0;
    });
    ASSERT_TRUE(test::join_and_expect_exit(survivor));
    queue.shutdown();
    uint64_t survivors = 0;
    while (auto item = queue.get_for(10s)) {
        if (item->producer == 1) {
            ASSERT_EQ(item->sequence, next);  // in order, no gap before the kill
            ++next;
        } else {
            ASSERT_EQ(item->sequence, survivors);
            ++survivors;
        }
    }
    EXPECT_EQ(queue.get().error(), errc::shut_down);
    EXPECT_GE(next, 16u * 4);
    EXPECT_EQ(survivors, 100u);
}

// A consumer killed mid-get (after claiming its 601st item, before releasing the slot), past
// several chunk changes: another consumer gets all the rest; only the item in flight is lost,
// and the chunk's journal says so.
TEST(UnboundedQueue, SigkilledConsumerLeavesTheQueueUsable) {
    NameGuard name(unique_name("unbounded-kill-consumer"));
    auto queue = UnboundedQueue<uint64_t>::create(*name, {.chunk_capacity = 16});
    const uint64_t count = 2000, killed_at = 600;
    for (uint64_t i = 0; i < count; ++i) ASSERT_TRUE(queue.put(i));
    Process consumer = spawn_child([&] {
        auto q = UnboundedQueue<uint64_t>::open(*name);
        detail::arm_kill_point("queue.get.claimed", killed_at);
        for (uint64_t i = 0; i < count; ++i) {
            auto item = q.get();
            if (!item || *item != i) return 1;
        }
        return 99;  // the kill point was not reached
    });
    ASSERT_TRUE(test::join_or_fail(consumer));
    EXPECT_EQ(consumer.exitcode(), -SIGKILL);
    queue.shutdown();
    uint64_t next = killed_at + 1;  // item killed_at went with the consumer
    while (auto item = queue.get_for(10s)) ASSERT_EQ(*item, next++);
    EXPECT_EQ(queue.get().error(), errc::shut_down);
    EXPECT_EQ(next, count);
    UnboundedQueue<uint64_t>::remove(*name);
}

// When no memory can be had for a new chunk, put says no_space (never SIGBUS), having put
// nothing; what was put before is intact. (A file-size limit makes the chunk's ftruncate fail.)
TEST(UnboundedQueue, PutGivesNoSpaceWhenANewChunkCannotBeHad) {
    NameGuard name(unique_name("unbounded-no-space"));
    auto queue = UnboundedQueue<Item>::create(*name, {.chunk_capacity = 8});
    int code = test::run_child([&] {
        ::signal(SIGXFSZ, SIG_IGN);
        rlimit limit{4096, 4096};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
        for (uint64_t i = 0; i < 8; ++i) {
            if (!queue.put({0, i})) return 3;  // chunk 0 exists already
        }
        if (queue.put({0, 8}) != errc::no_space) return 4;
        try {
            queue.put_nowait({0, 8});
            return 5;
        } catch (const Error& error) {
            if (error.condition() != errc::no_space) return 6;
        }
        return 0;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(queue.size(), 8u);
    ASSERT_TRUE(queue.put({0, 8}));  // without the limit, the next chunk is made
    for (uint64_t i = 0; i <= 8; ++i) ASSERT_EQ(queue.get()->sequence, i);
    UnboundedQueue<Item>::remove(*name);
}

TEST(UnboundedQueue, AttachChecksTypeAndForm) {
    NameGuard name(unique_name("unbounded-attach"));
    auto queue = UnboundedQueue<uint64_t>::create(*name, {.type_tag = 3});
    auto error_of = [](auto open) -> errc {
        try {
            open();
        } catch (const Error& error) {
            return error.condition();
        }
        return errc::ok;
    };
    EXPECT_EQ(error_of([&] { UnboundedQueue<uint64_t>::open(*name, {.type_tag = 3}); }), errc::ok);
    EXPECT_EQ(error_of([&] { UnboundedQueue<uint32_t>::open(*name, {.type_tag = 3}); }),
              errc::type_mismatch);
    EXPECT_EQ(error_of([&] { UnboundedQueue<uint64_t>::open(*name); }), errc::type_mismatch);
    EXPECT_EQ(error_of([&] { Queue<uint64_t>::open(*name, {.type_tag = 3}); }),
              errc::kind_mismatch);
    EXPECT_EQ(error_of([&] { UnboundedByteQueue::open(*name); }), errc::type_mismatch);
    EXPECT_EQ(error_of([&] { UnboundedQueue<uint64_t>::create(*name); }), errc::already_exists);
    EXPECT_EQ(error_of([] { UnboundedQueue<uint64_t>::anonymous({.chunk_capacity = 0}); }),
              errc::invalid_argument);
    EXPECT_EQ(error_of([] { UnboundedQueue<uint64_t>::anonymous({.redelivery = true}); }),
              errc::invalid_argument);
    EXPECT_EQ(error_of([&] { UnboundedQueue<uint64_t>::create(std::string(190, 'a')); }),
              errc::invalid_name);
    UnboundedQueue<uint64_t>::remove(*name, {.type_tag = 3});
}

TEST(UnboundedByteQueue, MessagesCrossChunksAndProcesses) {
    auto queue = UnboundedByteQueue::anonymous(max_message, {.chunk_capacity = 4});
    EXPECT_EQ(queue.max_message_size(), max_message);
    EXPECT_EQ(queue.put(std::vector<std::byte>(max_message + 1)), errc::too_large);
    const uint64_t count = 50;
    Process producer = spawn_child([&] {
        for (uint64_t i = 0; i < count; ++i) {
            if (!queue.put(encode({3, i}))) return 1;
        }
        return 0;
    });
    ASSERT_TRUE(test::join_and_expect_exit(producer));
    EXPECT_EQ(queue.chunks(), 5u);  // 4, 4, 8, 16, 32 messages: doubling behind the backlog
    std::array<std::byte, max_message> buffer;
    std::array<std::byte, 8> small;
    EXPECT_EQ(queue.try_get(small).error(), errc::buffer_too_small);
    for (uint64_t i = 0; i < count; ++i) {
        auto length = queue.get_for(buffer, 5s);
        ASSERT_TRUE(length) << i;
        auto item = decode(std::span(buffer.data(), *length));
        ASSERT_TRUE(item);
        ASSERT_EQ(*item, (Item{3, i}));
    }
    EXPECT_EQ(queue.try_get(buffer).error(), errc::empty);
    queue.shutdown();
    EXPECT_EQ(queue.get(buffer).error(), errc::shut_down);
}

}  // namespace
}  // namespace shuttle
