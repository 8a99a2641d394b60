// Crash recovery, window by window: a child process kills itself (SIGKILL) at a deterministic
// point inside put, get, task_done or a repair, and the survivors must carry on — no hang, the
// loss (if any) journaled and counted, task accounting settled. One typed suite over every
// queue configuration. The random-kill torture test is in test_queue_torture.cpp.
#include "queue_support.hpp"
#include "shuttle/detail/os.hpp"

namespace shuttle {
namespace {

template <class C>
class RecoveryTest : public QueueTest<C> {
  protected:
    /// Fills the queue with items {0, i} until it is full (the ring may hold a stuck slot).
    std::size_t fill() {
        std::size_t count = 0;
        while (try_put(this->queue_, {0, count})) ++count;
        return count;
    }
};

TYPED_TEST_SUITE_P(RecoveryTest);

// Killed after claiming a put slot, before publishing: the item is lost (journaled, counted);
// consumers skip the slot and get what was put after it.
TYPED_TEST_P(RecoveryTest, KilledMidPutIsSkippedAndJournaled) {
    auto& queue = this->queue_;
    const pid_t dead = this->die_at("queue.put.claimed", [](auto& q) { (void)put(q, {1, 1}); });
    if (this->shape_.capacity > 1) {
        ASSERT_TRUE(try_put(queue, {2, 2}));
    }
    // With room for one item the ring holds only the dead put's slot: the get repairs it, then
    // finds the queue empty and times out.
    auto item = get_until(queue, steady_clock::now() + (this->shape_.capacity > 1 ? 5s : 300ms));
    if (this->shape_.capacity > 1) {
        ASSERT_TRUE(item) << make_error_code(item.error()).message();
        EXPECT_EQ(*item, (Item{2, 2}));
    } else {
        EXPECT_EQ(item.error(), errc::timeout);
    }
    EXPECT_EQ(queue.lost_count(), 1u);
    auto lost = queue.lost_items();
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0].operation, detail::LostOperation::put);
    EXPECT_EQ(lost[0].pid, dead);
    EXPECT_EQ(lost[0].ticket, 0u);
    // The queue is fully usable: a whole lap round and round.
    for (std::size_t i = 0; i < 2 * this->shape_.capacity + 1; ++i) {
        ASSERT_TRUE(try_put(queue, {3, i}));
        auto again = try_get(queue);
        ASSERT_TRUE(again);
        EXPECT_EQ(*again, (Item{3, i}));
    }
    if constexpr (TypeParam::joinable) {
        // The lost put's task was settled; the ones delivered here are ours to finish.
        EXPECT_EQ(queue.settled_tasks(), 1u);
        const std::size_t delivered = 2 * this->shape_.capacity + 1 + (this->shape_.capacity > 1);
        EXPECT_EQ(queue.unfinished_tasks(), delivered);
        for (std::size_t i = 0; i < delivered; ++i) ASSERT_TRUE(queue.task_done());
        EXPECT_EQ(queue.join_for(1s), errc::ok);
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);
    }
}

// Killed after claiming an item, before releasing its slot: the item is lost with its contents
// in the journal; a producer blocked on the full ring gets the slot back.
TYPED_TEST_P(RecoveryTest, KilledMidGetReleasesTheSlotAndJournalsTheItem) {
    auto& queue = this->queue_;
    ASSERT_TRUE(try_put(queue, {7, 7}));
    const pid_t dead = this->die_at("queue.get.claimed", [](auto& q) { (void)get(q); });
    EXPECT_EQ(this->fill(), this->shape_.capacity - 1);  // the dead consumer's slot is stuck
    ASSERT_TRUE(put_until(queue, {8, 8}, steady_clock::now() + 5s));
    EXPECT_EQ(queue.lost_count(), 1u);
    auto lost = queue.lost_items();
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0].operation, detail::LostOperation::get);
    EXPECT_EQ(lost[0].pid, dead);
    if constexpr (is_byte_queue<typename TypeParam::Queue>) {
        auto encoded = encode({7, 7});
        ASSERT_EQ(lost[0].length, encoded.size());
        EXPECT_TRUE(std::equal(encoded.begin(), encoded.end(), lost[0].contents.begin()));
    } else {
        ASSERT_EQ(lost[0].contents.size(), sizeof(Item));
        Item item;
        std::memcpy(&item, lost[0].contents.data(), sizeof item);
        EXPECT_EQ(item, (Item{7, 7}));
    }
    for (std::size_t i = 0; i + 1 < this->shape_.capacity; ++i)
        EXPECT_EQ(*try_get(queue), (Item{0, i}));
    EXPECT_EQ(*try_get(queue), (Item{8, 8}));
    if constexpr (TypeParam::joinable) {
        for (std::size_t i = 0; i < this->shape_.capacity; ++i) ASSERT_TRUE(queue.task_done());
        EXPECT_EQ(queue.join_for(1s), errc::ok);
        EXPECT_EQ(queue.settled_tasks(), 1u);
    }
}

