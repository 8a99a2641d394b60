// One typed suite over every queue configuration: typed and byte messages, plain and joinable,
// named and anonymous, capacity 1, 10 and 1024. Cross-process behaviour uses real fork()ed
// children; no sleeps synchronise anything (children and parent meet through shared state).
#include "queue_support.hpp"

namespace shuttle {
namespace {

TYPED_TEST_SUITE_P(QueueTest);

TYPED_TEST_P(QueueTest, FifoFullAndEmptyInOneProcess) {
    auto& queue = this->queue_;
    const std::size_t capacity = this->shape_.capacity;
    EXPECT_EQ(queue.capacity(), capacity);
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(try_get(queue).error(), errc::empty);
    for (std::size_t i = 0; i < capacity; ++i) ASSERT_TRUE(try_put(queue, {0, i}));
    EXPECT_TRUE(queue.full());
    EXPECT_EQ(queue.size(), capacity);
    EXPECT_EQ(try_put(queue, {0, 999}), errc::full);
    for (std::size_t lap = 0; lap < 3; ++lap) {  // wrap around several laps
        for (std::size_t i = 0; i < capacity; ++i) {
            auto item = try_get(queue);
            ASSERT_TRUE(item);
            EXPECT_EQ(item->sequence, lap * capacity + i);
            ASSERT_TRUE(try_put(queue, {0, (lap + 1) * capacity + i}));
        }
    }
    EXPECT_EQ(queue.size(), capacity);
}

TYPED_TEST_P(QueueTest, NowaitFormsThrowAsPython) {
    if constexpr (!is_byte_queue<typename TypeParam::Queue>) {
        auto& queue = this->queue_;
        for (std::size_t i = 0; i < this->shape_.capacity; ++i) queue.put_nowait({0, i});
        EXPECT_THROW(queue.put_nowait({0, 0}), Full);
        for (std::size_t i = 0; i < this->shape_.capacity; ++i)
            EXPECT_EQ(queue.get_nowait().sequence, i);
        EXPECT_THROW(queue.get_nowait(), Empty);
        queue.shutdown();
        EXPECT_THROW(queue.get_nowait(), ShutDown);
        EXPECT_THROW(queue.put_nowait({0, 0}), ShutDown);
        queue.close();
        EXPECT_THROW(queue.get_nowait(), Closed);
        EXPECT_THROW(queue.put_nowait({0, 0}), Closed);
    }
}

TYPED_TEST_P(QueueTest, ItemsCrossProcessesInOrder) {
    const uint64_t count = 20000;
    Process producer = this->spawn_user([count](auto& queue) {
        for (uint64_t i = 0; i < count; ++i) {
            if (!put(queue, {1, i})) return 1;
        }
        return 0;
    });
    for (uint64_t i = 0; i < count; ++i) {
        auto item = get_until(this->queue_, steady_clock::now() + 10s);
        ASSERT_TRUE(item) << "item " << i;
        ASSERT_EQ(*item, (Item{1, i}));
    }
    ASSERT_TRUE(test::join_and_expect_exit(producer));
}

TYPED_TEST_P(QueueTest, BlockedPutIsReleasedByAGetInAnotherProcess) {
    auto& queue = this->queue_;
    for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(try_put(queue, {0, i}));
    Process producer = this->spawn_user([](auto& q) { return put(q, {7, 7}) ? 0 : 1; });
    this->wait_until([&] { return queue.waiting_putters() == 1; });
    EXPECT_EQ(queue.size(), this->shape_.capacity);  // it really is blocked: nothing went in
    ASSERT_TRUE(get(queue));
    ASSERT_TRUE(test::join_and_expect_exit(producer));
    for (std::size_t i = 1; i < this->shape_.capacity; ++i) ASSERT_EQ(get(queue)->sequence, i);
    EXPECT_EQ(*get(queue), (Item{7, 7}));
}

TYPED_TEST_P(QueueTest, TimedFormsHonourTheirTimeout) {
    auto& queue = this->queue_;
    for (auto timeout : {0ms, 30ms}) {
        auto start = steady_clock::now();
        EXPECT_EQ(get_until(queue, start + timeout).error(), errc::timeout);
        auto took = steady_clock::now() - start;
        EXPECT_GE(took, timeout);
        EXPECT_LT(took, timeout + 50ms);
    }
    for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(try_put(queue, {0, i}));
    auto start = steady_clock::now();
    EXPECT_EQ(put_until(queue, {0, 0}, start + 30ms), errc::timeout);
    auto took = steady_clock::now() - start;
    EXPECT_GE(took, 30ms);
    EXPECT_LT(took, 80ms);
}

TYPED_TEST_P(QueueTest, ShutdownWakesBlockedConsumersInEveryProcess) {
    auto& queue = this->queue_;
    constexpr int consumers = 3;
    std::vector<Process> children;
    for (int i = 0; i < consumers; ++i) {
        children.push_back(this->spawn_user([](auto& q) {
            auto item = get(q);
            return !item && item.error() == errc::shut_down ? 0 : 1;
        }));
    }
    this->wait_until([&] { return queue.waiting_getters() == consumers; });
    auto start = steady_clock::now();
    queue.shutdown();
    for (auto& child : children) {
        ASSERT_TRUE(test::join_and_expect_exit(child, 0, 5000ms));
    }
    EXPECT_LT(steady_clock::now() - start, 50ms * consumers + 50ms);
}

TYPED_TEST_P(QueueTest, ShutdownDrainsThenReportsShutDown) {
    auto& queue = this->queue_;
    const std::size_t count = std::min<std::size_t>(this->shape_.capacity, 3);
    for (std::size_t i = 0; i < count; ++i) ASSERT_TRUE(put(queue, {0, i}));
    EXPECT_FALSE(queue.is_shutdown());
    EXPECT_EQ(queue.shutdown(), 0u);
    EXPECT_TRUE(queue.is_shutdown());
    EXPECT_FALSE(queue.closed());  // the queue is shut down; this handle is not closed
    EXPECT_EQ(try_put(queue, {0, 9}), errc::shut_down);
    EXPECT_EQ(put(queue, {0, 9}), errc::shut_down);
    for (std::size_t i = 0; i < count; ++i) ASSERT_EQ(get(queue)->sequence, i);
    EXPECT_EQ(get(queue).error(), errc::shut_down);
    EXPECT_EQ(try_get(queue).error(), errc::shut_down);
}

TYPED_TEST_P(QueueTest, ShutdownWakesABlockedProducer) {
    auto& queue = this->queue_;
    for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(try_put(queue, {0, i}));
    Process producer = this->spawn_user([](auto& q) {
        return put(q, {1, 1}) == errc::shut_down ? 0 : 1;
    });
    this->wait_until([&] { return queue.waiting_putters() == 1; });
    queue.shutdown();
    ASSERT_TRUE(test::join_and_expect_exit(producer, 0, 5000ms));
}

// Python's Queue.close(): this handle puts and gets no more; nothing else changes.
TYPED_TEST_P(QueueTest, CloseEndsOnlyThisHandle) {
    auto& queue = this->queue_;
    ASSERT_TRUE(put(queue, {0, 0}));
    queue.close();
    queue.close();  // idempotent
    EXPECT_TRUE(queue.closed());
    EXPECT_FALSE(queue.is_shutdown());
    EXPECT_EQ(try_put(queue, {0, 1}), errc::closed);
    EXPECT_EQ(put(queue, {0, 1}), errc::closed);
    EXPECT_EQ(put_until(queue, {0, 1}, steady_clock::now() + 1s), errc::closed);
    EXPECT_EQ(try_get(queue).error(), errc::closed);
    EXPECT_EQ(get(queue).error(), errc::closed);
    EXPECT_EQ(queue.size(), 1u);  // diagnostics still work; the item is still queued
    // Another handle in this process is unaffected and still gets the item.
    std::optional<typename TypeParam::Queue> other_storage;
    auto& other =
        TypeParam::in_child(this->shape_, queue, *this->name_, other_storage, this->options_);
    if (&other != &queue) {
        EXPECT_FALSE(other.closed());
        ASSERT_EQ(get(other)->sequence, 0u);
        ASSERT_TRUE(put(other, {0, 2}));
        EXPECT_EQ(get(other)->sequence, 2u);
    }
}

// One producer process closes its handle; another producer goes on putting, and the consumer
// gets everything both put.
TYPED_TEST_P(QueueTest, ClosingOneProducersHandleDoesNotStopAnother) {
    auto& queue = this->queue_;
    std::atomic<uint64_t>* flags = this->flags_;
    Process quitter = this->spawn_user([flags](auto& q) {
        if (!put(q, {1, 0})) return 1;
        q.close();
        if (put(q, {1, 1}) != errc::closed) return 2;
        flags[0].store(1);  // closed: now the other producer starts
        return 0;
    });
    ASSERT_TRUE(test::join_and_expect_exit(quitter));
    Process producer = this->spawn_user([flags](auto& q) {
        if (flags[0].load() != 1) return 1;
        for (uint64_t i = 0; i < 50; ++i) {
            if (!put(q, {2, i})) return 2;
        }
        return 0;
    });
    auto first = get_until(queue, steady_clock::now() + 10s);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, (Item{1, 0}));
    for (uint64_t i = 0; i < 50; ++i) {
        auto item = get_until(queue, steady_clock::now() + 10s);
        ASSERT_TRUE(item) << "item " << i << ": " << make_error_code(item.error()).message();
        ASSERT_EQ(*item, (Item{2, i}));
    }
    ASSERT_TRUE(test::join_and_expect_exit(producer));
    EXPECT_FALSE(queue.is_shutdown());
    EXPECT_EQ(queue.size(), 0u);
}

TYPED_TEST_P(QueueTest, CloseWakesThisHandlesBlockedGet) {
    if constexpr (!is_byte_queue<typename TypeParam::Queue>) {
        auto& queue = this->queue_;
        errc outcome = errc::ok;
        std::thread waiter([&] { outcome = queue.get().error(); });
        this->wait_until([&] { return queue.waiting_getters() == 1; });
        queue.close();
        waiter.join();
        EXPECT_EQ(outcome, errc::closed);
        EXPECT_FALSE(queue.is_shutdown());
    }
}

// Immediate shutdown from another process drops what is queued: a getter finds nothing more.
TYPED_TEST_P(QueueTest, ImmediateShutdownInAnotherProcessDropsWhatIsQueued) {
    auto& queue = this->queue_;
    const std::size_t count = std::min<std::size_t>(this->shape_.capacity, 4);
    for (std::size_t i = 0; i < count; ++i) ASSERT_TRUE(put(queue, {0, i}));
    Process stopper =
        this->spawn_user([count](auto& q) { return q.shutdown(true) == count ? 0 : 1; });
    ASSERT_TRUE(test::join_and_expect_exit(stopper));
    EXPECT_TRUE(queue.is_shutdown());
    EXPECT_EQ(queue.size(), 0u);
    EXPECT_EQ(get(queue).error(), errc::shut_down);
    EXPECT_EQ(try_put(queue, {0, 9}), errc::shut_down);
}

TYPED_TEST_P(QueueTest, StopTokenCancelsABlockedGet) {
    if constexpr (!is_byte_queue<typename TypeParam::Queue>) {
        std::stop_source source;
        errc outcome = errc::ok;
        std::thread waiter([&] { outcome = this->queue_.get(source.get_token()).error(); });
        this->wait_until([&] { return this->queue_.waiting_getters() == 1; });
        source.request_stop();
        waiter.join();
        EXPECT_EQ(outcome, errc::cancelled);
        ASSERT_TRUE(try_put(this->queue_, {0, 1}));  // still usable
        EXPECT_TRUE(try_get(this->queue_));
    }
}

TYPED_TEST_P(QueueTest, ImmediateShutdownDiscardsAndSettlesJoin) {
    auto& queue = this->queue_;
    const std::size_t count = std::min<std::size_t>(this->shape_.capacity, 5);
    for (std::size_t i = 0; i < count; ++i) ASSERT_TRUE(put(queue, {0, i}));
    EXPECT_EQ(queue.shutdown(true), count);
    EXPECT_EQ(get(queue).error(), errc::shut_down);
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(queue.unfinished_tasks(), 0u);
        EXPECT_EQ(queue.join_for(1s), errc::ok);
    }
}

