// At-least-once redelivery (QueueOptions::redelivery): a consumer that got a task with
// get_task() and dies before task_done(task) — self-killed at every window of get_task(),
// task_done(task) and the redelivery itself, or SIGKILLed while holding it — has the item
// delivered again to another consumer; join() returns; nothing is lost; redelivered_count()
// counts it. One typed suite over the joinable configurations (typed/byte x named/anonymous x
// capacity 1/10/1024), plus the option and handle checks.
#include "queue_support.hpp"
#include "shuttle/detail/os.hpp"

namespace shuttle {
namespace {

template <class C>
class RedeliveryTest : public QueueTest<C, true> {
  protected:
    /// A child that takes a task and dies (at `point`) before acknowledging it.
    pid_t die_holding(const char* point) {
        return this->die_at(point, [](auto& q) {
            auto task = get_task(q);
            if (task) (void)q.task_done(task->second);
        });
    }
    /// Gets every item queued now (as tasks, acknowledged), waiting up to 5 s for the first.
    std::vector<Item> drain() {
        std::vector<Item> items;
        auto deadline = steady_clock::now() + 5s;
        while (auto task = get_task_until(this->queue_, deadline)) {
            items.push_back(task->first);
            EXPECT_TRUE(this->queue_.task_done(task->second));
            deadline = steady_clock::now() + 50ms;
        }
        return items;
    }
};

TYPED_TEST_SUITE_P(RedeliveryTest);

// The normal life of a task: get_task(), task_done(task); a second task_done(task) and a
// second get_task() while one is held are refused and change nothing.
TYPED_TEST_P(RedeliveryTest, TaskDoneAcknowledgesOnceAndOnlyOnce) {
    auto& queue = this->queue_;
    EXPECT_TRUE(queue.redelivery());
    ASSERT_TRUE(try_put(queue, {1, 1}));
    if (this->shape_.capacity > 1) {
        ASSERT_TRUE(try_put(queue, {1, 2}));
    }
    auto task = try_get_task(queue);
    ASSERT_TRUE(task);
    EXPECT_EQ(task->first, (Item{1, 1}));
    if (this->shape_.capacity > 1) {
        EXPECT_EQ(try_get_task(queue).error(), errc::task_held);  // one per thread at a time
        EXPECT_EQ(queue.size(), 1u);                              // nothing consumed
    }
    EXPECT_TRUE(queue.task_done(task->second));
    EXPECT_EQ(queue.task_done(task->second).error(), errc::not_owner);
    EXPECT_EQ(queue.unfinished_tasks(), this->shape_.capacity > 1 ? 1u : 0u);
    if (this->shape_.capacity > 1) {
        auto second = try_get_task(queue);
        ASSERT_TRUE(second);
        EXPECT_EQ(second->first, (Item{1, 2}));
        EXPECT_EQ(queue.task_done(task->second).error(), errc::not_owner);  // still stale
        EXPECT_EQ(queue.unfinished_tasks(), 1u);
        EXPECT_TRUE(queue.task_done(second->second));
    }
    EXPECT_EQ(queue.join_for(1s), errc::ok);
    EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);
    EXPECT_EQ(queue.redelivered_count(), 0u);
    // Plain get() and task_done() keep working on a queue with redelivery.
    ASSERT_TRUE(try_put(queue, {2, 2}));
    EXPECT_EQ(*try_get(queue), (Item{2, 2}));
    EXPECT_TRUE(queue.task_done());
    EXPECT_EQ(queue.join_for(1s), errc::ok);
}

// A task acknowledged by another process (not its holder's) is refused: only the holder's
// process may say it is finished (its death is what redelivers it).
TYPED_TEST_P(RedeliveryTest, AnotherProcessCannotAcknowledgeATask) {
    auto& queue = this->queue_;
    ASSERT_TRUE(try_put(queue, {1, 1}));
    auto task = try_get_task(queue);
    ASSERT_TRUE(task);
    const TaskId id = task->second;
    Process other = this->spawn_user(
        [id](auto& q) { return q.task_done(id).error() == errc::not_owner ? 0 : 1; });
    ASSERT_TRUE(test::join_and_expect_exit(other));
    EXPECT_EQ(queue.unfinished_tasks(), 1u);
    EXPECT_TRUE(queue.task_done(id));
    EXPECT_EQ(queue.join_for(1s), errc::ok);
}

// The holder dies at each window of get_task() (and SIGKILLed while it holds the task): the same
// item reaches another consumer, once; join() returns; nothing is lost or journaled.
TYPED_TEST_P(RedeliveryTest, AHolderKilledAtAnyWindowHasItsTaskRedelivered) {
    auto& queue = this->queue_;
    uint64_t expected_redeliveries = 0;
    uint64_t sequence = 0;
    for (const char* point : {"queue.get.claimed", "queue.lease.written", "queue.lease.released",
                              "", "queue.task_done.acking"}) {
        SCOPED_TRACE(*point ? point : "SIGKILL while holding");
        const Item item{1, ++sequence};
        ASSERT_TRUE(try_put(queue, item));
        if (*point) {
            this->die_holding(point);
        } else {
            // A plain SIGKILL from outside while the child holds the task (it never acks).
            Process holder = this->spawn_user([this](auto& q) {
                if (!get_task(q)) return 1;
                this->flags_[0].store(1);
                for (;;) std::this_thread::sleep_for(1s);  // idle until killed
            });
            this->wait_until([&] { return this->flags_[0].load() == 1; });
            this->flags_[0].store(0);
            holder.kill();
            ASSERT_TRUE(test::join_or_fail(holder));
        }
        const bool acking = std::strcmp(point, "queue.task_done.acking") == 0;
        if (acking) {
            // It had finished the task and was acknowledging it: counted, not redelivered.
            EXPECT_EQ(queue.join_for(5s), errc::ok);
            EXPECT_EQ(try_get(queue).error(), errc::empty);
        } else {
            ++expected_redeliveries;
            const std::vector<Item> items = this->drain();
            ASSERT_EQ(items.size(), 1u);
            EXPECT_EQ(items[0], item);
            EXPECT_EQ(queue.join_for(5s), errc::ok);
        }
        EXPECT_EQ(queue.redelivered_count(), expected_redeliveries);
        EXPECT_EQ(queue.lost_count(), 0u);
        EXPECT_EQ(queue.unfinished_tasks(), 0u);
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);  // nothing over-settled
    }
    // The queue is fully usable, a whole lap round.
    for (std::size_t i = 0; i < 2 * this->shape_.capacity + 1; ++i) {
        ASSERT_TRUE(try_put(queue, {3, i}));
        auto task = try_get_task(queue);
        ASSERT_TRUE(task);
        EXPECT_EQ(task->first, (Item{3, i}));
        ASSERT_TRUE(queue.task_done(task->second));
    }
    EXPECT_EQ(queue.join_for(1s), errc::ok);
}

