// shuttle::asio (asio/include/shuttle/asio.hpp): async gets, puts, receives and sends in an
// io_context, fed by other processes; every completion token kind; cancel(); shutdown with
// operations pending.
#include "shuttle/asio.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <vector>

#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "support.hpp"

using namespace shuttle;
using namespace std::chrono_literals;
namespace net = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto patience = 5000ms;

/// Runs `io` until it has no work left, at most `patience` (then fails the test).
void run_bounded(net::io_context& io) {
    io.run_for(patience);
    EXPECT_TRUE(io.stopped()) << "the io_context still had work after " << patience.count()
                              << " ms";
}

template <class F>
Process spawn(F body) {
    Process child(std::move(body), ProcessOptions{.daemon = true});
    child.start();
    return child;
}

}  // namespace

TEST(Asio, CallbackGetsItemsPutByAnotherProcess) {
    auto queue = Queue<uint64_t>::anonymous(4);
    net::io_context io;
    asio::AsyncQueue jobs(io.get_executor(), queue);
    std::vector<uint64_t> got;
    std::function<void(error_code, uint64_t)> on_item = [&](error_code ec, uint64_t item) {
        if (ec) {
            EXPECT_TRUE(asio::is(ec, errc::shut_down)) << ec.message();
            return;
        }
        got.push_back(item);
        jobs.async_get(on_item);
    };
    jobs.async_get(on_item);
    Process producer = spawn([&] {
        for (uint64_t i = 0; i < 20; ++i) {
            if (!queue.put_for(i, patience)) return 1;
        }
        queue.shutdown();
        return 0;
    });
    run_bounded(io);
    EXPECT_TRUE(test::join_and_expect_exit(producer, 0));
    ASSERT_EQ(got.size(), 20u);
    for (uint64_t i = 0; i < 20; ++i) EXPECT_EQ(got[i], i);
}

TEST(Asio, CoroutinesPutAndGetAcrossProcesses) {
    auto requests = Queue<uint64_t>::anonymous(2);
    auto replies = Queue<uint64_t>::anonymous(2);
    Process doubler = spawn([&] {
        while (auto item = requests.get_for(patience)) {
            if (!replies.put_for(*item * 2, patience)) return 1;
        }
        return 0;
    });
    net::io_context io;
    asio::AsyncQueue out(io.get_executor(), requests);
    asio::AsyncQueue in(io.get_executor(), replies);
    uint64_t sum = 0;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            for (uint64_t i = 1; i <= 10; ++i) {
                co_await out.async_put(i, net::use_awaitable);
                sum += co_await in.async_get(net::use_awaitable);
            }
            requests.shutdown();
        },
        net::detached);
    run_bounded(io);
    EXPECT_EQ(sum, 110u);
    EXPECT_TRUE(test::join_and_expect_exit(doubler, 0));
}

TEST(Asio, FutureCompletesWithTheItem) {
    auto queue = Queue<uint64_t>::anonymous(4);
    net::io_context io;
    asio::AsyncQueue jobs(io.get_executor(), queue);
    ASSERT_TRUE(queue.try_put(42));
    std::future<uint64_t> item = jobs.async_get(net::use_future);
    run_bounded(io);
    EXPECT_EQ(item.get(), 42u);
}

// A pending get completes with operation_aborted on cancel(), not before (a timer cancels it,
// the way a timeout would be written).
TEST(Asio, CancelCompletesAPendingGetWithOperationAborted) {
    auto queue = Queue<uint64_t>::anonymous(4);
    net::io_context io;
    asio::AsyncQueue jobs(io.get_executor(), queue);
    error_code result;
    bool completed = false;
    jobs.async_get([&](error_code ec, uint64_t) {
        completed = true;
        result = ec;
    });
    net::steady_timer timer(io, 10ms);
    timer.async_wait([&](error_code) {
        EXPECT_FALSE(completed);
        jobs.cancel();
    });
    run_bounded(io);
    EXPECT_TRUE(completed);
    EXPECT_EQ(result, net::error::operation_aborted);
    EXPECT_TRUE(queue.try_put(1));  // the queue is untouched
}

// shutdown() in another process completes the pending get and the pending put with the
// library's error.
TEST(Asio, ShutdownCompletesPendingOperations) {
    auto empty = Queue<uint64_t>::anonymous(1);
    auto full = Queue<uint64_t>::anonymous(1);
    ASSERT_TRUE(full.try_put(1));
    net::io_context io;
    asio::AsyncQueue getter(io.get_executor(), empty);
    asio::AsyncQueue putter(io.get_executor(), full);
    error_code get_result, put_result;
    getter.async_get([&](error_code ec, uint64_t) { get_result = ec; });
    putter.async_put(uint64_t{2}, [&](error_code ec) { put_result = ec; });
    io.poll();  // both wait now
    Process closer = spawn([&] {
        empty.shutdown();
        full.shutdown();
        return 0;
    });
    run_bounded(io);
    EXPECT_TRUE(asio::is(get_result, errc::shut_down)) << get_result.message();
    EXPECT_TRUE(asio::is(put_result, errc::shut_down)) << put_result.message();
    EXPECT_TRUE(test::join_and_expect_exit(closer, 0));
}

TEST(Asio, PipeRecvAndSendAcrossProcesses) {
    auto [mine, theirs] = Pipe();
    Process echo = spawn([&] {
        mine.close();
        while (auto message = theirs.recv()) {
            if (!theirs.send(*message + "!")) return 1;
        }
        return 0;
    });
    theirs.close();
    net::io_context io;
    asio::AsyncConnection connection(io.get_executor(), mine);
    std::vector<std::string> replies;
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
            for (const char* word : {"a", "bb", "ccc"}) {
                co_await connection.async_send(word, net::use_awaitable);
                replies.push_back(co_await connection.async_recv(net::use_awaitable));
            }
            mine.close();
        },
        net::detached);
    run_bounded(io);
    EXPECT_EQ(replies, (std::vector<std::string>{"a!", "bb!", "ccc!"}));
    EXPECT_TRUE(test::join_and_expect_exit(echo, 0));
}