TYPED_TEST_P(QueueTest, TaskAccountingAcrossProcesses) {
    if constexpr (TypeParam::joinable) {
        auto& queue = this->queue_;
        EXPECT_EQ(queue.task_done(), errc::task_done_overflow);
        const uint64_t count = 200;
        Process consumer = this->spawn_user([count](auto& q) {
            for (uint64_t i = 0; i < count; ++i) {
                if (!get(q) || !q.task_done()) return 1;
            }
            return 0;
        });
        for (uint64_t i = 0; i < count; ++i) ASSERT_TRUE(put(queue, {0, i}));
        EXPECT_EQ(queue.join_for(10s), errc::ok);
        EXPECT_EQ(queue.unfinished_tasks(), 0u);
        ASSERT_TRUE(test::join_and_expect_exit(consumer));
        EXPECT_EQ(queue.task_done(), errc::task_done_overflow);  // over-call changes nothing
        EXPECT_EQ(queue.unfinished_tasks(), 0u);
        ASSERT_TRUE(put(queue, {0, 0}));
        auto start = steady_clock::now();
        EXPECT_EQ(queue.join_for(20ms), errc::timeout);
        EXPECT_GE(steady_clock::now() - start, 20ms);
    }
}

// A process killed while blocked in get or put leaves the queue fully usable: other waiters are
// still woken and every item still arrives.
TYPED_TEST_P(QueueTest, ProcessKilledWhileBlockedLeavesQueueUsable) {
    auto& queue = this->queue_;
    Process blocked_getter = this->spawn_user([](auto& q) { return get(q) ? 1 : 2; });
    this->wait_until([&] { return queue.waiting_getters() == 1; });
    blocked_getter.kill();
    ASSERT_TRUE(test::join_and_expect_exit(blocked_getter, -SIGKILL));

    // A fresh consumer blocks, and an item put now reaches it.
    Process consumer = this->spawn_user([](auto& q) {
        auto item = get_until(q, steady_clock::now() + 10s);
        return item && *item == Item{3, 3} ? 0 : 1;
    });
    this->wait_until([&] { return queue.waiting_getters() >= 1; });
    ASSERT_TRUE(put(queue, {3, 3}));
    ASSERT_TRUE(test::join_and_expect_exit(consumer));

    // Same on the producer side: a producer killed while blocked on a full queue.
    for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(try_put(queue, {0, i}));
    Process blocked_putter = this->spawn_user([](auto& q) { return put(q, {9, 9}) ? 1 : 2; });
    this->wait_until([&] { return queue.waiting_putters() == 1; });
    blocked_putter.kill();
    ASSERT_TRUE(test::join_or_fail(blocked_putter));
    for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_EQ(get(queue)->sequence, i);
    EXPECT_EQ(try_get(queue).error(), errc::empty);  // the killed put left nothing half-done
    ASSERT_TRUE(try_put(queue, {4, 4}));
    EXPECT_EQ(*get(queue), (Item{4, 4}));
}

