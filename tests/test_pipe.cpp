// shuttle::Pipe / Connection across real processes: the notes' scenario, EOF with fork-inherited
// copies, death of either side, large messages, misuse.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>

#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/event.hpp"
#include "shuttle/pipe.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::join_or_fail;
using test::run_child;
using test::sanitized;

std::vector<std::byte> pattern(std::size_t length, uint32_t seed) {
    std::vector<std::byte> bytes(length);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& b : bytes) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    return bytes;
}

double milliseconds_since(steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(steady_clock::now() - start).count();
}

// The notes' scenario: the parent sends 10 and closes; the child reads until EOF, exactly 10.
TEST(Pipe, NotesScenarioChildReadsUntilEof) {
    auto [parent_end, child_end] = Pipe();
    Process child = spawn([&] {
        parent_end.close();
        int count = 0;
        for (;;) {
            auto message = child_end.recv();
            if (!message) return message.error() == errc::eof && count == 10 ? 0 : 100 + count;
            if (*message != "message " + std::to_string(count)) return 50;
            ++count;
        }
    });
    child_end.close();
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(parent_end.send_for("message " + std::to_string(i), 10s));
    }
    parent_end.close();
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

// EOF only when every copy of the peer end is closed, counting the copy fork() gave a child;
// and the throwing convenience raises EOFError.
TEST(Pipe, EofOnlyAfterEveryCopyOfThePeerEndCloses) {
    auto [receiver, sender] = Pipe(false);
    auto [go_receiver, go_sender] = Pipe(false);
    Process holder = spawn([&] {
        receiver.close();
        go_sender.close();
        if (!sender.send("from the child's copy")) return 1;
        if (!go_receiver.recv()) return 2;  // wait for "close now"
        sender.close();
        return 0;
    });
    go_receiver.close();
    ASSERT_TRUE(sender.send_for("from the parent's copy", 10s));
    sender.close();  // the child's copy is still open
    std::vector<std::string> got;
    for (int i = 0; i < 2; ++i) {
        auto message = receiver.recv_for(10s);
        ASSERT_TRUE(message) << make_error_code(message.error()).message();
        got.push_back(*message);
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got[0], "from the child's copy");
    EXPECT_EQ(got[1], "from the parent's copy");
    auto pending = receiver.recv_for(50ms);
    ASSERT_FALSE(pending);
    EXPECT_EQ(pending.error(), errc::timeout);
    EXPECT_FALSE(receiver.poll());
    ASSERT_TRUE(go_sender.send_for("close now", 10s));
    ASSERT_TRUE(receiver.poll_for(10s));  // EOF is ready: the throwing receive cannot block
    EXPECT_THROW(receiver.recv_or_throw(), EOFError);
    EXPECT_TRUE(receiver.poll());
    EXPECT_EQ(receiver.recv_for(10s).error(), errc::eof);  // and stays at EOF
    ASSERT_TRUE(test::join_and_expect_exit(holder));
}

// A holder of a copy that exec()s another program no longer holds it (close-on-exec): EOF comes
// while that program still runs -- the kernel counts descriptors, no pid polling involved.
TEST(Pipe, EofWhenTheLastHolderExecsAnotherProgram) {
    auto [receiver, sender] = Pipe(false);
    Process execer = spawn([&] {
        receiver.close();
        if (!sender.send("before exec")) return 1;
        execl("/bin/sleep", "sleep", "20", static_cast<char*>(nullptr));
        return 2;
    });
    sender.close();
    EXPECT_EQ(receiver.recv_for(10s).value(), "before exec");
    auto eof = receiver.recv_for(10s);
    EXPECT_EQ(eof.error(), errc::eof);
    EXPECT_TRUE(execer.is_alive());  // sleep is still running
    execer.kill();
    ASSERT_TRUE(join_or_fail(execer));
}

