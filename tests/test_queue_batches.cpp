// Batches: put_many / get_many (several items per cursor operation) over a few queue
// configurations — all-or-some answers, the triads' waiting, order and exactly-once per producer
// with single and batch operations mixed across processes, JoinableQueue accounting (each item a
// task), and a process SIGKILLed mid-batch losing only its own unfinished items, journaled.
#include "queue_support.hpp"
#include "shuttle/detail/os.hpp"

namespace shuttle {
namespace {

template <class C>
class BatchTest : public QueueTest<C> {
  protected:
    using Q = typename C::Queue;
    using B = Batch<Q>;

    /// Every item left in the queue, in order (single gets: the batches' peer).
    std::vector<Item> drain() {
        std::vector<Item> items;
        while (auto item = try_get(this->queue_)) items.push_back(*item);
        return items;
    }
};

TYPED_TEST_SUITE_P(BatchTest);

// All-or-some: a batch larger than the room puts what fits (the count), then full; a get batch
// takes what is there, in order, across the ring's wrap; empty spans answer at once.
TYPED_TEST_P(BatchTest, PutsWhatFitsAndGetsWhatIsThereInOrder) {
    using B = typename TestFixture::B;
    auto& queue = this->queue_;
    const std::size_t capacity = this->shape_.capacity;
    for (uint64_t lap = 0; lap < 3; ++lap) {  // three laps: runs wrap around the ring
        const auto items = items_of(lap, 0, capacity + 5);
        auto put = B::try_put(queue, items);
        ASSERT_TRUE(put);
        EXPECT_EQ(*put, capacity);
        EXPECT_EQ(B::try_put(queue, items).error(), errc::full);
        std::vector<Item> got;
        while (got.size() < capacity) {
            auto batch = B::try_get(queue, 7);
            ASSERT_TRUE(batch) << make_error_code(batch.error()).message();
            ASSERT_LE(batch->size(), 7u);
            got.insert(got.end(), batch->begin(), batch->end());
        }
        EXPECT_EQ(got, items_of(lap, 0, capacity));
        EXPECT_EQ(B::try_get(queue, 7).error(), errc::empty);
        // A run that starts mid-ring: one single put first.
        ASSERT_TRUE(try_put(queue, {9, lap}));
        EXPECT_EQ(*try_get(queue), (Item{9, lap}));
    }
    EXPECT_EQ(*B::try_put(queue, {}), 0u);  // nothing to put: 0, not an error
    EXPECT_EQ(B::try_get(queue, 0).error(), errc::invalid_argument);
    EXPECT_EQ(queue.lost_count(), 0u);
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(queue.unfinished_tasks(), 3 * (capacity + 1));
    }
}

// The waiting forms: put_many_for puts what fits and then reports the partial count; with
// nothing put it times out; get_many_for on an empty queue times out; after a shutdown put
// batches are refused and get batches drain, then say shut_down; a closed handle says closed.
TYPED_TEST_P(BatchTest, WaitingFormsAnswerPartialCountsTimeoutsAndShutdown) {
    using B = typename TestFixture::B;
    auto& queue = this->queue_;
    const std::size_t capacity = this->shape_.capacity;
    const auto items = items_of(1, 0, capacity + 3);
    auto put = B::put_until(queue, items, steady_clock::now() + 20ms);
    ASSERT_TRUE(put);
    EXPECT_EQ(*put, capacity);  // the rest did not fit before the deadline
    EXPECT_EQ(B::put_until(queue, items, steady_clock::now() + 5ms).error(), errc::timeout);
    auto got = B::get_until(queue, capacity + 3, steady_clock::now() + 1s);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, items_of(1, 0, capacity));
    EXPECT_EQ(B::get_until(queue, 4, steady_clock::now() + 5ms).error(), errc::timeout);
    ASSERT_TRUE(B::try_put(queue, items_of(2, 0, 2)));
    queue.shutdown();
    EXPECT_EQ(B::try_put(queue, items_of(3, 0, 2)).error(), errc::shut_down);
    EXPECT_EQ(*B::get_until(queue, 8, no_deadline), items_of(2, 0, 2));
    EXPECT_EQ(B::get_until(queue, 8, no_deadline).error(), errc::shut_down);
    queue.close();
    EXPECT_EQ(B::try_put(queue, items_of(4, 0, 1)).error(), errc::closed);
    EXPECT_EQ(B::try_get(queue, 1).error(), errc::closed);
}