// Many threads of one process share one handle.
TYPED_TEST_P(QueueTest, ThreadsShareOneHandle) {
    auto& queue = this->queue_;
    constexpr int threads = 4;
    constexpr uint64_t per_thread = 5000;
    std::vector<std::thread> producers;
    std::atomic<uint64_t> received{0}, sum{0};
    std::vector<std::thread> consumers;
    for (int t = 0; t < threads; ++t) {
        producers.emplace_back([&, t] {
            for (uint64_t i = 0; i < per_thread; ++i) ASSERT_TRUE(put(queue, {uint64_t(t), i}));
        });
        consumers.emplace_back([&] {
            std::vector<int64_t> last(threads, -1);
            while (auto item = get(queue)) {
                ASSERT_GT(static_cast<int64_t>(item->sequence), last[item->producer]);
                last[item->producer] = static_cast<int64_t>(item->sequence);
                received.fetch_add(1);
                sum.fetch_add(item->sequence);
            }
        });
    }
    for (auto& thread : producers) thread.join();
    queue.shutdown();
    for (auto& thread : consumers) thread.join();
    EXPECT_EQ(received.load(), threads * per_thread);
    EXPECT_EQ(sum.load(), threads * per_thread * (per_thread - 1) / 2);
}

// 4 producer and 4 consumer processes: every item exactly once, per-producer order kept.
TYPED_TEST_P(QueueTest, StressExactlyOnceAndPerProducerOrder) {
    constexpr int producers = 4, consumers = 4;
    // >= 1e6 items for the typed queue at capacity 10 and 1024; smaller elsewhere.
    uint64_t total = 200000;
    if (!is_byte_queue<typename TypeParam::Queue> && !TypeParam::joinable &&
        this->shape_.capacity > 1) {
        total = 1000000;
    }
    if (sanitized()) total /= 20;
    const uint64_t per_producer = total / producers;
    // One receipt counter per item, in shared memory.
    SegmentInfo info = test::counters_info(1);
    Segment receipts_segment = Segment::create_anonymous(
        info, [&](const SegmentInfo&) { return std::optional<uint64_t>(total); }, {});
    auto* receipts = reinterpret_cast<std::atomic<uint8_t>*>(receipts_segment.body());
    std::atomic<uint64_t>* failures = this->flags_;

    std::vector<Process> children;
    for (int c = 0; c < consumers; ++c) {
        children.push_back(this->spawn_user([=](auto& q) {
            std::vector<int64_t> last(producers, -1);
            while (auto item = get(q)) {
                if (item->producer >= producers || item->sequence >= per_producer ||
                    static_cast<int64_t>(item->sequence) <= last[item->producer]) {
                    failures[0].fetch_add(1);
                    return 1;
                }
                last[item->producer] = static_cast<int64_t>(item->sequence);
                receipts[item->producer * per_producer + item->sequence].fetch_add(1);
                if constexpr (TypeParam::joinable) {
                    if (!q.task_done()) return 2;
                }
            }
            return 0;
        }));
    }
    std::vector<Process> producer_processes;
    for (int p = 0; p < producers; ++p) {
        producer_processes.push_back(this->spawn_user([=](auto& q) {
            for (uint64_t i = 0; i < per_producer; ++i) {
                if (!put(q, {static_cast<uint64_t>(p), i})) return 1;
            }
            return 0;
        }));
    }
    for (auto& producer : producer_processes) {
        ASSERT_TRUE(test::join_and_expect_exit(producer, 0, 60000ms));
    }
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(this->queue_.join_for(60s), errc::ok);
    }
    this->queue_.shutdown();
    for (auto& consumer : children) {
        ASSERT_TRUE(test::join_and_expect_exit(consumer, 0, 60000ms));
    }
    EXPECT_EQ(failures[0].load(), 0u);
    uint64_t missing = 0, duplicated = 0;
    for (uint64_t i = 0; i < per_producer * producers; ++i) {
        missing += receipts[i].load() == 0;
        duplicated += receipts[i].load() > 1;
    }
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(duplicated, 0u);
}

