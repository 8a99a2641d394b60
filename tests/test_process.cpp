#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <thread>

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
}

/// Runs `target` in a Process whose stderr is a pipe; returns what it wrote there.
template <class F>
std::string stderr_of(F target, std::optional<int>& exitcode, const std::string& name = {}) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return "pipe2 failed";
    const int write_end = fds[1];
    Process child(
        [write_end, target] {
            ::dup2(write_end, STDERR_FILENO);
            return target();
        },
        ProcessOptions{.daemon = true, .name = name});
    child.start();
    ::close(fds[1]);
    bool timed_out = false;
    std::string text = test::read_until_end_of_file(fds[0], 10000ms, timed_out);
    ::close(fds[0]);
    EXPECT_FALSE(timed_out) << "the child's stderr never closed";
    test::join_or_fail(child);
    exitcode = child.exitcode();
    return text;
}

// An exception escaping the target: exit code 1 and a message on stderr naming the process and
// the exception.
TEST(Process, EscapingExceptionExitsWithOneAndReportsOnStderr) {
    std::optional<int> exitcode;
    std::string message =
        stderr_of([]() -> int { throw std::runtime_error("boom"); }, exitcode, "thrower");
    EXPECT_EQ(exitcode, 1);
    EXPECT_NE(message.find("shuttle::Process thrower (pid "), std::string::npos) << message;
    EXPECT_NE(message.find("uncaught exception: boom"), std::string::npos) << message;

    message = stderr_of([]() -> int { throw 42; }, exitcode);
    EXPECT_EQ(exitcode, 1);
    EXPECT_NE(message.find("uncaught non-standard exception"), std::string::npos) << message;

    message = stderr_of([] { return 0; }, exitcode);  // and nothing when nothing escapes
    EXPECT_EQ(exitcode, 0);
    EXPECT_EQ(message, "");
}

// join_for with a huge timeout waits for the child: now + timeout must not overflow (undefined
// behaviour, which the UBSan build catches), and a wait longer than poll()'s int milliseconds
// (2^32 ms is 0 when truncated to int) must not become a zero timeout that returns false at once.
TEST(Process, JoinForAHugeTimeoutWaits) {
    using std::chrono::steady_clock;
    const steady_clock::duration timeouts[] = {
        steady_clock::duration::max(),
        std::chrono::milliseconds(int64_t{1} << 32),
        std::chrono::hours(24 * 365 * 100),
    };
    for (std::size_t which = 0; which < std::size(timeouts); ++which) {
        const steady_clock::duration timeout = timeouts[which];
        int code = test::run_child([timeout] {
            Process sleeper([] {
                for (;;) pause();
            });
            sleeper.start();
            const pid_t pid = sleeper.pid();
            std::atomic<pid_t> joiner_thread{0};
            std::atomic<int> joined{-1};
            std::thread joiner([&] {
                joiner_thread = test::current_thread_id();
                joined = sleeper.join_for(timeout) ? 1 : 0;
            });
            // Once the joiner sleeps in poll() on the child's pidfd, end the child.
            bool asleep = test::eventually([&] {
                return joined.load() != -1 ||
                       (joiner_thread.load() != 0 &&
                        (test::sleeping_in_system_call(joiner_thread.load(), SYS_poll) ||
                         test::sleeping_in_system_call(joiner_thread.load(), SYS_ppoll)));
            });
            ::kill(pid, SIGKILL);
            joiner.join();
            if (!asleep) return 3;
            return joined.load() == 1 ? 0 : 1;
        });
        EXPECT_EQ(code, 0) << "timeout " << which
                           << " (1: join_for returned false while the child ran)";
    }
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
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const int write_end = fds[1];
    Process outer(
        [write_end] {
            ::dup2(write_end, STDOUT_FILENO);
            std::printf("parent-line\n");  // buffered: stdout is a pipe
            Process child([] { std::printf("child-line\n"); });
            child.start();
            if (!child.join_for(10s)) return 2;
            return 0;  // the process helper flushes stdout and leaves with _exit
        },
        ProcessOptions{.daemon = true});
    outer.start();
    ::close(fds[1]);
    bool timed_out = false;
    std::string output = test::read_until_end_of_file(fds[0], 10000ms, timed_out);
    ::close(fds[0]);
    EXPECT_FALSE(timed_out) << "the output pipe never closed";
    ASSERT_TRUE(test::join_and_expect_exit(outer));
    EXPECT_EQ(output, "parent-line\nchild-line\n");
}

// A daemon child dies with its parent; a plain one outlives it. Each grandchild records its own
// identity (pid + start time), so "gone" is judged without pidfd_open and despite pid reuse.
TEST(Process, DaemonChildDiesWithItsParent) {
    Segment segment =
        Segment::create_anonymous(test::counters_info(), test::counters_body_size, {});
    std::atomic<uint64_t>* slots = test::counters(segment);
    Process middle(
        [&] {
            Process daemon_child(
                [&] {
                    slots[0].store(detail::current_process_identity());
                    for (;;) pause();
                },
                ProcessOptions{.daemon = true});
            Process plain_child([&] {
                slots[1].store(detail::current_process_identity());
                for (;;) pause();
            });
            daemon_child.start();
            plain_child.start();
            if (!test::eventually([&] { return slots[0].load() != 0 && slots[1].load() != 0; })) {
                _exit(2);
            }
            _exit(0);  // dies without joining or destroying the handles
        },
        ProcessOptions{.daemon = true});
    middle.start();
    ASSERT_TRUE(test::join_or_fail(middle));
    ASSERT_EQ(middle.exitcode(), 0) << "the grandchildren never started";
    const detail::ProcessIdentity daemon_identity = slots[0].load();
    const detail::ProcessIdentity plain_identity = slots[1].load();
    const uint64_t pid_namespace = detail::current_pid_namespace();
    // Reparented to init (or a subreaper), the daemon must be gone (or a zombie) within seconds.
    int daemon_fd = detail::open_pidfd(detail::identity_pid(daemon_identity));
    if (daemon_fd >= 0) {
        detail::wait_pidfd_until(daemon_fd, std::chrono::steady_clock::now() + 10s);
        detail::close_fd(daemon_fd);
    }
    EXPECT_TRUE(test::eventually([&] {
        return detail::process_liveness(daemon_identity, pid_namespace) == detail::Liveness::dead;
    })) << "the daemon child outlived its parent";
    EXPECT_EQ(detail::process_liveness(plain_identity, pid_namespace), detail::Liveness::alive)
        << "the plain child should still run";
    ::kill(detail::identity_pid(plain_identity), SIGKILL);
}

}  // namespace
}  // namespace shuttle
