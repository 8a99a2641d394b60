#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

#include "counters_segment.hpp"
#include "shuttle/process.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;

TEST(Process, ExitCodes) {
    Process zero([] {});
    zero.start();
    zero.join();
    EXPECT_EQ(zero.exitcode(), 0);
    Process seven([] { return 7; });
    seven.start();
    seven.join();
    EXPECT_EQ(seven.exitcode(), 7);
    Process thrower([]() -> int { throw std::runtime_error("boom"); });
    thrower.start();
    thrower.join();
    EXPECT_EQ(thrower.exitcode(), 1);
}

TEST(Process, TimedJoinTerminateAndKill) {
    Process sleeper([] {
        for (;;) pause();
    });
    EXPECT_FALSE(sleeper.exitcode());
    sleeper.start();
    EXPECT_TRUE(sleeper.is_alive());
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(sleeper.join_for(100ms));
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 150ms);
    sleeper.terminate();
    EXPECT_TRUE(sleeper.join_for(5s));
    EXPECT_EQ(sleeper.exitcode(), -SIGTERM);
    EXPECT_FALSE(sleeper.is_alive());

    Process victim([] {
        for (;;) pause();
    });
    victim.start();
    victim.kill();
    EXPECT_TRUE(victim.join_for(5s));
    EXPECT_EQ(victim.exitcode(), -SIGKILL);
}

TEST(Process, MisuseThrows) {
    Process process([] {});
    EXPECT_THROW(process.join(), Error);
    process.start();
    EXPECT_THROW(process.start(), Error);
    process.join();
}

// Output buffered before fork is written once, not once per process.
TEST(Process, BufferedOutputIsNotWrittenTwice) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t outer = fork();
    if (outer == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        std::printf("parent-line\n");  // buffered: stdout is a pipe
        Process child([] { std::printf("child-line\n"); });
        child.start();
        child.join();
        std::fflush(stdout);
        _exit(0);
    }
    ::close(fds[1]);
    std::string output;
    char buffer[256];
    ssize_t n;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) output.append(buffer, n);
    ::close(fds[0]);
    ::waitpid(outer, nullptr, 0);
    EXPECT_EQ(output, "parent-line\nchild-line\n");
}

// A daemon child dies with its parent; a plain one outlives it.
TEST(Process, DaemonChildDiesWithItsParent) {
    Segment segment =
        Segment::create_anonymous(test::counters_info(), test::counters_body_size, {});
    std::atomic<uint64_t>* slots = test::counters(segment);
    Process middle([&] {
        Process daemon_child(
            [] {
                for (;;) pause();
            },
            ProcessOptions{.daemon = true});
        Process plain_child([] {
            for (;;) pause();
        });
        daemon_child.start();
        plain_child.start();
        slots[0].store(static_cast<uint64_t>(daemon_child.pid()));
        slots[1].store(static_cast<uint64_t>(plain_child.pid()));
        _exit(0);  // dies without joining or destroying the handles
    });
    middle.start();
    middle.join();
    pid_t daemon_pid = static_cast<pid_t>(slots[0].load());
    pid_t plain_pid = static_cast<pid_t>(slots[1].load());
    ASSERT_GT(daemon_pid, 0);
    ASSERT_GT(plain_pid, 0);
    int daemon_fd = detail::open_pidfd(daemon_pid);
    // Reparented to init (or a subreaper), the daemon must be gone within a few seconds.
    bool daemon_gone =
        daemon_fd < 0 || detail::wait_pidfd_until(daemon_fd, std::chrono::steady_clock::now() + 5s);
    EXPECT_TRUE(daemon_gone);
    EXPECT_EQ(::kill(plain_pid, 0), 0) << "the plain child should still run";
    ::kill(plain_pid, SIGKILL);
    detail::close_fd(daemon_fd);
}

}  // namespace
}  // namespace shuttle