// Killed inside task_done(task), at each step (and its recoverer killed finishing it): nothing
// is redelivered, and the task is counted exactly once — while another task is outstanding, so
// a second count would show.
TYPED_TEST_P(RedeliveryTest, AHolderKilledAcknowledgingIsCountedExactlyOnce) {
    auto& queue = this->queue_;
    for (const char* point : {"queue.task_done.acking", "queue.task_done.counted",
                              "queue.task_done.lease_cleared", "queue.lease.acknowledged"}) {
        SCOPED_TRACE(point);
        ASSERT_TRUE(try_put(queue, {1, 1}));
        auto mine = try_get_task(queue);  // outstanding meanwhile
        ASSERT_TRUE(mine);
        ASSERT_TRUE(try_put(queue, {2, 2}));
        if (std::strcmp(point, "queue.lease.acknowledged") == 0) {
            this->die_holding("queue.task_done.acking");
            this->die_at(point, [](auto& q) { (void)q.recover(); });
        } else {
            this->die_holding(point);
        }
        EXPECT_EQ(queue.join_for(30ms), errc::timeout);  // runs recovery; ours is unfinished
        EXPECT_TRUE(queue.recover());
        EXPECT_EQ(queue.unfinished_tasks(), 1u);
        EXPECT_EQ(try_get(queue).error(), errc::empty);
        EXPECT_EQ(queue.redelivered_count(), 0u);
        ASSERT_TRUE(queue.task_done(mine->second));
        EXPECT_EQ(queue.join_for(1s), errc::ok);
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);
    }
    EXPECT_EQ(queue.settled_tasks(), 0u);
}