// The sender is SIGKILLed mid-stream: everything it fully sent arrives intact and in order,
// then EOF -- no hang. An idle receiver learns of the death within milliseconds.
TEST(Pipe, EofAfterTheSenderIsKilledMidStream) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 64 * 1024});
    Process child = spawn([&] {
        receiver.close();
        for (uint64_t i = 0;; ++i) {
            auto bytes = pattern(8 + i % 300, static_cast<uint32_t>(i));
            std::memcpy(bytes.data(), &i, sizeof i);
            if (!sender.send_bytes(bytes)) return 1;
        }
    });
    sender.close();
    uint64_t expected = 0;
    auto check = [&](const std::vector<std::byte>& bytes) {
        uint64_t index;
        std::memcpy(&index, bytes.data(), sizeof index);
        auto reference = pattern(8 + expected % 300, static_cast<uint32_t>(expected));
        std::memcpy(reference.data(), &expected, sizeof expected);
        EXPECT_EQ(index, expected);
        EXPECT_TRUE(bytes == reference) << "message " << expected << " corrupt";
        ++expected;
    };
    for (int i = 0; i < 1000; ++i) {
        auto message = receiver.recv_bytes_for(10s);
        ASSERT_TRUE(message) << make_error_code(message.error()).message();
        check(*message);
    }
    child.kill();
    ASSERT_TRUE(join_or_fail(child));
    auto start = steady_clock::now();
    for (;;) {
        auto message = receiver.recv_bytes_for(10s);
        if (!message) {
            EXPECT_EQ(message.error(), errc::eof);
            break;
        }
        check(*message);
    }
    EXPECT_LT(milliseconds_since(start), 2000.0);
    EXPECT_GE(expected, 1000u);
}

TEST(Pipe, IdleReceiverGetsEofWithinMillisecondsOfTheSendersDeath) {
    auto [receiver, sender] = Pipe(false);
    auto [ready_receiver, ready_sender] = Pipe(false);
    Process child = spawn(ProcessOptions{.daemon = true}, [&] {  // daemon: paused forever
        receiver.close();
        (void)ready_sender.send("ready");
        for (;;) pause();
    });
    sender.close();
    ASSERT_EQ(ready_receiver.recv_for(10s).value(), "ready");
    // Kill only once the receiver is parked on its socket (it parks after ~0.2 ms of spinning
    // and yielding): the hang-up itself must wake it.
    test::KillWhen killer(child, [&] { return receiver.activity().incoming_receiver_parked; });
    auto eof = receiver.recv_for(10s);
    const auto now = steady_clock::now();
    killer.join();
    EXPECT_TRUE(killer.ready_seen());
    ASSERT_EQ(eof.error(), errc::eof);
    const double latency_ms = killer.milliseconds_from_kill_to(now);
    EXPECT_LT(latency_ms, 10.0 * (sanitized() ? 5 : 1));
    RecordProperty("eof_after_sigkill_ms", std::to_string(latency_ms));
    ASSERT_TRUE(join_or_fail(child));
}

// A message cut off by its sender's death is reported as such, never delivered in part.
TEST(Pipe, MessageCutOffByTheSendersDeathIsNeverDeliveredInPart) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 64 * 1024});
    Process child = spawn([&] {
        receiver.close();
        if (!sender.send("whole before")) return 1;
        detail::arm_kill_point("pipe.send.chunk_published", 2);  // dies after the 3rd chunk
        (void)sender.send_bytes(pattern(1 << 20, 7));
        return 3;
    });
    sender.close();
    EXPECT_EQ(receiver.recv_for(10s).value(), "whole before");
    auto cut = receiver.recv_bytes_for(10s);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error(), errc::cut_off);
    EXPECT_EQ(receiver.recv_bytes_for(10s).error(), errc::eof);
    ASSERT_TRUE(test::join_and_expect_exit(child, -SIGKILL));
}

// Sending to a closed peer fails at once with broken pipe (no SIGPIPE); the sender's own end
// closing is misuse.
TEST(Pipe, SendToAClosedPeerIsABrokenPipe) {
    auto [receiver, sender] = Pipe(false);
    Process child = spawn([&] {
        sender.close();
        receiver.close();  // explicitly, then exit
        return 0;
    });
    ASSERT_TRUE(join_or_fail(child));
    ASSERT_TRUE(sender.send_for("still open here", 10s));  // the parent's copy is still open
    receiver.close();
    auto start = steady_clock::now();
    EXPECT_EQ(sender.send_for("nobody listens", 10s), errc::broken_pipe);
    EXPECT_EQ(sender.try_send("nobody listens"), errc::broken_pipe);
    EXPECT_LT(milliseconds_since(start), 5.0);
}