// A put_many blocked on a full queue in another process finishes as the parent takes items;
// everything arrives once, in order.
TYPED_TEST_P(BatchTest, ABlockedPutManyInAnotherProcessCompletesAsItemsAreTaken) {
    using B = typename TestFixture::B;
    const std::size_t total = 3 * this->shape_.capacity + 7;
    Process producer = this->spawn_user([total](auto& q) {
        auto put = Batch<std::remove_cvref_t<decltype(q)>>::put(q, items_of(5, 0, total));
        return put && *put == total ? 0 : 1;
    });
    std::vector<Item> got;
    const auto deadline = steady_clock::now() + 10s;
    while (got.size() < total && steady_clock::now() < deadline) {
        auto batch = B::get_until(this->queue_, 16, deadline);
        ASSERT_TRUE(batch) << make_error_code(batch.error()).message();
        got.insert(got.end(), batch->begin(), batch->end());
    }
    ASSERT_TRUE(test::join_and_expect_exit(producer, 0));
    EXPECT_EQ(got, items_of(5, 0, total));
}

// Producers in three processes put with single puts and batches of varying sizes, consumers in
// two processes take with single gets and batches: every item arrives exactly once, and each
// consumer sees each producer's items in increasing order.
TYPED_TEST_P(BatchTest, MixedSingleAndBatchOperationsAcrossProcessesAreExactlyOnceInOrder) {
    constexpr uint64_t producers = 3;
    const uint64_t per_producer = sanitized() ? 300 : 1000;
    std::atomic<uint64_t>* seen = this->flags_;  // seen[producer * per_producer + sequence]
    std::atomic<uint64_t>& disorder = this->flags_[4000];
    std::vector<Process> children;
    for (uint64_t p = 0; p < producers; ++p) {
        children.push_back(this->spawn_user([p, per_producer](auto& q) {
            using Q = std::remove_cvref_t<decltype(q)>;
            uint64_t next = 0;
            for (uint64_t round = 0; next < per_producer; ++round) {
                const std::size_t size = std::min<uint64_t>(round % 17 + 1, per_producer - next);
                if (round % 3 == 0) {  // a single put
                    if (!put(q, {p, next})) return 1;
                    ++next;
                    continue;
                }
                auto put = Batch<Q>::put(q, items_of(p, next, size));
                if (!put || *put != size) return 2;
                next += size;
            }
            return 0;
        }));
    }
    for (uint64_t c = 0; c < 2; ++c) {
        children.push_back(this->spawn_user([c, seen, &disorder](auto& q) {
            using Q = std::remove_cvref_t<decltype(q)>;
            std::array<int64_t, producers> last{-1, -1, -1};
            for (uint64_t round = 0;; ++round) {
                std::vector<Item> got;
                if ((round + c) % 4 == 0) {
                    auto item = get(q);
                    if (!item) return item.error() == errc::shut_down ? 0 : 3;
                    got.push_back(*item);
                } else {
                    auto batch = Batch<Q>::get_until(q, round % 23 + 1, no_deadline);
                    if (!batch) return batch.error() == errc::shut_down ? 0 : 4;
                    got = std::move(*batch);
                }
                for (const Item& item : got) {
                    if (item.producer >= producers) return 5;
                    if (static_cast<int64_t>(item.sequence) <= last[item.producer]) {
                        disorder.fetch_add(1);
                    }
                    last[item.producer] = static_cast<int64_t>(item.sequence);
                    seen[item.producer * 1000 + item.sequence].fetch_add(1);
                    if constexpr (TypeParam::joinable) (void)q.task_done();
                }
            }
        }));
    }
    for (uint64_t p = 0; p < producers; ++p) ASSERT_TRUE(test::join_and_expect_exit(children[p]));
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(this->queue_.join_for(10s), errc::ok);
    }
    this->queue_.shutdown();
    for (uint64_t c = 0; c < 2; ++c) {
        ASSERT_TRUE(test::join_and_expect_exit(children[producers + c]));
    }
    EXPECT_EQ(disorder.load(), 0u);
    for (uint64_t p = 0; p < producers; ++p) {
        for (uint64_t i = 0; i < per_producer; ++i) {
            ASSERT_EQ(seen[p * 1000 + i].load(), 1u) << "producer " << p << " item " << i;
        }
    }
    EXPECT_EQ(this->queue_.lost_count(), 0u);
}

