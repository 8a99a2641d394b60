// Empty handles (issue 13 §2): every operation on a default-constructed or moved-from queue,
// byte queue, joinable queue, pipe Connection or Process returns or throws a clear error
// (errc::closed for queues and connections, errc::invalid_argument "not started" for a
// Process), never crashes, and never touches the handle it was moved to: close() on a
// moved-from queue leaves the moved-to queue open. Each case runs in a child, so a crash is
// a failed test rather than the end of the suite.
#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;

template <class Call>
void expect_throws(errc code, Call call) {
    try {
        call();
        ADD_FAILURE() << "no exception; expected " << make_error_code(code).message();
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), code) << error.what();
    }
}

/// How the typed test makes, empties and checks each handle type.
template <class Handle>
struct Adapter;

template <class Queue, bool Bytes, bool Joinable>
struct QueueAdapter {
    static Queue make() {
        if constexpr (Bytes) {
            return Queue::anonymous(4, 16, {.redelivery = Joinable});
        } else {
            return Queue::anonymous(4, {.redelivery = Joinable});
        }
    }

    /// Every operation of the handle on an empty one.
    static void expect_empty(Queue& queue) {
        const auto soon = steady_clock::now() + 10ms;
        std::array<std::byte, 16> buffer{};
        if constexpr (Bytes) {
            EXPECT_EQ(queue.put("a"), errc::closed);
            EXPECT_EQ(queue.put(std::as_bytes(std::span("a", 1))), errc::closed);
            EXPECT_EQ(queue.try_put("a"), errc::closed);
            EXPECT_EQ(queue.try_put(std::as_bytes(std::span("a", 1))), errc::closed);
            EXPECT_EQ(queue.put_for("a", 10ms), errc::closed);
            EXPECT_EQ(queue.put_until("a", soon), errc::closed);
            expect_throws(errc::closed, [&] { queue.put_nowait("a"); });
            EXPECT_EQ(queue.get(buffer).error(), errc::closed);
            EXPECT_EQ(queue.try_get(buffer).error(), errc::closed);
            EXPECT_EQ(queue.get_for(buffer, 10ms).error(), errc::closed);
            EXPECT_EQ(queue.get_until(buffer, soon).error(), errc::closed);
            expect_throws(errc::closed, [&] { (void)queue.get_nowait(buffer); });
            EXPECT_EQ(queue.max_message_size(), 0u);
        } else {
            EXPECT_EQ(queue.put(1), errc::closed);
            EXPECT_EQ(queue.try_put(1), errc::closed);
            EXPECT_EQ(queue.put_for(1, 10ms), errc::closed);
            EXPECT_EQ(queue.put_until(1, soon), errc::closed);
            expect_throws(errc::closed, [&] { queue.put_nowait(1); });
            EXPECT_EQ(queue.get().error(), errc::closed);
            EXPECT_EQ(queue.try_get().error(), errc::closed);
            EXPECT_EQ(queue.get_for(10ms).error(), errc::closed);
            EXPECT_EQ(queue.get_until(soon).error(), errc::closed);
            expect_throws(errc::closed, [&] { (void)queue.get_nowait(); });
        }
        EXPECT_TRUE(queue.closed());
        EXPECT_EQ(queue.size(), 0u);
        EXPECT_TRUE(queue.empty());
        EXPECT_EQ(queue.capacity(), 0u);
        EXPECT_EQ(queue.waiting_getters(), 0u);
        EXPECT_EQ(queue.waiting_putters(), 0u);
        EXPECT_EQ(queue.name(), "");
        EXPECT_EQ(queue.fd(), -1);
        expect_throws(errc::closed, [&] { queue.set_inheritable(true); });
        EXPECT_FALSE(queue.recover());
        EXPECT_EQ(queue.lost_count(), 0u);
        EXPECT_TRUE(queue.lost_items().empty());
        EXPECT_TRUE(queue.stalls().empty());
        EXPECT_FALSE(queue.describe_recovery().empty());
        if constexpr (Joinable) {
            EXPECT_EQ(queue.task_done(), errc::closed);
            EXPECT_EQ(queue.task_done(TaskId{}), errc::closed);
            EXPECT_EQ(queue.join(), errc::closed);
            EXPECT_EQ(queue.join_for(10ms), errc::closed);
            EXPECT_EQ(queue.join_until(soon), errc::closed);
            EXPECT_EQ(queue.unfinished_tasks(), 0u);
            EXPECT_EQ(queue.settled_tasks(), 0u);
            EXPECT_FALSE(queue.redelivery());
            EXPECT_EQ(queue.redelivered_count(), 0u);
            if constexpr (Bytes) {
                EXPECT_EQ(queue.get_task(buffer).error(), errc::closed);
                EXPECT_EQ(queue.try_get_task(buffer).error(), errc::closed);
                EXPECT_EQ(queue.get_task_for(buffer, 10ms).error(), errc::closed);
                EXPECT_EQ(queue.get_task_until(buffer, soon).error(), errc::closed);
            } else {
                EXPECT_EQ(queue.get_task().error(), errc::closed);
                EXPECT_EQ(queue.try_get_task().error(), errc::closed);
                EXPECT_EQ(queue.get_task_for(10ms).error(), errc::closed);
                EXPECT_EQ(queue.get_task_until(soon).error(), errc::closed);
            }
        }
        // Last: these would close (or drain) the moved-to queue if they reached it.
        queue.close();
        EXPECT_EQ(queue.shutdown(), 0u);
        EXPECT_EQ(queue.shutdown(true), 0u);
    }