// A task acknowledged from another thread of the holder's process is refused too: only the
// thread that got it writes its lease.
TYPED_TEST_P(RedeliveryTest, OnlyTheHoldingThreadAcknowledges) {
    auto& queue = this->queue_;
    ASSERT_TRUE(try_put(queue, {1, 1}));
    auto task = try_get_task(queue);
    ASSERT_TRUE(task);
    status other;
    std::thread([&] { other = queue.task_done(task->second); }).join();
    EXPECT_EQ(other.error(), errc::not_owner);
    EXPECT_EQ(queue.unfinished_tasks(), 1u);
    EXPECT_TRUE(queue.task_done(task->second));
}

// The ring is full when the holder dies: the item stays in the dead holder's lease (recovery
// never blocks) and comes back once there is room.
TYPED_TEST_P(RedeliveryTest, RedeliveryWaitsForRoom) {
    auto& queue = this->queue_;
    ASSERT_TRUE(try_put(queue, {1, 1}));
    this->die_holding("queue.lease.released");
    std::size_t filled = 0;
    while (try_put(queue, {0, filled})) ++filled;
    ASSERT_EQ(filled, this->shape_.capacity);
    EXPECT_TRUE(queue.recover());
    EXPECT_EQ(queue.redelivered_count(), 0u);  // no room
    EXPECT_NE(queue.describe_recovery().find("ORPHAN"), std::string::npos)
        << queue.describe_recovery();
    auto first = try_get(queue);  // makes room: the next recovery puts the orphan back
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, (Item{0, 0}));
    ASSERT_TRUE(queue.task_done());
    std::vector<Item> items = this->drain();
    ASSERT_EQ(items.size(), this->shape_.capacity);
    EXPECT_EQ(items.back(), (Item{1, 1}));  // behind what was queued
    for (std::size_t i = 1; i < this->shape_.capacity; ++i) EXPECT_EQ(items[i - 1], (Item{0, i}));
    EXPECT_EQ(queue.join_for(5s), errc::ok);
    EXPECT_EQ(queue.redelivered_count(), 1u);
    EXPECT_EQ(queue.lost_count(), 0u);
}

// The recoverer is killed in the middle of a redelivery: the next one finishes it. A recoverer
// killed after its put and before it freed the lease makes a duplicate (at-least-once), never a
// loss, and the task count stays right either way.
TYPED_TEST_P(RedeliveryTest, RecovererKilledMidRedeliveryIsFinishedByTheNext) {
    auto& queue = this->queue_;
    uint64_t sequence = 0;
    uint64_t redelivered = 0;
    for (const auto& [point, copies] :
         std::vector<std::pair<const char*, std::size_t>>{{"queue.lease.orphaned", 1},
                                                          {"queue.put.claimed", 1},
                                                          {"queue.recovery.redelivered", 2},
                                                          {"queue.release.recorded", 2},
                                                          {"queue.release.settled", 1}}) {
        SCOPED_TRACE(point);
        const Item item{1, ++sequence};
        ASSERT_TRUE(try_put(queue, item));
        this->die_holding("queue.lease.released");
        this->die_at(point, [](auto& q) { (void)q.recover(); });
        EXPECT_TRUE(queue.recover());
        const std::vector<Item> items = this->drain();
        ASSERT_EQ(items.size(), copies);
        for (const Item& got : items) EXPECT_EQ(got, item);
        EXPECT_EQ(queue.join_for(5s), errc::ok);
        EXPECT_EQ(queue.unfinished_tasks(), 0u);
        EXPECT_EQ(queue.task_done().error(), errc::task_done_overflow);  // nothing over-settled
        EXPECT_EQ(queue.redelivered_count(), ++redelivered);
    }
    // The recoverer killed mid-put of the redelivery lost that put (journaled), not the item.
    EXPECT_EQ(queue.lost_count(), 1u);
}

// A handle of another queue is refused, and changes nothing on either.
TEST(QueueRedelivery, AnotherQueuesTaskIsRefused) {
    auto first = JoinableQueue<Item>::anonymous(4, {.redelivery = true});
    auto second = JoinableQueue<Item>::anonymous(4, {.redelivery = true});
    ASSERT_TRUE(first.try_put({1, 1}));
    ASSERT_TRUE(second.try_put({2, 2}));
    auto task = first.try_get_task();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->item, (Item{1, 1}));
    EXPECT_EQ(second.task_done(*task).error(), errc::invalid_argument);
    EXPECT_EQ(second.unfinished_tasks(), 1u);
    EXPECT_EQ(first.unfinished_tasks(), 1u);
    EXPECT_TRUE(first.task_done(*task));
    EXPECT_EQ(first.join_for(1s), errc::ok);
    // A plain joinable queue (no leases) refuses a handle too.
    auto plain = JoinableQueue<Item>::anonymous(4);
    ASSERT_TRUE(plain.try_put({3, 3}));
    EXPECT_EQ(plain.task_done(task->id).error(), errc::invalid_argument);
    EXPECT_EQ(plain.try_get_task().error(), errc::invalid_argument);
    EXPECT_EQ(plain.unfinished_tasks(), 1u);
}