// ---- byte-queue specifics and attach checks ----------------------------------------------------

TEST(ByteQueue, TooLargeIsRefusedAndTooSmallBufferConsumesNothing) {
    auto queue = ByteQueue::anonymous(4, 32);
    EXPECT_EQ(queue.max_message_size(), 32u);
    std::string big(33, 'x');
    EXPECT_EQ(queue.try_put(big), errc::too_large);
    EXPECT_EQ(queue.put(big), errc::too_large);
    EXPECT_TRUE(queue.empty());
    ASSERT_TRUE(queue.put(std::string(32, 'y')));
    ASSERT_TRUE(queue.put(std::string_view()));  // zero-length messages are messages
    std::array<std::byte, 8> small;
    EXPECT_EQ(queue.try_get(small).error(), errc::buffer_too_small);
    EXPECT_EQ(queue.size(), 2u);
    std::array<std::byte, 32> buffer;
    auto length = queue.try_get(buffer);
    ASSERT_TRUE(length);
    EXPECT_EQ(*length, 32u);
    EXPECT_EQ(static_cast<char>(buffer[31]), 'y');
    EXPECT_EQ(*queue.try_get(small), 0u);
}

// Issue 14 §8: opening a JoinableQueue as a plain queue (and back) names that mismatch, not
// redelivery; a mismatch of redelivery alone names redelivery.
TEST(QueueAttach, JoinableOpenedAsPlainNamesTheRealMismatch) {
    auto message_of = [](auto open) -> std::string {
        try {
            open();
        } catch (const Error& error) {
            return error.condition() == errc::kind_mismatch ? error.what() : "wrong code";
        }
        return "no error";
    };
    NameGuard joinable(unique_name("attach-joinable"));
    NameGuard plain(unique_name("attach-plain"));
    NameGuard joinable_bytes(unique_name("attach-joinable-bytes"));
    NameGuard leased(unique_name("attach-leased"));
    auto q1 = JoinableQueue<uint64_t>::create(*joinable, 4);
    auto q2 = Queue<uint64_t>::create(*plain, 4);
    auto q3 = JoinableByteQueue::create(*joinable_bytes, 4, 16);
    auto q4 = JoinableQueue<uint64_t>::create(*leased, 4, {.redelivery = true});

    const std::string as_plain = message_of([&] { (void)Queue<uint64_t>::open(*joinable); });
    EXPECT_NE(as_plain.find("holds a JoinableQueue: open it as a JoinableQueue"), std::string::npos)
        << as_plain;
    EXPECT_EQ(as_plain.find("redelivery"), std::string::npos) << as_plain;

    const std::string as_joinable =
        message_of([&] { (void)JoinableQueue<uint64_t>::open(*plain); });
    EXPECT_NE(as_joinable.find("holds a plain Queue (not joinable): open it as a Queue"),
              std::string::npos)
        << as_joinable;
    EXPECT_EQ(as_joinable.find("redelivery"), std::string::npos) << as_joinable;

    const std::string bytes = message_of([&] { (void)ByteQueue::open(*joinable_bytes); });
    EXPECT_NE(bytes.find("JoinableQueue"), std::string::npos) << bytes;
    EXPECT_NE(bytes.find("JoinableByteQueue / ByteQueue"), std::string::npos) << bytes;
    EXPECT_EQ(bytes.find("redelivery"), std::string::npos) << bytes;

    // A leased (redelivery) JoinableQueue opened as a plain one: still the joinable mismatch.
    const std::string leased_as_plain = message_of([&] { (void)Queue<uint64_t>::open(*leased); });
    EXPECT_NE(leased_as_plain.find("holds a JoinableQueue"), std::string::npos) << leased_as_plain;
    EXPECT_EQ(leased_as_plain.find("redelivery"), std::string::npos) << leased_as_plain;
    // Only redelivery differs: then redelivery is the mismatch named.
    const std::string without = message_of([&] { (void)JoinableQueue<uint64_t>::open(*leased); });
    EXPECT_NE(without.find("with redelivery"), std::string::npos) << without;
}