// A peer that dies without closing: the sender learns within milliseconds, also when it is
// blocked on a full ring.
TEST(Pipe, BlockedSenderGetsBrokenPipeWhenTheReceiverIsKilled) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 64 * 1024});
    auto [ready_receiver, ready_sender] = Pipe(false);
    Process reader = spawn(ProcessOptions{.daemon = true}, [&] {  // daemon: paused forever
        sender.close();
        (void)ready_sender.send("ready");
        for (;;) pause();  // never reads
    });
    receiver.close();
    ASSERT_EQ(ready_receiver.recv_for(10s).value(), "ready");
    // Fill the ring completely, then block on a message larger than the ring.
    while (sender.try_send_bytes(pattern(1000, 1))) {
    }
    // Kill only once the sender is parked on its socket waiting for room.
    test::KillWhen killer(reader, [&] { return sender.activity().outgoing_sender_parked; });
    status sent = sender.send_bytes_for(pattern(256 * 1024, 2), 10s);
    const auto now = steady_clock::now();
    killer.join();
    EXPECT_TRUE(killer.ready_seen());
    EXPECT_EQ(sent, errc::broken_pipe);
    EXPECT_LT(killer.milliseconds_from_kill_to(now), 10.0 * (sanitized() ? 5 : 1));
    EXPECT_EQ(sender.send_for("again", 10s), errc::broken_pipe);
    ASSERT_TRUE(join_or_fail(reader));
}

// A receiver killed without close(): the sender's first send a millisecond or more after the
// death fails with broken pipe however few sends came since the sender last asked the kernel, and
// a sender sending flat out learns within milliseconds (before the ring fills).
TEST(Pipe, SendAfterTheReceiverIsKilledFailsPromptly) {
    for (const bool flat_out : {false, true}) {
        SCOPED_TRACE(flat_out ? "flat out" : "one send after the death");
        auto [receiver, sender] = Pipe(false);
        Process reader = spawn([&] {
            sender.close();
            for (;;) {
                if (!receiver.recv()) return 1;  // reads until it is killed
            }
        });
        receiver.close();
        for (int i = 0; i < 5; ++i) ASSERT_TRUE(sender.send_for("alive", 10s));
        reader.kill();
        ASSERT_TRUE(join_or_fail(reader));  // reaped: the kernel has closed its descriptors
        const auto dead_at = steady_clock::now();
        if (!flat_out) {
            // What is under test is the time since the sender last asked the kernel (before the
            // death), not an ordering between processes: let 2 ms pass, then send once.
            while (steady_clock::now() < dead_at + 2ms) std::this_thread::yield();
            EXPECT_EQ(sender.send_for("after the death", 10s), errc::broken_pipe);
        } else {
            uint64_t accepted = 0;
            status last;
            while ((last = sender.send_for("flat out", 10s)) &&
                   milliseconds_since(dead_at) < 5000) {
                ++accepted;
            }
            EXPECT_EQ(last, errc::broken_pipe);
            EXPECT_LT(milliseconds_since(dead_at), 10.0 * (sanitized() ? 5 : 1));
            EXPECT_LT(accepted * 16, sender.capacity()) << "learnt only from the full ring";
            RecordProperty("sends_accepted_after_death", std::to_string(accepted));
        }
        EXPECT_EQ(sender.try_send("again"), errc::broken_pipe);  // sticky
    }
}

// Writing a doorbell to a dead peer never raises SIGPIPE: a sender killed while parked on a full
// ring leaves its "parked" flag set, so the receiver that drains the ring rings a socket whose
// every peer copy is closed (EPIPE). The receiver runs with SIGPIPE's default action.
TEST(Pipe, DoorbellToADeadPeerRaisesNoSigpipe) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    Process writer = spawn([&] {
        receiver.close();
        return sender.send_bytes(pattern(64 * 1024, 4)) ? 0 : 1;  // parks on the full ring
    });
    sender.close();
    ASSERT_TRUE(eventually([&] { return receiver.activity().incoming_sender_parked; }));
    writer.kill();
    ASSERT_TRUE(join_or_fail(writer));
    ASSERT_TRUE(receiver.activity().incoming_sender_parked);  // left set by the dead sender
    const int code = run_child([&] {
        ::signal(SIGPIPE, SIG_DFL);
        auto cut = receiver.recv_bytes_for(10s);  // consuming chunks rings the dead sender
        if (cut || cut.error() != errc::cut_off) return 1;
        return receiver.recv_for(10s).error() == errc::eof ? 0 : 2;
    });
    EXPECT_EQ(code, 0) << (code == -SIGPIPE ? "killed by SIGPIPE" : "wrong results");
}

// The doorbell itself, below the pipe: ringing a socket whose peer is closed reports the peer
// gone and raises no SIGPIPE (MSG_NOSIGNAL), with SIGPIPE's default action in force.
TEST(Pipe, DoorbellSocketToAClosedPeerRaisesNoSigpipe) {
    const int code = run_child([] {
        ::signal(SIGPIPE, SIG_DFL);
        int sockets[2];
        if (detail::open_socket_pair(sockets) != 0) return 1;
        if (!detail::ring_socket(sockets[0])) return 2;  // peer open: delivered
        detail::close_socket(sockets[1]);
        if (detail::ring_socket(sockets[0])) return 3;  // peer closed: reported, no signal
        if (!detail::socket_hung_up(sockets[0])) return 4;
        detail::close_socket(sockets[0]);
        return 0;
    });
    EXPECT_EQ(code, 0) << (code == -SIGPIPE ? "killed by SIGPIPE" : "wrong results");
}