// Each item of a batch is a task: unfinished_tasks counts items, task_done() once per item.
TYPED_TEST_P(BatchTest, EachItemOfABatchIsATask) {
    if constexpr (!TypeParam::joinable) {
        GTEST_SKIP() << "task accounting is JoinableQueue's";
    } else {
        using B = typename TestFixture::B;
        auto& queue = this->queue_;
        ASSERT_EQ(*B::try_put(queue, items_of(1, 0, 6)), 6u);
        EXPECT_EQ(queue.unfinished_tasks(), 6u);
        EXPECT_EQ(B::try_get(queue, 6)->size(), 6u);
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.task_done());
        EXPECT_EQ(queue.join_for(5ms), errc::timeout);
        ASSERT_TRUE(queue.task_done());
        EXPECT_EQ(queue.join_for(1s), errc::ok);
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);
    }
}

// A producer killed mid-batch, after publishing 3 of its 6 items: those 3 are delivered, the 3
// it had claimed and not published are lost, each journaled as a killed single put (settled in
// a JoinableQueue); consumers get past them, and items put afterwards arrive.
TYPED_TEST_P(BatchTest, AProducerKilledMidBatchLosesOnlyItsUnpublishedItems) {
    using B = typename TestFixture::B;
    auto& queue = this->queue_;
    const pid_t dead = this->die_at(
        "queue.put_many.published",
        [](auto& q) { (void)Batch<std::remove_cvref_t<decltype(q)>>::put(q, items_of(1, 0, 6)); },
        2);
    ASSERT_TRUE(try_put(queue, {2, 0}));
    std::vector<Item> got;
    const auto deadline = steady_clock::now() + 5s;
    while (got.size() < 4 && steady_clock::now() < deadline) {
        auto batch = B::get_until(queue, 8, deadline);  // waits: recovery skips the lost run
        ASSERT_TRUE(batch) << make_error_code(batch.error()).message();
        got.insert(got.end(), batch->begin(), batch->end());
    }
    std::vector<Item> expected = items_of(1, 0, 3);
    expected.push_back({2, 0});
    EXPECT_EQ(got, expected);
    EXPECT_EQ(queue.lost_count(), 3u);
    auto lost = queue.lost_items();
    ASSERT_EQ(lost.size(), 3u);
    for (uint64_t i = 0; i < 3; ++i) {
        EXPECT_EQ(lost[i].operation, detail::LostOperation::put);
        EXPECT_EQ(lost[i].pid, dead);
        EXPECT_EQ(lost[i].ticket, 3 + i);
    }
    // Fully usable: whole laps of batches.
    for (uint64_t lap = 0; lap < 2; ++lap) {
        ASSERT_EQ(*B::try_put(queue, items_of(3, 0, this->shape_.capacity)), this->shape_.capacity);
        EXPECT_EQ(this->drain(), items_of(3, 0, this->shape_.capacity));
    }
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(queue.settled_tasks(), 3u);
        EXPECT_EQ(queue.unfinished_tasks(), 4 + 2 * this->shape_.capacity);
    }
}

// Killed right after claiming a put run (nothing published) or before the claim (nothing
// claimed): the whole run lost and journaled, or nothing lost.
TYPED_TEST_P(BatchTest, AProducerKilledAtTheClaimLosesTheRunAndBeforeItNothing) {
    auto& queue = this->queue_;
    auto put_five = [](auto& q) {
        (void)Batch<std::remove_cvref_t<decltype(q)>>::put(q, items_of(1, 0, 5));
    };
    this->die_at("queue.put_many.announced", put_five);
    this->die_at("queue.put_many.claimed", put_five);
    ASSERT_TRUE(try_put(queue, {2, 0}));
    EXPECT_EQ(*get_until(queue, steady_clock::now() + 5s), (Item{2, 0}));
    EXPECT_EQ(queue.lost_count(), 5u);
    EXPECT_EQ(this->drain(), std::vector<Item>{});
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(queue.settled_tasks(), 5u);
    }
}