TEST(QueueAttach, WrongTypeCapacityOrKindIsAClearError) {
    NameGuard name(unique_name("attach"));
    auto queue = Queue<uint64_t>::create(*name, 8, {.type_tag = 5});
    auto open_error = [&](auto open) -> errc {
        try {
            open();
        } catch (const Error& error) {
            return error.condition();
        }
        return errc::ok;
    };
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::open(*name, {.type_tag = 5}); }), errc::ok);
    EXPECT_EQ(open_error([&] { Queue<uint32_t>::open(*name, {.type_tag = 5}); }),
              errc::type_mismatch);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::open(*name, {.type_tag = 6}); }),
              errc::type_mismatch);
    EXPECT_EQ(open_error([&] { JoinableQueue<uint64_t>::open(*name, {.type_tag = 5}); }),
              errc::kind_mismatch);
    EXPECT_EQ(open_error([&] { ByteQueue::open(*name); }), errc::kind_mismatch);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::open_or_create(*name, 9, {.type_tag = 5}); }),
              errc::capacity_mismatch);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::open(unique_name("none")); }), errc::not_found);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::create(*name, 8); }), errc::already_exists);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::anonymous(0); }), errc::invalid_argument);
    EXPECT_EQ(open_error([&] { Queue<uint64_t>::anonymous(4, {.max_participants = 33}); }),
              errc::invalid_argument);
}

