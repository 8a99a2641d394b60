// Pipe ends' descriptors for event loops (docs/event_loop.md): readable when a message or EOF
// is there, and (send side) when room is, made so by the peer in another process.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <string>

#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"
#include "support.hpp"

using namespace shuttle;
using namespace std::chrono_literals;

namespace {

bool readable(int fd, std::chrono::milliseconds timeout = 0ms) {
    pollfd entry{fd, POLLIN, 0};
    return ::poll(&entry, 1, static_cast<int>(timeout.count())) == 1 && (entry.revents & POLLIN);
}

constexpr auto patience = 5000ms;

}  // namespace

TEST(PipeDescriptor, RecvReadableOnMessageFromAnotherProcessThenOnEof) {
    auto [mine, theirs] = Pipe();
    const int fd = mine.recv_descriptor();
    EXPECT_EQ(mine.recv_descriptor(), fd);
    EXPECT_FALSE(readable(fd));
    Process peer(ProcessOptions{.daemon = true}, [&] {
        mine.close();
        if (!theirs.send("hello")) return 1;
        // Waits for the reply, so the first message is seen before EOF.
        auto reply = theirs.recv_for(patience);
        return reply && *reply == "go" ? 0 : 2;
    });
    peer.start();
    theirs.close();
    ASSERT_TRUE(readable(fd, patience));
    auto hello = mine.try_recv();
    ASSERT_TRUE(hello);
    EXPECT_EQ(*hello, "hello");
    EXPECT_EQ(mine.try_recv().error(), errc::empty);  // re-arms
    EXPECT_FALSE(readable(fd));
    ASSERT_TRUE(mine.send("go"));
    EXPECT_TRUE(readable(fd, patience));  // the peer exits: EOF
    EXPECT_EQ(mine.try_recv().error(), errc::eof);
    EXPECT_TRUE(test::join_and_expect_exit(peer, 0));
}

TEST(PipeDescriptor, SendReadableWhenThePeerMakesRoom) {
    auto [mine, theirs] = Pipe(true, {.capacity = 4096});
    const std::string chunk(512, 'x');
    const int fd = mine.send_descriptor();
    EXPECT_TRUE(readable(fd));  // room
    int sent = 0;
    while (mine.try_send(chunk)) ++sent;  // fill the ring; the full try_send arms for its size
    ASSERT_GT(sent, 0);
    EXPECT_FALSE(readable(fd));
    Process peer(ProcessOptions{.daemon = true}, [&] {
        mine.close();
        return theirs.recv_for(patience) ? 0 : 1;
    });
    peer.start();
    ASSERT_TRUE(readable(fd, patience));
    EXPECT_TRUE(mine.try_send(chunk));
    EXPECT_TRUE(test::join_and_expect_exit(peer, 0));
}

TEST(PipeDescriptor, SpuriousReadinessEndsInEmpty) {
    auto [mine, theirs] = Pipe();
    const int fd = mine.recv_descriptor();
    ASSERT_TRUE(theirs.send("a"));
    ASSERT_TRUE(readable(fd, patience));
    // Another copy of this end (a fork()ed child) takes the message first.
    Process thief(ProcessOptions{.daemon = true}, [&] {
        auto got = mine.try_recv();
        return got && *got == "a" ? 0 : 1;
    });
    thief.start();
    EXPECT_TRUE(test::join_and_expect_exit(thief, 0));
    EXPECT_TRUE(readable(fd));
    EXPECT_EQ(mine.try_recv().error(), errc::empty);
    EXPECT_FALSE(readable(fd));
}

TEST(PipeDescriptor, WrongEndThrows) {
    auto [receiver, sender] = Pipe(false);
    EXPECT_EQ(test::error_of([&] { (void)receiver.send_descriptor(); }), errc::wrong_end);
    EXPECT_EQ(test::error_of([&] { (void)sender.recv_descriptor(); }), errc::wrong_end);
}