// A consumer killed mid-batch, after releasing 2 of the 6 items it claimed: the 4 it still held
// are journaled with their contents, their slots released (a producer can fill the ring again);
// in a JoinableQueue all 6 tasks are settled (it had taken them) and join() returns.
TYPED_TEST_P(BatchTest, AConsumerKilledMidBatchJournalsTheItemsItStillHeld) {
    using B = typename TestFixture::B;
    auto& queue = this->queue_;
    for (const char* point :
         {"queue.get_many.released", "queue.get_many.claimed", "queue.get_many.counted"}) {
        if (!TypeParam::joinable && std::string_view(point) == "queue.get_many.counted") continue;
        const bool mid_release = std::string_view(point) == "queue.get_many.released";
        const uint64_t lost_before = queue.lost_count();
        ASSERT_EQ(*B::try_put(queue, items_of(7, 0, 6)), 6u);
        const pid_t dead = this->die_at(
            point, [](auto& q) { (void)Batch<std::remove_cvref_t<decltype(q)>>::try_get(q, 6); },
            mid_release ? 1 : 0);
        const uint64_t held = mid_release ? 4 : 6;
        // The stuck slots come back once recovery ran (a blocked producer runs it).
        ASSERT_EQ(
            *B::put_until(queue, items_of(8, 0, this->shape_.capacity), steady_clock::now() + 5s),
            this->shape_.capacity)
            << point;
        EXPECT_EQ(queue.lost_count(), lost_before + held) << point;
        auto lost = queue.lost_items();
        ASSERT_GE(lost.size(), held);
        for (uint64_t i = 0; i < held; ++i) {
            const LostItem& record = lost[lost.size() - held + i];
            EXPECT_EQ(record.operation, detail::LostOperation::get);
            EXPECT_EQ(record.pid, dead);
            Item item;
            std::memcpy(&item, record.contents.data(), sizeof item);  // both forms start so
            EXPECT_EQ(item, (Item{7, 6 - held + i})) << point;
        }
        EXPECT_EQ(this->drain(), items_of(8, 0, this->shape_.capacity)) << point;
        if constexpr (TypeParam::joinable) {
            for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(queue.task_done());
            EXPECT_EQ(queue.join_for(5s), errc::ok) << point;  // the dead one's 6 are settled
            EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow) << point;
        }
    }
}

// Threads of one process sharing one handle, mixing single and batch operations: every item
// once, each producer's items in order (the TSan run's batch test: scripts/test).
TEST(QueueBatches, ThreadsMixingSingleAndBatchOperationsAreExactlyOnceInOrder) {
    auto queue = Queue<Item>::anonymous(16);
    const uint64_t per_producer = sanitized() ? 1000 : 5000;
    std::vector<std::atomic<uint32_t>> seen(2 * per_producer);
    std::atomic<uint64_t> disorder{0};
    std::vector<std::jthread> consumers;
    for (uint64_t c = 0; c < 2; ++c) {
        consumers.emplace_back([&, c] {
            std::array<int64_t, 2> last{-1, -1};
            std::array<Item, 13> out;
            for (uint64_t round = 0;; ++round) {
                std::size_t count = 1;
                if ((round + c) % 3 == 0) {
                    auto item = queue.get();
                    if (!item) return;
                    out[0] = *item;
                } else {
                    auto got = queue.get_many(std::span(out.data(), round % out.size() + 1));
                    if (!got) return;
                    count = *got;
                }
                for (std::size_t i = 0; i < count; ++i) {
                    const Item& item = out[i];
                    if (static_cast<int64_t>(item.sequence) <= last[item.producer]) ++disorder;
                    last[item.producer] = static_cast<int64_t>(item.sequence);
                    seen[item.producer * per_producer + item.sequence].fetch_add(1);
                }
            }
        });
    }
    {
        std::vector<std::jthread> producers;
        for (uint64_t p = 0; p < 2; ++p) {
            producers.emplace_back([&, p] {
                for (uint64_t next = 0, round = 0; next < per_producer; ++round) {
                    if (round % 4 == 0) {
                        ASSERT_TRUE(queue.put({p, next++}));
                        continue;
                    }
                    const auto items =
                        items_of(p, next, std::min<uint64_t>(round % 11 + 1, per_producer - next));
                    auto put = queue.put_many(items);
                    ASSERT_TRUE(put);
                    ASSERT_EQ(*put, items.size());
                    next += items.size();
                }
            });
        }
    }
    queue.shutdown();
    consumers.clear();
    EXPECT_EQ(disorder.load(), 0u);
    for (uint64_t i = 0; i < 2 * per_producer; ++i) ASSERT_EQ(seen[i].load(), 1u) << i;
}