    static void put_one(Queue& queue) {
        if constexpr (Bytes) {
            ASSERT_EQ(queue.put("x"), errc::ok);
        } else {
            ASSERT_EQ(queue.put(42), errc::ok);
        }
    }

    /// The handle (one item put through it before) is open, holds that item and works.
    static void expect_working(Queue& queue) {
        EXPECT_FALSE(queue.closed());
        EXPECT_EQ(queue.capacity(), 4u);
        EXPECT_EQ(queue.size(), 1u) << "an item was discarded through the empty handle";
        if constexpr (Bytes) {
            std::array<std::byte, 16> buffer{};
            auto got = queue.try_get(buffer);
            ASSERT_TRUE(got);
            EXPECT_EQ(*got, 1u);
        } else {
            auto got = queue.try_get();
            ASSERT_TRUE(got);
            EXPECT_EQ(*got, 42);
        }
        if constexpr (Joinable) {
            EXPECT_EQ(queue.task_done(), errc::ok);
        }
        put_one(queue);
    }
};

template <>
struct Adapter<Queue<int>> : QueueAdapter<Queue<int>, false, false> {};
template <>
struct Adapter<JoinableQueue<int>> : QueueAdapter<JoinableQueue<int>, false, true> {};
template <>
struct Adapter<ByteQueue> : QueueAdapter<ByteQueue, true, false> {};
template <>
struct Adapter<JoinableByteQueue> : QueueAdapter<JoinableByteQueue, true, true> {};

/// A Connection: the receiving end of a duplex pipe, whose peer is kept alive alongside.
struct ConnectionPair {
    Connection end;
    Connection peer;
};

template <>
struct Adapter<ConnectionPair> {
    static ConnectionPair make() {
        auto [end, peer] = Pipe();
        return {std::move(end), std::move(peer)};
    }
    static void put_one(ConnectionPair& pair) { ASSERT_EQ(pair.peer.send("x"), errc::ok); }
    static void expect_empty(ConnectionPair& pair) {
        Connection& end = pair.end;
        std::array<std::byte, 8> buffer{};
        const auto soon = steady_clock::now() + 10ms;
        const auto bytes = std::as_bytes(std::span("a", 1));
        expect_throws(errc::closed, [&] { (void)end.send("a"); });
        expect_throws(errc::closed, [&] { (void)end.try_send("a"); });
        expect_throws(errc::closed, [&] { (void)end.send_for("a", 10ms); });
        expect_throws(errc::closed, [&] { (void)end.send_until("a", soon); });
        expect_throws(errc::closed, [&] { (void)end.send_bytes(bytes); });
        expect_throws(errc::closed, [&] { (void)end.try_send_bytes(bytes); });
        expect_throws(errc::closed, [&] { (void)end.send_bytes_for(bytes, 10ms); });
        expect_throws(errc::closed, [&] { (void)end.send_bytes_until(bytes, soon); });
        expect_throws(errc::closed, [&] { (void)end.send_value(1); });
        expect_throws(errc::closed, [&] { (void)end.recv(); });
        expect_throws(errc::closed, [&] { (void)end.try_recv(); });
        expect_throws(errc::closed, [&] { (void)end.recv_for(10ms); });
        expect_throws(errc::closed, [&] { (void)end.recv_until(soon); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes(); });
        expect_throws(errc::closed, [&] { (void)end.try_recv_bytes(); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_for(10ms); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_until(soon); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_into(buffer); });
        expect_throws(errc::closed, [&] { (void)end.try_recv_bytes_into(buffer); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_into_for(buffer, 10ms); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_into_until(buffer, soon); });
        expect_throws(errc::closed, [&] { (void)end.recv_value<int>(); });
        expect_throws(errc::closed, [&] { (void)end.recv_or_throw(); });
        expect_throws(errc::closed, [&] { (void)end.recv_bytes_or_throw(); });
        expect_throws(errc::closed, [&] { (void)end.message_length(); });
        expect_throws(errc::closed, [&] { (void)end.poll(); });
        expect_throws(errc::closed, [&] { (void)end.poll_for(10ms); });
        expect_throws(errc::closed, [&] { (void)end.poll_until(soon); });
        Connection* connections[] = {&end};
        expect_throws(errc::closed, [&] { (void)wait(connections, soon); });
        expect_throws(errc::closed, [&] { (void)wait_for(connections, 10ms); });
        EXPECT_TRUE(end.closed());
        EXPECT_FALSE(end.readable());
        EXPECT_FALSE(end.writable());
        EXPECT_EQ(end.capacity(), 0u);
        EXPECT_EQ(end.receive_descriptor(), -1);
        const PipeActivity activity = end.activity();
        EXPECT_FALSE(activity.incoming_receiver_parked || activity.outgoing_sender_parked);
        end.close();
    }
    static void expect_working(ConnectionPair& pair) {
        EXPECT_FALSE(pair.end.closed());
        auto got = pair.end.try_recv();
        ASSERT_TRUE(got);
        EXPECT_EQ(*got, "x");
        EXPECT_EQ(pair.end.send("y"), errc::ok);
        EXPECT_EQ(pair.peer.recv().value(), "y");
    }
};

