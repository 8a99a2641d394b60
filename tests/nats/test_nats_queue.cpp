// shuttle::nats against one real nats-server: what is remote-only (connections, opening,
// at-least-once tasks, batches) and the notes' scenarios across processes.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nats_support.hpp"
#include "shuttle/nats.hpp"

namespace shuttle::test {
namespace {

class NatsQueue : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_nats_server()) GTEST_SKIP() << "nats-server is not installed";
        server.start();
        connection.emplace(nats::Connection::connect(test_connection({server.url()})));
    }
    std::string next_name() { return "q" + std::to_string(counter_++); }

    NatsServer server;
    std::optional<nats::Connection> connection;

  private:
    int counter_ = 0;
};

TEST_F(NatsQueue, ConnectToNoServerIsUnavailable) {
    auto options = test_connection({"nats://127.0.0.1:" + std::to_string(free_loopback_port())});
    try {
        (void)nats::Connection::connect(options);
        FAIL() << "connected to nothing";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::unavailable) << error.what();
    }
}

TEST(NatsConnection, CredentialsArePassedThrough) {
    if (!have_nats_server()) GTEST_SKIP() << "nats-server is not installed";
    NatsServer server({.extra_arguments = {"--user", "shuttle", "--pass", "s3cret"}});
    server.start();
    auto options = test_connection({server.url()});
    options.user = "shuttle";
    options.password = "wrong";
    EXPECT_THROW((void)nats::Connection::connect(options), Error);
    options.password = "s3cret";
    auto connection = nats::Connection::connect(options);
    EXPECT_TRUE(connection.connected());
    auto queue = nats::Queue<long>::create(connection, "authorised", 2);
    EXPECT_TRUE(queue.put(1));
}

TEST_F(NatsQueue, EveryCallTimesOutWhileTheServerIsDown) {
    auto options = test_connection({server.url()});
    options.call_timeout = 200ms;
    auto impatient = nats::Connection::connect(options);
    auto queue = nats::JoinableQueue<long>::create(impatient, "down", 4);
    ASSERT_TRUE(queue.put(1));
    server.kill();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(queue.put_for(2, 300ms), errc::timeout);
    EXPECT_EQ(queue.get_for(300ms).error(), errc::timeout);
    EXPECT_EQ(queue.join_for(300ms), errc::timeout);
    EXPECT_EQ(queue.try_put(3), errc::timeout);  // within call_timeout
    EXPECT_THROW((void)queue.size(), Error);     // after five call timeouts
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    EXPECT_FALSE(impatient.connected());
}

TEST_F(NatsQueue, CreateOpenAndTheirErrors) {
    auto queue = nats::Queue<long>::create(*connection, "jobs", 4);
    EXPECT_EQ(queue.capacity(), 4u);
    EXPECT_THROW((void)nats::Queue<long>::create(*connection, "jobs", 4), Error);
    auto opened = nats::Queue<long>::open(*connection, "jobs");
    EXPECT_EQ(opened.capacity(), 4u);
    auto expect_errc = [](auto make, errc expected) {
        try {
            make();
            ADD_FAILURE() << "no error";
        } catch (const Error& error) {
            EXPECT_EQ(error.condition(), expected) << error.what();
        }
    };
    expect_errc([&] { (void)nats::Queue<long>::open(*connection, "missing"); }, errc::not_found);
    expect_errc([&] { (void)nats::Queue<std::string>::open(*connection, "jobs"); },
                errc::type_mismatch);
    expect_errc([&] { (void)nats::JoinableQueue<long>::open(*connection, "jobs"); },
                errc::kind_mismatch);
    expect_errc([&] { (void)nats::Queue<long>::open_or_create(*connection, "jobs", 5); },
                errc::capacity_mismatch);
    expect_errc([&] { (void)nats::Queue<long>::create(*connection, "bad.name", 5); },
                errc::invalid_name);
    expect_errc([&] { (void)nats::Queue<long>::create(*connection, "zero", 0); },
                errc::invalid_argument);
    // Two handles, one queue.
    ASSERT_TRUE(queue.put(7));
    EXPECT_EQ(*opened.get_for(2s), 7);
    nats::Queue<long>::remove(*connection, "jobs");
    expect_errc([&] { (void)nats::Queue<long>::open(*connection, "jobs"); }, errc::not_found);
}