// A newcomer that takes over the registry entry of a consumer killed mid-batch (2 of its 5 items
// released) repairs the 3 it still held (journaled) and settles all 5 tasks before its own first
// use: the adopt path, for a batch announcement.
TEST(QueueBatchRecovery, ANewcomerRepairsTheBatchOfTheEntryItTakesOver) {
    NameGuard name(unique_name("q"));
    auto queue = JoinableQueue<Item>::create(*name, 8, {.max_participants = 2});
    ASSERT_EQ(*queue.try_put_many(items_of(0, 0, 5)), 5u);  // the parent's entry
    ASSERT_EQ(run_child([&] {
                  auto attached = JoinableQueue<Item>::open(*name);
                  detail::arm_kill_point("queue.get_many.released", 1);
                  std::array<Item, 5> out;
                  (void)attached.try_get_many(out);
                  return 99;
              }),
              -SIGKILL);
    EXPECT_EQ(queue.lost_count(), 0u);
    EXPECT_EQ(run_child([&] {
                  auto attached = JoinableQueue<Item>::open(*name);  // takes over the dead entry
                  auto put = attached.try_put_many(items_of(1, 0, 8));
                  return put && *put == 8 ? 0 : 1;
              }),
              0);
    EXPECT_EQ(queue.lost_count(), 3u);
    EXPECT_EQ(queue.settled_tasks(), 5u);
    std::array<Item, 8> out;
    ASSERT_EQ(*queue.try_get_many(out), 8u);
    EXPECT_EQ(std::vector<Item>(out.begin(), out.end()), items_of(1, 0, 8));
    EXPECT_EQ(queue.unfinished_tasks(), 8u);
}

REGISTER_TYPED_TEST_SUITE_P(BatchTest, PutsWhatFitsAndGetsWhatIsThereInOrder,
                            WaitingFormsAnswerPartialCountsTimeoutsAndShutdown,
                            ABlockedPutManyInAnotherProcessCompletesAsItemsAreTaken,
                            MixedSingleAndBatchOperationsAcrossProcessesAreExactlyOnceInOrder,
                            EachItemOfABatchIsATask,
                            AProducerKilledMidBatchLosesOnlyItsUnpublishedItems,
                            AProducerKilledAtTheClaimLosesTheRunAndBeforeItNothing,
                            AConsumerKilledMidBatchJournalsTheItemsItStillHeld);
// Few configurations: both forms, plain and joinable, named and anonymous, a small ring
// (batches wrap and fill it) and a large one.
SHUTTLE_INSTANTIATE_FOR_SHAPE(Anonymous10, BatchTest, ::testing::Types<Config<Queue<Item>>>);
SHUTTLE_INSTANTIATE_FOR_SHAPE(Named10, BatchTest, ::testing::Types<Config<JoinableQueue<Item>>>);
SHUTTLE_INSTANTIATE_FOR_SHAPE(Named1024, BatchTest, ::testing::Types<Config<ByteQueue>>);
SHUTTLE_INSTANTIATE_FOR_SHAPE(Anonymous1024, BatchTest,
                              ::testing::Types<Config<JoinableByteQueue>>);

}  // namespace
}  // namespace shuttle