/// A Process: started, blocked until the test lets it finish (it reads a byte from a pipe).
struct ProcessUnderTest {
    Process process;
    int go[2] = {-1, -1};
};

template <>
struct Adapter<ProcessUnderTest> {
    static ProcessUnderTest make() {
        ProcessUnderTest made;
        if (::pipe(made.go) != 0) throw Error(errc::system, "pipe");
        made.process = Process(
            [fd = made.go[0]] {
                char byte = 0;
                return ::read(fd, &byte, 1) == 1 ? 0 : 1;
            },
            {.daemon = true});
        made.process.start();
        return made;
    }
    static void put_one(ProcessUnderTest&) {}
    static void expect_empty(ProcessUnderTest& empty) {
        Process& process = empty.process;
        expect_throws(errc::invalid_argument, [&] { process.start(); });
        expect_throws(errc::invalid_argument, [&] { process.join(); });
        expect_throws(errc::invalid_argument, [&] { (void)process.join_for(10ms); });
        expect_throws(errc::invalid_argument,
                      [&] { (void)process.join_until(steady_clock::now() + 10ms); });
        EXPECT_FALSE(process.is_alive());
        EXPECT_EQ(process.pid(), 0);
        EXPECT_FALSE(process.exitcode().has_value());
        // Would kill the moved-to child if they reached it.
        process.terminate();
        process.kill();
        process.signal(SIGKILL);
    }
    static void expect_working(ProcessUnderTest& made) {
        EXPECT_TRUE(made.process.is_alive()) << "the moved-to child was signalled";
        ASSERT_EQ(::write(made.go[1], "g", 1), 1);
        ASSERT_TRUE(test::join_and_expect_exit(made.process, 0));
    }
};

template <class Handle>
class EmptyHandle : public ::testing::Test {};

using HandleTypes = ::testing::Types<Queue<int>, JoinableQueue<int>, ByteQueue, JoinableByteQueue,
                                     ConnectionPair, ProcessUnderTest>;
TYPED_TEST_SUITE(EmptyHandle, HandleTypes);

/// Runs `body` in a child: a crash there fails this test instead of ending the suite.
template <class Body>
void in_child(Body body) {
    EXPECT_EQ(test::run_child([&] {
                  body();
                  return ::testing::Test::HasFailure() ? 1 : 0;
              }),
              0);
}

TYPED_TEST(EmptyHandle, DefaultConstructedGivesClearErrors) {
    in_child([] {
        TypeParam empty{};
        Adapter<TypeParam>::expect_empty(empty);
    });
}

TYPED_TEST(EmptyHandle, MovedFromGivesClearErrorsAndLeavesTheMovedToAlone) {
    in_child([] {
        TypeParam source = Adapter<TypeParam>::make();
        Adapter<TypeParam>::put_one(source);
        TypeParam target = std::move(source);
        Adapter<TypeParam>::expect_empty(source);  // NOLINT(bugprone-use-after-move): the point
        Adapter<TypeParam>::expect_working(target);
    });
}

TYPED_TEST(EmptyHandle, MoveAssignedFromGivesClearErrorsAndLeavesTheMovedToAlone) {
    in_child([] {
        TypeParam source = Adapter<TypeParam>::make();
        Adapter<TypeParam>::put_one(source);
        TypeParam target = Adapter<TypeParam>::make();
        target = std::move(source);
        Adapter<TypeParam>::expect_empty(source);  // NOLINT(bugprone-use-after-move): the point
        Adapter<TypeParam>::expect_working(target);
        TypeParam again{};
        again = std::move(target);                 // into a default-constructed one
        Adapter<TypeParam>::expect_empty(target);  // NOLINT(bugprone-use-after-move)
    });
}

}  // namespace
}  // namespace shuttle