// The option is fixed at creation and checked on open; a plain queue refuses it.
TEST(QueueRedelivery, TheOptionIsCheckedOnOpen) {
    NameGuard with(unique_name("q"));
    NameGuard without(unique_name("q"));
    auto leased = JoinableQueue<Item>::create(*with, 4, {.redelivery = true});
    auto plain = JoinableQueue<Item>::create(*without, 4);
    auto code = [](auto open) {
        try {
            open();
        } catch (const Error& error) {
            return static_cast<errc>(error.code().value());
        }
        return errc::ok;
    };
    EXPECT_EQ(code([&] { JoinableQueue<Item>::open(*with); }), errc::kind_mismatch);
    EXPECT_EQ(code([&] { JoinableQueue<Item>::open(*without, {.redelivery = true}); }),
              errc::kind_mismatch);
    EXPECT_EQ(code([&] { JoinableQueue<Item>::open(*with, {.redelivery = true}); }), errc::ok);
    EXPECT_EQ(code([&] { Queue<Item>::anonymous(4, {.redelivery = true}); }),
              errc::invalid_argument);
    EXPECT_EQ(code([&] { ByteQueue::anonymous(4, 64, {.redelivery = true}); }),
              errc::invalid_argument);
    NameGuard bytes(unique_name("q"));
    auto byte_queue = JoinableByteQueue::create(*bytes, 4, 64, {.redelivery = true});
    EXPECT_EQ(code([&] { JoinableByteQueue::open(*bytes); }), errc::kind_mismatch);
    EXPECT_EQ(code([&] { JoinableByteQueue::open(*bytes, {.redelivery = true}); }), errc::ok);
    try {
        JoinableQueue<Item>::open(*with);
    } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find("redelivery"), std::string::npos) << error.what();
    }
}

// A newcomer that takes over the registry entry of a holder that died while the ring was full
// finds the orphaned task in its own lease and gets it first.
TEST(QueueRedelivery, ANewcomerTakesOverTheOrphanInItsEntry) {
    NameGuard name(unique_name("q"));
    const QueueOptions options{.max_participants = 2, .redelivery = true};
    auto queue = JoinableQueue<Item>::create(*name, 1, options);
    ASSERT_TRUE(queue.try_put({1, 1}));  // the parent's entry
    ASSERT_EQ(test::run_child([&] {
                  auto attached = JoinableQueue<Item>::open(*name, options);
                  detail::arm_kill_point("queue.lease.released");
                  (void)attached.get_task();
                  return 99;
              }),
              -SIGKILL);
    ASSERT_TRUE(queue.try_put({2, 2}));  // the ring is full
    const int code = test::run_child([&] {
        auto attached = JoinableQueue<Item>::open(*name, options);  // takes over the dead entry
        auto task = attached.try_get_task();
        if (!task || task->item != Item{1, 1}) return 1;
        return attached.task_done(*task) ? 0 : 2;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(*queue.try_get(), (Item{2, 2}));
    EXPECT_TRUE(queue.task_done());
    EXPECT_EQ(queue.join_for(1s), errc::ok);
    EXPECT_EQ(queue.redelivered_count(), 1u);
    EXPECT_EQ(queue.lost_count(), 0u);
}

REGISTER_TYPED_TEST_SUITE_P(RedeliveryTest, TaskDoneAcknowledgesOnceAndOnlyOnce,
                            AnotherProcessCannotAcknowledgeATask,
                            AHolderKilledAtAnyWindowHasItsTaskRedelivered,
                            AHolderKilledAcknowledgingIsCountedExactlyOnce,
                            OnlyTheHoldingThreadAcknowledges, RedeliveryWaitsForRoom,
                            RecovererKilledMidRedeliveryIsFinishedByTheNext);
SHUTTLE_INSTANTIATE_FOR_EVERY_SHAPE(RedeliveryTest, JoinableQueueTypes);

}  // namespace
}  // namespace shuttle
