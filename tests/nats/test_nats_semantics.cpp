// One semantic suite, two backends: the same tests against the local shared-memory queue and
// the NATS JetStream queue, where their semantics agree. Where they differ (docs/nats.md:
// at-least-once delivery, task_done() per handle, size() a round trip) the remote behaviour
// has its own tests in test_nats_queue.cpp and test_nats_failures.cpp.
#include <gtest/gtest.h>

#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "nats_support.hpp"
#include "shuttle/nats.hpp"
#include "shuttle/queue.hpp"

namespace shuttle::test {
namespace {

struct LocalBackend {
    void start() {}
    auto plain(std::size_t capacity) { return shuttle::Queue<long>::anonymous(capacity); }
    auto joinable(std::size_t capacity) {
        return shuttle::JoinableQueue<long>::anonymous(capacity, {.redelivery = true});
    }
};

struct NatsBackend {
    void start() {
        if (!have_nats_server()) GTEST_SKIP() << "nats-server is not installed";
        server.start();
        connection.emplace(nats::Connection::connect(test_connection({server.url()})));
    }
    auto plain(std::size_t capacity) {
        return nats::Queue<long>::create(*connection, next_name(), capacity);
    }
    auto joinable(std::size_t capacity) {
        return nats::JoinableQueue<long>::create(*connection, next_name(), capacity);
    }
    std::string next_name() { return "semantics" + std::to_string(counter++); }

    NatsServer server;
    std::optional<nats::Connection> connection;
    int counter = 0;
};

template <class Backend>
class QueueSemantics : public ::testing::Test {
  protected:
    void SetUp() override { backend.start(); }
    Backend backend;
};

using Backends = ::testing::Types<LocalBackend, NatsBackend>;
class BackendNames {
  public:
    template <class Backend>
    static std::string GetName(int) {
        return std::is_same_v<Backend, LocalBackend> ? "Local" : "Nats";
    }
};
TYPED_TEST_SUITE(QueueSemantics, Backends, BackendNames);

TYPED_TEST(QueueSemantics, OneProducerItemsComeOutInOrder) {
    auto queue = this->backend.plain(8);
    for (long item = 0; item < 5; ++item) ASSERT_TRUE(queue.put(item));
    for (long item = 0; item < 5; ++item) EXPECT_EQ(*queue.get_for(2s), item);
}

TYPED_TEST(QueueSemantics, EmptyQueueTryGetIsEmptyAndGetForTimesOut) {
    auto queue = this->backend.plain(4);
    EXPECT_EQ(queue.try_get().error(), errc::empty);
    EXPECT_EQ(queue.get_for(20ms).error(), errc::timeout);
}

TYPED_TEST(QueueSemantics, FullQueueRefusesTryPutAndPutForTimesOut) {
    auto queue = this->backend.plain(2);
    ASSERT_TRUE(queue.try_put(1));
    ASSERT_TRUE(queue.try_put(2));
    EXPECT_EQ(queue.try_put(3), errc::full);
    EXPECT_EQ(queue.put_for(3, 30ms), errc::timeout);
    EXPECT_EQ(*queue.get_for(2s), 1);
    EXPECT_TRUE(queue.try_put(3));  // room again
}

TYPED_TEST(QueueSemantics, BlockedPutCompletesWhenAGetterMakesRoom) {
    auto queue = this->backend.plain(1);
    ASSERT_TRUE(queue.put(1));
    std::jthread producer([&] { EXPECT_TRUE(queue.put_for(2, 10s)); });
    EXPECT_EQ(*queue.get_for(2s), 1);
    EXPECT_EQ(*queue.get_for(10s), 2);
}

TYPED_TEST(QueueSemantics, ShutdownRefusesPutsAndGettersDrainThenSeeClosed) {
    auto queue = this->backend.plain(4);
    ASSERT_TRUE(queue.put(1));
    ASSERT_TRUE(queue.put(2));
    EXPECT_FALSE(queue.closed());
    queue.shutdown();
    EXPECT_TRUE(queue.closed());
    EXPECT_EQ(queue.try_put(3), errc::closed);
    EXPECT_EQ(queue.put(3), errc::closed);
    EXPECT_EQ(*queue.get_for(2s), 1);
    EXPECT_EQ(*queue.get_for(2s), 2);
    EXPECT_EQ(queue.get_for(2s).error(), errc::closed);
    EXPECT_EQ(queue.try_get().error(), errc::closed);
}

TYPED_TEST(QueueSemantics, ShutdownWakesABlockedGetter) {
    auto queue = this->backend.plain(4);
    std::atomic<bool> returned{false};
    std::jthread getter([&] {
        EXPECT_EQ(queue.get_for(10s).error(), errc::closed);
        returned = true;
    });
    EXPECT_FALSE(returned);
    queue.shutdown();
    getter.join();
    EXPECT_TRUE(returned);
}

TYPED_TEST(QueueSemantics, ShutdownImmediateDiscardsWhatIsQueued) {
    auto queue = this->backend.joinable(4);
    for (long item = 0; item < 3; ++item) ASSERT_TRUE(queue.put(item));
    EXPECT_EQ(queue.shutdown(true), 3u);
    EXPECT_EQ(queue.join_for(3s), errc::ok);
    EXPECT_EQ(queue.try_get().error(), errc::closed);
}

TYPED_TEST(QueueSemantics, JoinWaitsForEveryTaskDone) {
    auto queue = this->backend.joinable(8);
    for (long item = 0; item < 3; ++item) ASSERT_TRUE(queue.put(item));
    EXPECT_EQ(queue.unfinished_tasks(), 3u);
    EXPECT_EQ(queue.join_for(20ms), errc::timeout);
    for (long item = 0; item < 3; ++item) {
        ASSERT_TRUE(queue.get_for(2s));
        ASSERT_TRUE(queue.task_done());
    }
    EXPECT_EQ(queue.join_for(3s), errc::ok);
    EXPECT_EQ(queue.unfinished_tasks(), 0u);
}

TYPED_TEST(QueueSemantics, TaskDoneWithNothingPutOverflows) {
    auto queue = this->backend.joinable(4);
    EXPECT_EQ(queue.task_done(), errc::task_done_overflow);
}

TYPED_TEST(QueueSemantics, TaskAcknowledgedTwiceIsNotOwner) {
    auto queue = this->backend.joinable(4);
    ASSERT_TRUE(queue.put(7));
    auto task = queue.get_task_for(2s);
    ASSERT_TRUE(task);
    EXPECT_EQ(task->item, 7);
    EXPECT_TRUE(queue.task_done(*task));
    EXPECT_EQ(queue.task_done(*task), errc::not_owner);
    EXPECT_EQ(queue.join_for(3s), errc::ok);
}

TYPED_TEST(QueueSemantics, StopTokenCancelsABlockedGet) {
    auto queue = this->backend.plain(4);
    std::stop_source stop;
    std::jthread getter([&] { EXPECT_EQ(queue.get(stop.get_token()).error(), errc::cancelled); });
    stop.request_stop();
}

}  // namespace
}  // namespace shuttle::test