TEST(Pipe, RecvBytesIntoTooSmallLosesNothing) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    EXPECT_EQ(run_child([&] {
                  receiver.close();
                  return sender.send("hello world") ? 0 : 1;
              }),
              0);
    sender.close();
    std::byte small[4];
    auto too_small = receiver.recv_bytes_into_for(small, 10s);
    ASSERT_FALSE(too_small);
    EXPECT_EQ(too_small.error(), errc::buffer_too_small);
    EXPECT_EQ(receiver.message_length().value(), 11u);
    std::byte enough[16];
    ASSERT_EQ(receiver.recv_bytes_into_for(enough, 10s).value(), 11u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(enough), 11), "hello world");
}

TEST(Pipe, StreamedMessageIntoTooSmallBufferLosesNothing) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    auto big = pattern(100 * 1024, 3);
    Process child = spawn([&] {
        receiver.close();
        return sender.send_bytes(big) ? 0 : 2;
    });
    sender.close();
    std::vector<std::byte> small(big.size() - 1);
    EXPECT_EQ(receiver.recv_bytes_into_for(small, 10s).error(), errc::buffer_too_small);
    EXPECT_EQ(receiver.message_length().value(), big.size());
    std::vector<std::byte> enough(big.size());
    ASSERT_EQ(receiver.recv_bytes_into_for(enough, 10s).value(), big.size());
    EXPECT_TRUE(enough == big);
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

TEST(Pipe, MaxLengthExceededKeepsTheMessage) {
    auto [a, b] = Pipe();
    ASSERT_TRUE(a.send("0123456789"));
    auto refused = b.recv(5);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::too_large);
    EXPECT_EQ(b.recv_bytes(5).error(), errc::too_large);
    EXPECT_EQ(b.recv(10).value(), "0123456789");
}

TEST(Pipe, PollWithAndWithoutDataAndTimeout) {
    auto [a, b] = Pipe();
    EXPECT_FALSE(b.poll());
    auto start = steady_clock::now();
    EXPECT_FALSE(b.poll_for(50ms));
    const double waited = milliseconds_since(start);
    EXPECT_GE(waited, 50.0);
    EXPECT_LT(waited, 100.0);
    EXPECT_FALSE(b.poll_for(0ms));
    auto [go_receiver, go_sender] = Pipe(false);
    Process child = spawn([&] {
        b.close();
        if (!go_receiver.recv()) return 1;
        return a.send("late") ? 0 : 2;
    });
    a.close();
    ASSERT_TRUE(go_sender.send_for("go", 10s));
    EXPECT_TRUE(b.poll_for(10s));
    EXPECT_TRUE(b.poll());
    EXPECT_EQ(b.recv_for(10s).value(), "late");
    ASSERT_TRUE(join_or_fail(child));
    EXPECT_TRUE(b.poll_for(10s));  // EOF is "ready" too
    EXPECT_EQ(b.recv_for(10s).error(), errc::eof);
}

TEST(Pipe, TimedReceiveNeverEarly) {
    auto [a, b] = Pipe();
    auto start = steady_clock::now();
    EXPECT_EQ(b.recv_for(30ms).error(), errc::timeout);
    EXPECT_GE(milliseconds_since(start), 30.0);
    EXPECT_LT(milliseconds_since(start), 80.0);
    EXPECT_EQ(b.try_recv().error(), errc::empty);
}