TEST(QueueAttach, OpenOrCreateAndRemove) {
    NameGuard name(unique_name("ooc"));
    auto first = Queue<uint64_t>::open_or_create(*name, 4);
    auto second = Queue<uint64_t>::open_or_create(*name, 4);
    ASSERT_TRUE(first.put(11));
    EXPECT_EQ(*second.get(), 11u);
    EXPECT_TRUE(Queue<uint64_t>::remove(*name));
    ASSERT_TRUE(first.put(12));  // attached handles keep working after remove
    EXPECT_EQ(*second.get(), 12u);
}

TEST(QueueParticipants, RegistryFullIsReported) {
    auto queue = Queue<uint64_t>::anonymous(4, {.max_participants = 1});
    ASSERT_TRUE(queue.put(1));
    errc other_thread = errc::ok;
    std::thread([&] { other_thread = queue.try_put(2).error(); }).join();
    EXPECT_EQ(other_thread, errc::registry_full);
    EXPECT_EQ(*queue.get(), 1u);
}

// Issue 13 §3: an entry belongs to a live thread. Thread lifetimes one after another on one
// long-lived handle never run out of entries (before: registry_full after max_participants - 1).
TEST(QueueParticipants, ThreadsThatComeAndGoReleaseTheirEntries) {
    auto queue = Queue<uint64_t>::anonymous(4, {.max_participants = 4});
    ASSERT_TRUE(queue.put(0));  // this thread keeps its entry throughout
    const uint64_t lifetimes = test::sanitized() ? 1000 : 10000;
    uint64_t failures = 0;
    for (uint64_t lifetime = 1; lifetime <= lifetimes && failures == 0; ++lifetime) {
        std::thread([&] {
            const bool put = queue.try_put(lifetime).ok();
            const auto got = queue.try_get();
            if (!put || !got || *got != lifetime - 1) ++failures;
        }).join();
    }
    EXPECT_EQ(failures, 0u);
    EXPECT_EQ(*queue.try_get(), lifetimes);
}