TEST_F(NatsQueue, AnyEncodableTypeTravels) {
    auto queue = nats::Queue<std::vector<std::string>>::create(*connection, next_name(), 4);
    ASSERT_TRUE(queue.put({"a", "bc", std::string(1000, 'x')}));
    auto got = queue.get_for(2s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->size(), 3u);
    EXPECT_EQ((*got)[2].size(), 1000u);
}

TEST_F(NatsQueue, ByteQueueBufferTooSmallConsumesNothing) {
    auto queue = nats::ByteQueue::create(*connection, next_name(), 4, 16);
    EXPECT_EQ(queue.try_put(std::string(17, 'x')), errc::too_large);
    ASSERT_TRUE(queue.put("hello world"));
    std::byte small[4];
    EXPECT_EQ(queue.get_for(small, 2s).error(), errc::buffer_too_small);
    std::byte big[16];
    auto length = queue.get_for(big, 2s);
    ASSERT_TRUE(length);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(big), *length), "hello world");
}

TEST_F(NatsQueue, TaskHeldPastAckWaitIsDeliveredAgain) {
    auto queue =
        nats::JoinableQueue<long>::create(*connection, next_name(), 4, {.ack_wait = 300ms});
    ASSERT_TRUE(queue.put(1));
    auto task = queue.get_task_for(2s);
    ASSERT_TRUE(task);
    // Not acknowledged within ack_wait: another getter receives it again.
    auto again = nats::JoinableQueue<long>::open(*connection, queue.name());
    auto redelivered = again.get_task_for(3s);
    ASSERT_TRUE(redelivered);
    EXPECT_EQ(redelivered->item, 1);
    EXPECT_GE(again.redelivered_count(), 1u);
    EXPECT_TRUE(again.task_done(*redelivered));
    EXPECT_EQ(again.task_done(*task), errc::invalid_argument);  // another handle's task
    EXPECT_EQ(queue.join_for(3s), errc::ok);
}

TEST_F(NatsQueue, BatchesPutAndGetMany) {
    auto queue = nats::JoinableQueue<long>::create(*connection, next_name(), 1000);
    std::vector<long> items(500);
    std::iota(items.begin(), items.end(), 0);
    ASSERT_TRUE(queue.put_many(items));
    EXPECT_EQ(queue.unfinished_tasks(), 500u);
    std::vector<long> got;
    while (got.size() < items.size()) {
        auto batch = queue.get_many_for(128, 2s);
        ASSERT_TRUE(batch) << make_error_code(batch.error()).message();
        EXPECT_LE(batch->size(), 128u);
        for (long item : *batch) {
            got.push_back(item);
            ASSERT_TRUE(queue.task_done());
        }
    }
    EXPECT_EQ(got, items);  // one producer: its order
    EXPECT_EQ(queue.join_for(3s), errc::ok);
}

TEST_F(NatsQueue, PutManyWaitsForRoom) {
    auto queue = nats::Queue<long>::create(*connection, next_name(), 10);
    std::vector<long> items(40);
    std::iota(items.begin(), items.end(), 0);
    std::vector<long> got;
    std::thread consumer([&] {
        while (got.size() < items.size()) {
            auto item = queue.get_for(5s);
            if (!item) return;
            got.push_back(*item);
        }
    });
    EXPECT_TRUE(queue.put_many_for(std::span<const long>(items), 10s));
    consumer.join();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, items);
    EXPECT_EQ(queue.put_many_for(std::span<const long>(items), 50ms), errc::timeout);
}

// ---- the notes' scenarios, each process its own client ------------------------------------

std::vector<long> range_of(long count) {
    std::vector<long> all(static_cast<std::size_t>(count));
    std::iota(all.begin(), all.end(), 0);
    return all;
}

TEST_F(NatsQueue, Notes1x1) {
    const std::string name = next_name();
    auto queue = nats::Queue<long>::create(*connection, name, 10);
    Child consumer("consume", {server.url(), name, "plain"});
    Child producer("produce", {server.url(), name, "plain", "0", "100", "1"});
    EXPECT_EQ(producer.join(), 0) << producer.output();
    EXPECT_EQ(consumer.join(), 0) << consumer.output();
    EXPECT_EQ(items_in(consumer.output()), range_of(100));  // one producer, one consumer: FIFO
}