TEST(Pipe, SixtyFourMiBMessageTravelsWhole) {
    const std::size_t size = sanitized() ? (8u << 20) : (64u << 20);
    auto [receiver, sender] = Pipe(false);
    Process child = spawn([&] {
        receiver.close();
        auto big = pattern(size, 11);
        if (!sender.send_bytes(big)) return 1;
        if (!sender.send("after")) return 2;
        return 0;
    });
    sender.close();
    auto got = receiver.recv_bytes_for(60s);
    ASSERT_TRUE(got) << make_error_code(got.error()).message();
    EXPECT_EQ(got->size(), size);
    EXPECT_TRUE(*got == pattern(size, 11));
    EXPECT_EQ(receiver.recv_for(10s).value(), "after");
    EXPECT_EQ(receiver.recv_for(10s).error(), errc::eof);
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

TEST(Pipe, ZeroLengthMessagesAreMessages) {
    auto [a, b] = Pipe();
    ASSERT_TRUE(a.send(""));
    ASSERT_TRUE(a.send_bytes({}));
    ASSERT_TRUE(a.send("x"));
    EXPECT_EQ(b.try_recv().value(), "");
    EXPECT_EQ(b.try_recv_bytes().value().size(), 0u);
    EXPECT_EQ(b.try_recv().value(), "x");
}

TEST(Pipe, TypedValues) {
    struct Point {
        double x;
        int32_t id;
    };
    auto [a, b] = Pipe();
    ASSERT_TRUE(a.send_value(Point{1.5, 7}));
    ASSERT_TRUE(a.send("not a point"));
    auto point = b.recv_value<Point>().value();
    EXPECT_EQ(point.x, 1.5);
    EXPECT_EQ(point.id, 7);
    EXPECT_EQ(b.recv_value<Point>().error(), errc::type_mismatch);
}

TEST(Pipe, OneWayPipeMisuseThrows) {
    auto [receiver, sender] = Pipe(false);
    EXPECT_FALSE(receiver.writable());
    EXPECT_FALSE(sender.readable());
    try {
        (void)receiver.send("wrong end");
        ADD_FAILURE() << "no exception";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::wrong_end);
    }
    try {
        (void)sender.recv();
        ADD_FAILURE() << "no exception";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::wrong_end);
    }
    EXPECT_THROW((void)sender.poll(), Error);
}

TEST(Pipe, UseAfterCloseThrows) {
    auto [a, b] = Pipe();
    a.close();
    a.close();  // idempotent
    EXPECT_TRUE(a.closed());
    EXPECT_THROW((void)a.send("x"), Closed);
    EXPECT_THROW((void)a.recv(), Closed);
    EXPECT_THROW((void)a.poll(), Closed);
    Connection moved = std::move(b);
    EXPECT_TRUE(b.closed());
    EXPECT_FALSE(moved.closed());
    EXPECT_EQ(moved.recv_for(10s).error(), errc::eof);  // a is closed: nothing will come
}