// A thread that ends holding a get_task() lease: nobody else may acknowledge it, so it is
// orphaned and redelivered, as if the thread had died (docs/recovery.md).
TEST(QueueParticipants, AThreadEndingWithAGetTaskHasItRedelivered) {
    auto queue = JoinableQueue<uint64_t>::anonymous(4, {.max_participants = 3, .redelivery = true});
    ASSERT_TRUE(queue.put(7));
    for (int lifetime = 0; lifetime < 5; ++lifetime) {  // more lifetimes than entries
        errc got = errc::ok;
        std::thread([&] { got = queue.try_get_task().error(); }).join();
        ASSERT_EQ(got, errc::ok);
        auto task = queue.get_task_for(5s);  // waits for the orphan to be put back
        ASSERT_TRUE(task) << task.error();
        EXPECT_EQ(task->item, 7u);
        EXPECT_EQ(queue.redelivered_count(), static_cast<uint64_t>(lifetime + 1));
        EXPECT_EQ(queue.unfinished_tasks(), 1u);
        if (lifetime < 4) {
            ASSERT_TRUE(queue.put(7));  // for the next lifetime; this one is finished
        }
        EXPECT_TRUE(queue.task_done(*task));
    }
    EXPECT_EQ(queue.join_for(1s), errc::ok);
}