void expect_3x2(NatsServer& server, const std::string& name, bool with_shutdown,
                nats::Queue<long>& queue) {
    std::vector<Child> consumers;
    for (int c = 0; c < 2; ++c)
        consumers.emplace_back("consume", std::vector<std::string>{server.url(), name, "plain"});
    std::vector<Child> producers;
    for (int p = 0; p < 3; ++p) {
        producers.emplace_back("produce",
                               std::vector<std::string>{server.url(), name, "plain",
                                                        std::to_string(p * 100), "100", "0"});
    }
    for (Child& producer : producers) EXPECT_EQ(producer.join(), 0) << producer.output();
    if (with_shutdown) {
        queue.shutdown();
        EXPECT_EQ(queue.try_put(1), errc::closed);
    } else {
        for (int c = 0; c < 2; ++c) ASSERT_TRUE(queue.put(-1));
    }
    std::vector<long> all;
    for (Child& consumer : consumers) {
        EXPECT_EQ(consumer.join(), 0) << consumer.output();
        auto items = items_in(consumer.output());
        // Each producer's items reach one consumer in the order they were put.
        for (long p = 0; p < 3; ++p) {
            std::vector<long> mine;
            std::copy_if(items.begin(), items.end(), std::back_inserter(mine),
                         [p](long item) { return item / 100 == p; });
            EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
        }
        all.insert(all.end(), items.begin(), items.end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, range_of(300));  // each exactly once
}

TEST_F(NatsQueue, Notes3x2WithSentinels) {
    const std::string name = next_name();
    auto queue = nats::Queue<long>::create(*connection, name, 10);
    expect_3x2(server, name, false, queue);
}

TEST_F(NatsQueue, Notes3x2WithShutdown) {
    const std::string name = next_name();
    auto queue = nats::Queue<long>::create(*connection, name, 10);
    expect_3x2(server, name, true, queue);
}

TEST_F(NatsQueue, NotesJoinableJoin) {
    const std::string name = next_name();
    auto queue = nats::JoinableQueue<long>::create(*connection, name, 10);
    std::vector<Child> workers;
    for (int w = 0; w < 2; ++w)
        workers.emplace_back("consume", std::vector<std::string>{server.url(), name, "joinable"});
    for (long item = 0; item < 50; ++item) ASSERT_TRUE(queue.put(item));
    // join() returns once every item was task_done()'d by the workers.
    ASSERT_EQ(queue.join_for(20s), errc::ok);
    EXPECT_EQ(queue.unfinished_tasks(), 0u);
    std::vector<long> all;
    for (Child& worker : workers) {
        auto items = items_in(worker.output());
        all.insert(all.end(), items.begin(), items.end());
    }
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, range_of(50));
    queue.shutdown();
    for (Child& worker : workers) EXPECT_EQ(worker.join(), 0) << worker.output();
}

#ifdef SHUTTLE_NATS_EXAMPLE
std::size_t count_lines_starting(const std::string& text, const std::string& prefix) {
    std::size_t count = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) count += line.rfind(prefix, 0) == 0;
    return count;
}

TEST_F(NatsQueue, ReadmeExampleWorkersTakeEveryJobAndEndAtShutdown) {
    std::vector<Child> workers;
    for (int w = 0; w < 2; ++w) {
        workers.emplace_back("exec",
                             std::vector<std::string>{SHUTTLE_NATS_EXAMPLE, "work", server.url()});
    }
    Child producer("exec", {SHUTTLE_NATS_EXAMPLE, "put", server.url()});
    EXPECT_EQ(producer.join(), 0) << producer.output();
    std::string output;
    for (Child& worker : workers) {
        EXPECT_EQ(worker.join(), 0) << worker.output();
        output += worker.output();
    }
    for (int job = 0; job < 5; ++job) {
        EXPECT_EQ(
            count_lines_starting(output, std::to_string(job) + ": job " + std::to_string(job)), 1u)
            << output;
    }
}
#endif

}  // namespace
}  // namespace shuttle::test