// Both directions at once with messages that fit the buffers: two single-threaded peers.
TEST(Pipe, DuplexTrafficBothWaysAtOnce) {
    auto [parent_end, child_end] = Pipe(true, PipeOptions{.capacity = 64 * 1024});
    const int count = 200;  // 200 * ~100 B fits 64 KiB
    Process child = spawn([&] {
        parent_end.close();
        for (int i = 0; i < count; ++i) {
            if (!child_end.send("child " + std::to_string(i))) return 1;
        }
        for (int i = 0; i < count; ++i) {
            if (child_end.recv().value() != "parent " + std::to_string(i)) return 2;
        }
        return 0;
    });
    child_end.close();
    for (int i = 0; i < count; ++i) {
        ASSERT_TRUE(parent_end.send_for("parent " + std::to_string(i), 10s));
    }
    for (int i = 0; i < count; ++i) {
        auto message = parent_end.recv_for(10s);
        ASSERT_TRUE(message) << make_error_code(message.error()).message();
        EXPECT_EQ(*message, "child " + std::to_string(i));
    }
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

// Two single-threaded peers each sending a message larger than the buffers would deadlock (as
// with OS pipes); a reader thread on one side resolves it.
TEST(Pipe, ReaderThreadResolvesLargeDuplexExchange) {
    auto [parent_end, child_end] = Pipe(true, PipeOptions{.capacity = 16 * 1024});
    const auto from_child = pattern(1 << 20, 21);
    const auto from_parent = pattern(1 << 20, 22);
    Process child = spawn([&] {
        parent_end.close();
        if (!child_end.send_bytes(from_child)) return 1;  // single-threaded: send, then recv
        return child_end.recv_bytes().value() == from_parent ? 0 : 2;
    });
    child_end.close();
    result<std::vector<std::byte>> received = errc::empty;
    std::thread reader([&] { received = parent_end.recv_bytes_for(60s); });
    const status sent = parent_end.send_bytes_for(from_parent, 60s);
    reader.join();
    ASSERT_TRUE(sent);
    ASSERT_TRUE(received) << make_error_code(received.error()).message();
    EXPECT_TRUE(*received == from_child);
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

// Copies of the same end used by several processes at once do not corrupt each other.
TEST(Pipe, CopiesOfOneEndSendConcurrentlyWithoutCorruption) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    const int senders = 3;
    const int per_sender = sanitized() ? 100 : 400;
    std::vector<Process> children;
    for (int s = 0; s < senders; ++s) {
        children.push_back(spawn([&, s] {
            receiver.close();
            for (int i = 0; i < per_sender; ++i) {
                // Mixed sizes: whole frames and streamed (larger than a quarter of the ring).
                std::size_t size = (i % 7 == 0) ? 20000 + i : 16 + (i * 37) % 3000;
                auto bytes = pattern(size, static_cast<uint32_t>(s * 100000 + i));
                uint32_t tag[2] = {static_cast<uint32_t>(s), static_cast<uint32_t>(i)};
                std::memcpy(bytes.data(), tag, sizeof tag);
                if (!sender.send_bytes(bytes)) return 1;
            }
            return 0;
        }));
    }
    sender.close();
    std::vector<int> next(senders, 0);
    int total = 0;
    for (;;) {
        auto message = receiver.recv_bytes_for(30s);
        if (!message) {
            EXPECT_EQ(message.error(), errc::eof);
            break;
        }
        uint32_t tag[2];
        std::memcpy(tag, message->data(), sizeof tag);
        ASSERT_LT(tag[0], static_cast<uint32_t>(senders));
        const int s = static_cast<int>(tag[0]);
        const int i = static_cast<int>(tag[1]);
        EXPECT_EQ(i, next[s]++);  // per-sender order
        std::size_t size = (i % 7 == 0) ? 20000 + i : 16 + (i * 37) % 3000;
        auto reference = pattern(size, static_cast<uint32_t>(s * 100000 + i));
        std::memcpy(reference.data(), tag, sizeof tag);
        ASSERT_TRUE(*message == reference) << "sender " << s << " message " << i;
        ++total;
    }
    EXPECT_EQ(total, senders * per_sender);
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
}

// Copies of the receiving end in several processes share the messages: each message arrives
// whole at exactly one of them.
TEST(Pipe, CopiesOfOneEndReceiveConcurrentlyWithoutCorruption) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    auto [count_receiver, count_sender] = Pipe(false);
    const int messages = sanitized() ? 300 : 1500;
    auto size_of = [](int i) -> std::size_t {
        return (i % 5 == 0) ? 9000 + i : 8 + (i * 53) % 2000;
    };
    std::vector<Process> children;
    for (int r = 0; r < 2; ++r) {
        children.push_back(spawn([&] {
            sender.close();
            count_receiver.close();
            int got = 0;
            for (;;) {
                auto message = receiver.recv_bytes();
                if (!message)
                    return message.error() == errc::eof && count_sender.send_value(got) ? 0 : 1;
                uint32_t index;
                std::memcpy(&index, message->data(), sizeof index);
                auto reference = pattern(size_of(static_cast<int>(index)), index);
                std::memcpy(reference.data(), &index, sizeof index);
                if (*message != reference) return 2;
                ++got;
            }
        }));
    }
    receiver.close();
    count_sender.close();
    for (int i = 0; i < messages; ++i) {
        auto bytes = pattern(size_of(i), static_cast<uint32_t>(i));
        const auto index = static_cast<uint32_t>(i);
        std::memcpy(bytes.data(), &index, sizeof index);
        ASSERT_TRUE(sender.send_bytes_for(bytes, 30s));
    }
    sender.close();
    int total = 0;
    for (int r = 0; r < 2; ++r) {
        ASSERT_TRUE(count_receiver.poll_for(30s));  // recv_value() below cannot block
        total += count_receiver.recv_value<int>().value();
    }
    EXPECT_EQ(total, messages);
    ASSERT_TRUE(test::join_all_and_expect_exit(children));
}

// The send lock between copies of one end in three processes: while one copy streams a message
// larger than the ring (holding the lock until the receiver takes it all), a try_send on another
// copy reports full at once, a timed send times out, and a blocking send in a third process
// sleeps on the lock and is woken when the holder is done. Each message arrives whole.
TEST(Pipe, CopiesOfOneEndWaitForTheSendLockAndAreWokenOnRelease) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    const auto big = pattern(64 * 1024, 12);
    Process holder = spawn([&] {
        receiver.close();
        return sender.send_bytes(big) ? 0 : 1;
    });
    ASSERT_TRUE(receiver.poll_for(10s));  // its first chunk is there: the holder has the lock
    EXPECT_EQ(sender.try_send("no wait"), errc::full);
    auto start = steady_clock::now();
    EXPECT_EQ(sender.send_for("short wait", 20ms), errc::timeout);
    EXPECT_GE(milliseconds_since(start), 20.0);
    Process waiter = spawn([&] {
        receiver.close();
        return sender.send("from the waiter") ? 0 : 1;
    });
    ASSERT_TRUE(eventually([&] { return sender.activity().outgoing_send_lock_waiters > 0; }))
        << "the waiter never slept on the lock";
    sender.close();
    auto first = receiver.recv_bytes_for(10s);
    ASSERT_TRUE(first) << make_error_code(first.error()).message();
    EXPECT_TRUE(*first == big);
    EXPECT_EQ(receiver.recv_for(10s).value(), "from the waiter");
    ASSERT_TRUE(join_or_fail(holder));
    ASSERT_TRUE(join_or_fail(waiter));
    EXPECT_EQ(*holder.exitcode(), 0);
    EXPECT_EQ(*waiter.exitcode(), 0);
    EXPECT_EQ(receiver.recv_for(10s).error(), errc::eof);
}