// Tasks a thread took with get() and had not finished when it ended stay the process's:
// task_done() from another of its threads finishes them, and entries are not used up.
TEST(QueueParticipants, AThreadEndingWithUnfinishedGetsLeavesThemToTheProcess) {
    auto queue = JoinableQueue<uint64_t>::anonymous(8, {.max_participants = 3});
    for (uint64_t item = 0; item < 6; ++item) ASSERT_TRUE(queue.put(item));
    for (uint64_t item = 0; item < 6; ++item) {
        errc got = errc::ok;
        std::thread([&] { got = queue.try_get().error(); }).join();
        ASSERT_EQ(got, errc::ok) << "lifetime " << item;
    }
    EXPECT_EQ(queue.unfinished_tasks(), 6u);
    EXPECT_EQ(queue.join_for(0s), errc::timeout);
    for (int done = 0; done < 6; ++done) EXPECT_TRUE(queue.task_done());
    EXPECT_EQ(queue.join_for(1s), errc::ok);
}

// The same tasks, when the process then dies: they are settled, so join() returns (the ended
// threads' counts were kept for the process, not dropped with their entries).
TEST(QueueThreadEnd, TasksOfEndedThreadsAreSettledWhenTheProcessDies) {
    auto queue = JoinableQueue<uint64_t>::anonymous(8, {.max_participants = 3});
    for (uint64_t item = 0; item < 4; ++item) ASSERT_TRUE(queue.put(item));
    const int code = test::run_child([&] {
        for (int lifetime = 0; lifetime < 4; ++lifetime) {
            bool got = false;
            std::thread([&] { got = queue.try_get().has_value(); }).join();
            if (!got) return 1;
        }
        ::raise(SIGKILL);  // dies holding four unfinished tasks
        return 2;
    });
    EXPECT_EQ(code, -SIGKILL);
    EXPECT_EQ(queue.join_for(5s), errc::ok);
    EXPECT_EQ(queue.settled_tasks(), 4u);
}
REGISTER_TYPED_TEST_SUITE_P(QueueTest, FifoFullAndEmptyInOneProcess, NowaitFormsThrowAsPython,
                            ItemsCrossProcessesInOrder, BlockedPutIsReleasedByAGetInAnotherProcess,
                            TimedFormsHonourTheirTimeout,
                            ShutdownWakesBlockedConsumersInEveryProcess,
                            ShutdownDrainsThenReportsShutDown, ShutdownWakesABlockedProducer,
                            CloseEndsOnlyThisHandle, ClosingOneProducersHandleDoesNotStopAnother,
                            CloseWakesThisHandlesBlockedGet,
                            ImmediateShutdownInAnotherProcessDropsWhatIsQueued,
                            StopTokenCancelsABlockedGet, ImmediateShutdownDiscardsAndSettlesJoin,
                            TaskAccountingAcrossProcesses,
                            ProcessKilledWhileBlockedLeavesQueueUsable, ThreadsShareOneHandle,
                            StressExactlyOnceAndPerProducerOrder);
SHUTTLE_INSTANTIATE_FOR_EVERY_SHAPE(QueueTest, QueueTypes);

}  // namespace
}  // namespace shuttle