// Windows where nothing is lost: before a claim (nothing happened), after a publish (the item is
// in the queue) and after a release (the consumer had the item: its get had committed).
TYPED_TEST_P(RecoveryTest, KilledOutsideTheClaimWindowsLosesNothing) {
    auto& queue = this->queue_;
    this->die_at("queue.put.announced", [](auto& q) { (void)put(q, {1, 1}); });
    this->die_at("queue.put.published", [](auto& q) { (void)put(q, {2, 2}); });
    EXPECT_EQ(*get_until(queue, steady_clock::now() + 5s), (Item{2, 2}));
    ASSERT_TRUE(try_put(queue, {3, 3}));
    this->die_at("queue.get.announced", [](auto& q) { (void)get(q); });
    this->die_at("queue.get.released", [](auto& q) { (void)get(q); });  // takes {3, 3} with it
    EXPECT_EQ(try_get(queue).error(), errc::empty);
    EXPECT_EQ(this->fill(), this->shape_.capacity);  // no slot is stuck
    EXPECT_EQ(queue.lost_count(), 0u);
    if constexpr (TypeParam::joinable) {
        // {2, 2} was delivered to us; {3, 3}'s task died with its consumer and is settled; the
        // items that fill() put are still queued.
        ASSERT_TRUE(queue.task_done());
        EXPECT_EQ(queue.join_for(20ms), errc::timeout);  // settles {3, 3}, waits for the rest
        EXPECT_EQ(queue.settled_tasks(), 1u);
        EXPECT_EQ(queue.unfinished_tasks(), this->shape_.capacity);
    }
}

// A consumer of a JoinableQueue killed while holding tasks it never task_done()'d: join()
// returns once they are settled (by default), instead of waiting forever.
TYPED_TEST_P(RecoveryTest, JoinReturnsWhenAConsumerDiesHoldingTasks) {
    if constexpr (!TypeParam::joinable) {
        GTEST_SKIP() << "task accounting is JoinableQueue's";
    } else {
        auto& queue = this->queue_;
        const std::size_t count = std::min<std::size_t>(this->shape_.capacity, 3);
        for (std::size_t i = 0; i < count; ++i) ASSERT_TRUE(try_put(queue, {1, i}));
        // Takes every item, finishes the first, and dies between the last get's count and its
        // release.
        this->die_at(
            "queue.get.counted",
            [count](auto& q) {
                for (std::size_t i = 0; i < count; ++i) {
                    (void)get(q);
                    if (i == 0 && count > 1) (void)q.task_done();
                }
            },
            count - 1);
        const auto started = steady_clock::now();
        EXPECT_EQ(queue.join_for(5s), errc::ok);
        EXPECT_LT(steady_clock::now() - started, 1s);
        EXPECT_EQ(queue.settled_tasks(), count > 1 ? count - 1 : 1);  // taken, not done
        EXPECT_EQ(queue.lost_count(), 1u);  // the item in its hands is journaled
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);
    }
}