// A copy of the sending end killed in the middle of a streamed message, holding the send lock:
// another copy steps over the dead holder, voids the remains (abort frame), and its own message
// arrives whole after the receiver is told the dead one's was cut off.
TEST(Pipe, SenderCopyStepsOverADeadLockHolder) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 64 * 1024});
    Process holder = spawn([&] {
        receiver.close();
        detail::arm_kill_point("pipe.send.chunk_published", 1);  // dies after the 2nd chunk
        (void)sender.send_bytes(pattern(1 << 20, 13));
        return 3;
    });
    ASSERT_TRUE(join_or_fail(holder));
    ASSERT_EQ(*holder.exitcode(), -SIGKILL);
    auto start = steady_clock::now();
    ASSERT_TRUE(sender.send_for("after the dead holder", 10s));
    RecordProperty("step_over_ms", std::to_string(milliseconds_since(start)));
    sender.close();
    auto cut = receiver.recv_bytes_for(10s);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error(), errc::cut_off);
    EXPECT_EQ(receiver.recv_for(10s).value(), "after the dead holder");
    EXPECT_EQ(receiver.recv_for(10s).error(), errc::eof);
}

// A holder killed between taking the lock and recording its pid namespace leaves a lock whose
// holder's namespace is unknown: it is first taken for alive, then judged as a process of this
// namespace -- stepped over, not waited for forever.
TEST(Pipe, LockHolderKilledBeforeRecordingItsNamespaceIsSteppedOver) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    Process holder = spawn([&] {
        receiver.close();
        return sender.send_bytes(pattern(64 * 1024, 14)) ? 0 : 1;  // holds until drained
    });
    ASSERT_TRUE(receiver.poll_for(10s));
    Process dies_with_the_lock = spawn([&] {
        receiver.close();
        detail::arm_kill_point("pipe.lock.taken_before_namespace");
        (void)sender.send("never sent");  // waits for the lock (slow path), takes it, dies
        return 3;
    });
    ASSERT_TRUE(eventually([&] { return sender.activity().outgoing_send_lock_waiters > 0; }));
    auto first = receiver.recv_bytes_for(10s);
    ASSERT_TRUE(first) << make_error_code(first.error()).message();
    ASSERT_TRUE(join_or_fail(holder));
    ASSERT_TRUE(join_or_fail(dies_with_the_lock));
    ASSERT_EQ(*dies_with_the_lock.exitcode(), -SIGKILL);
    ASSERT_TRUE(sender.send_for("stepped over", 10s));
    EXPECT_EQ(receiver.recv_for(10s).value(), "stepped over");
}

// A copy of the sending end held by a live process in another pid namespace (a container sharing
// the pipe, with its own /proc) is never judged dead: its pid means nothing here. Without the
// namespace recorded in the lock, this process would look up the holder's pid (1) in its own
// namespace, find another process there and steal the lock from the living holder.
TEST(Pipe, LockHolderInAnotherPidNamespaceIsNotJudgedDead) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    auto [word_receiver, word_sender] = Pipe(false);
    const auto big = pattern(64 * 1024, 15);
    Process outer = spawn([&] {
        receiver.close();
        word_receiver.close();
        // A new pid namespace for the children, a private mount namespace for their /proc.
        if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
            (void)word_sender.send(std::string("skip: unshare: ") + std::strerror(errno));
            return 0;
        }
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            (void)word_sender.send(std::string("skip: private mounts: ") + std::strerror(errno));
            return 0;
        }
        Process inner([&] {
            if (::mount("proc", "/proc", "proc", 0, nullptr) != 0) {
                (void)word_sender.send(std::string("skip: mount /proc: ") + std::strerror(errno));
                return 0;
            }
            if (::getpid() != 1) return 10;
            if (!word_sender.send("holding")) return 11;
            return sender.send_bytes(big) ? 0 : 12;  // holds the send lock until it is drained
        });
        inner.start();
        if (!inner.join_for(60s)) {
            inner.kill();
            inner.join();
            return 20;
        }
        return *inner.exitcode();
    });
    word_sender.close();
    auto word = word_receiver.recv_for(20s);
    ASSERT_TRUE(word) << make_error_code(word.error()).message();
    if (word->starts_with("skip")) {
        ASSERT_TRUE(join_or_fail(outer));
        GTEST_SKIP() << *word;
    }
    ASSERT_EQ(*word, "holding");
    ASSERT_TRUE(receiver.poll_for(10s));  // its first chunk is there: it holds the lock
    // Long enough to spin, yield and judge the holder several times over.
    EXPECT_EQ(sender.send_for("from the parent", 300ms), errc::timeout);
    auto got = receiver.recv_bytes_for(10s);
    ASSERT_TRUE(got) << make_error_code(got.error()).message();
    EXPECT_TRUE(*got == big) << "the living holder's message was broken into";
    ASSERT_TRUE(sender.send_for("from the parent", 10s));
    EXPECT_EQ(receiver.recv_for(10s).value(), "from the parent");
    ASSERT_TRUE(test::join_and_expect_exit(outer));
}