// The recoverer itself is killed half-way through a repair: the next one finishes it, and the
// loss is counted exactly once.
TYPED_TEST_P(RecoveryTest, RecovererKilledMidRepairIsFinishedByTheNext) {
    auto& queue = this->queue_;
    for (const char* point :
         {"queue.recovery.locked", "queue.repair.journaled", "queue.repair.committed"}) {
        const uint64_t lost_before = queue.lost_count();
        this->die_at("queue.put.claimed", [](auto& q) { (void)put(q, {1, 1}); });
        this->die_at(point, [](auto& q) { (void)q.recover(); });
        EXPECT_EQ(get_until(queue, steady_clock::now() + 50ms).error(), errc::timeout);
        EXPECT_TRUE(queue.recover());
        EXPECT_EQ(queue.lost_count(), lost_before + 1) << point;
        EXPECT_EQ(this->fill(), this->shape_.capacity) << point;  // nothing stuck
        while (try_get(queue)) {
        }
    }
    EXPECT_EQ(queue.lost_items().size(), 3u);
    if constexpr (TypeParam::joinable) {
        EXPECT_EQ(queue.settled_tasks(), 3u);
    }
}

// A process stopped (SIGSTOP) mid-put is alive: survivors wait for it, and stalls() names it.
// Once it is killed, they get past it.
TYPED_TEST_P(RecoveryTest, AStoppedHolderIsWaitedForAndNamed) {
    auto& queue = this->queue_;
    Process holder = this->spawn_user([](auto& q) {
        detail::set_kill_point_hook([](const char*) { ::raise(SIGSTOP); });
        detail::arm_kill_point("queue.put.claimed");
        (void)put(q, {1, 1});
        return 99;
    });
    std::vector<Stall> stalls;
    this->wait_until([&] {
        stalls = queue.stalls();
        return !stalls.empty() && stalls[0].stopped;
    });
    EXPECT_EQ(stalls[0].pid, holder.pid());
    EXPECT_TRUE(stalls[0].putting);
    EXPECT_EQ(get_until(queue, steady_clock::now() + 30ms).error(), errc::timeout);
    EXPECT_EQ(queue.lost_count(), 0u);  // never repaired while the holder lives
    holder.kill();
    ASSERT_TRUE(test::join_or_fail(holder));
    if (this->shape_.capacity > 1) {
        ASSERT_TRUE(try_put(queue, {2, 2}));
    }
    auto item = get_until(queue, steady_clock::now() + (this->shape_.capacity > 1 ? 5s : 300ms));
    if (this->shape_.capacity > 1) {
        EXPECT_EQ(*item, (Item{2, 2}));
    } else {
        EXPECT_EQ(item.error(), errc::timeout);  // the repaired ring is empty
    }
    EXPECT_EQ(queue.lost_count(), 1u);
    EXPECT_TRUE(queue.stalls().empty());
}

// A dead holder's registry entry taken over by a newcomer: the newcomer repairs what the entry's
// last holder left before using it (here the queue has room for just two participants).
TEST(QueueRecovery, ANewcomerRepairsTheEntryItTakesOver) {
    NameGuard name(unique_name("q"));
    auto queue = Queue<Item>::create(*name, 4, {.max_participants = 2});
    ASSERT_TRUE(queue.try_put({0, 0}));  // the parent's entry
    ASSERT_EQ(test::run_child([&] {
                  auto attached = Queue<Item>::open(*name);
                  detail::arm_kill_point("queue.get.claimed");
                  (void)attached.get();
                  return 99;
              }),
              -SIGKILL);
    EXPECT_EQ(queue.lost_count(), 0u);
    const int code = test::run_child([&] {
        auto attached = Queue<Item>::open(*name);  // takes over the dead entry
        return attached.try_put({1, 1}) ? 0 : 1;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(queue.lost_count(), 1u);
    EXPECT_EQ(queue.lost_items().at(0).contents.size(), sizeof(Item));
    EXPECT_EQ(*queue.try_get(), (Item{1, 1}));
}

REGISTER_TYPED_TEST_SUITE_P(RecoveryTest, KilledMidPutIsSkippedAndJournaled,
                            KilledMidGetReleasesTheSlotAndJournalsTheItem,
                            KilledOutsideTheClaimWindowsLosesNothing,
                            JoinReturnsWhenAConsumerDiesHoldingTasks,
                            RecovererKilledMidRepairIsFinishedByTheNext,
                            AStoppedHolderIsWaitedForAndNamed);
SHUTTLE_INSTANTIATE_FOR_EVERY_SHAPE(RecoveryTest, QueueTypes);

}  // namespace
}  // namespace shuttle