// A timed send that runs out of time midway through a streamed message abandons it: the
// receiver is told (cut_off) and the next message arrives normally.
TEST(Pipe, TimedSendGivingUpMidwayIsReportedAsCutOff) {
    auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = 16 * 1024});
    auto start = steady_clock::now();
    EXPECT_EQ(sender.send_bytes_for(pattern(200 * 1024, 5), 30ms), errc::timeout);
    EXPECT_GE(milliseconds_since(start), 30.0);
    Process child = spawn([&] {
        sender.close();
        auto cut = receiver.recv_bytes();
        if (cut || cut.error() != errc::cut_off) return 1;
        return receiver.recv().value() == "next" ? 0 : 2;
    });
    receiver.close();
    ASSERT_TRUE(sender.send_for("next", 10s));
    ASSERT_TRUE(test::join_and_expect_exit(child));
}

// wait() over several connections returns the ready ones.
TEST(Pipe, WaitOverSeveralConnections) {
    std::vector<std::pair<Connection, Connection>> pipes;
    for (int i = 0; i < 3; ++i) pipes.push_back(Pipe(false));
    auto first_wait_done = Event::anonymous();  // the child stays (its ends open) until then
    Process child = spawn([&] {
        for (auto& [receiver, sender] : pipes) receiver.close();
        if (!pipes[1].second.send("on the second")) return 1;
        return first_wait_done.wait_for(10s) ? 0 : 2;
    });
    std::vector<Connection*> receivers;
    for (auto& [receiver, sender] : pipes) {
        sender.close();
        receivers.push_back(&receiver);
    }
    auto ready = wait(receivers, deadline_after(10s));
    ASSERT_GE(ready.size(), 1u);
    EXPECT_EQ(ready[0], receivers[1]);
    EXPECT_EQ(receivers[1]->recv_for(10s).value(), "on the second");
    first_wait_done.set();
    ASSERT_TRUE(test::join_and_expect_exit(child));
    // The child exited: every pipe is at EOF now, so all are ready.
    EXPECT_EQ(wait(receivers, deadline_after(10s)).size(), 3u);
    EXPECT_TRUE(wait_for(std::span<Connection* const>(receivers.data(), 0), 0ms).empty());
}

// The notes-pipe example runs (bounded, output captured): the child prints the ten messages in
// order, then the EOF line, and everybody exits 0.
TEST(Pipe, NotesPipeExampleRuns) {
    auto run = test::run_program(std::string(SHUTTLE_EXAMPLES_DIR) + "/notes_pipe", {}, 30000ms);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::size_t at = 0;
    for (int i = 0; i < 10; ++i) {
        const std::string line = "child received: message " + std::to_string(i) + "\n";
        EXPECT_EQ(test::count_of(run.output, line), 1u) << line << "in:\n" << run.output;
        const auto found = run.output.find(line);
        EXPECT_TRUE(found != std::string::npos && found >= at) << "out of order: " << line;
        if (found != std::string::npos) at = found;
    }
    const auto eof_line = run.output.find("child: EOF after 10 messages\n");
    EXPECT_NE(eof_line, std::string::npos) << run.output;
    EXPECT_GT(eof_line, at) << "EOF before the last message";
    EXPECT_EQ(test::count_of(run.output, "child received: "), 10u) << run.output;
    EXPECT_NE(run.output.find("parent: child exited with 0"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace shuttle
