#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
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

// Python joins non-daemon children at exit (std::jthread joins too): destroying the handle of a
// running non-daemon child waits for it to finish its work; it is not killed. The parent is seen
// blocked in wait4 inside the destructor before the child is let go.
TEST(Process, DestroyingARunningNonDaemonHandleJoinsIt) {
    Segment segment =
        Segment::create_anonymous(test::counters_info(), test::counters_body_size, {});
    std::atomic<uint64_t>* slots = test::counters(segment);  // 0: go, 1: child finished
    const int code = test::run_child([&] {
        const pid_t destroying_thread = test::current_thread_id();
        std::atomic<bool> released{false};
        std::thread releaser([&] {
            released = test::wait_until_sleeping_in_system_call(destroying_thread, SYS_wait4,
                                                                std::nullopt);
            slots[0].store(1);
        });
        {
            Process worker([&] {
                if (!test::eventually([&] { return slots[0].load() == 1; })) return 2;
                slots[1].store(1);
                return 0;
            });
            worker.start();
        }  // the destructor joins here
        releaser.join();
        if (!released) return 3;
        return slots[1].load() == 1 ? 0 : 1;
    });
    EXPECT_EQ(code, 0) << "1: the child was killed instead of joined; 3: the destructor never "
                          "waited";
}

// A daemon's handle destroyed while it runs terminates it: SIGTERM first (its handler runs), and
// SIGKILL after daemon_grace if it ignores SIGTERM. Either way it is gone and reaped.
TEST(Process, DestroyingARunningDaemonHandleTerminatesIt) {
    Segment segment =
        Segment::create_anonymous(test::counters_info(), test::counters_body_size, {});
    std::atomic<uint64_t>* slots = test::counters(segment);  // 0: ready, 1: got SIGTERM
    static std::atomic<uint64_t>* sigterm_slot;
    sigterm_slot = &slots[1];
    for (const bool ignores_sigterm : {false, true}) {
        slots[0].store(0);
        slots[1].store(0);
        int pidfd = -1;
        const auto start = std::chrono::steady_clock::now();
        {
            Process daemon_child(ProcessOptions{.daemon = true}, [&, ignores_sigterm] {
                if (ignores_sigterm) {
                    ::signal(SIGTERM, SIG_IGN);
                } else {
                    ::signal(SIGTERM, [](int) {
                        sigterm_slot->store(1);
                        _exit(5);
                    });
                }
                slots[0].store(1);
                for (;;) pause();
            });
            daemon_child.start();
            ASSERT_TRUE(test::eventually([&] { return slots[0].load() == 1; }));
            pidfd = detail::open_pidfd(daemon_child.pid());
            ASSERT_GE(pidfd, 0);
        }
        const auto took = std::chrono::steady_clock::now() - start;
        EXPECT_TRUE(detail::wait_pidfd_until(pidfd, std::chrono::steady_clock::now()))
            << "the daemon still runs after its handle was destroyed";
        detail::close_fd(pidfd);
        if (ignores_sigterm) {
            EXPECT_GE(took, Process::daemon_grace);  // killed only after the grace period
        } else {
            EXPECT_EQ(slots[1].load(), 1u) << "the daemon was not sent SIGTERM";
            EXPECT_LT(took, Process::daemon_grace);
        }
    }
}

// Python's names: "Process-N" counting the Processes made in this process, "Process-N:M" for a
// child's children; a given or set name replaces it (the counter still advances, as Python's);
// current_process() in a child reports that child's name, its pid and daemon flag, and
// "MainProcess" outside any child.
TEST(Process, NamesAndCurrentProcess) {
    EXPECT_EQ(current_process().name, "MainProcess");
    EXPECT_EQ(current_process().pid, ::getpid());
    EXPECT_FALSE(current_process().daemon);
    const int code = test::run_child([] {
        const ProcessInfo me = current_process();
        if (me.name.rfind("Process-", 0) != 0 || me.pid != ::getpid() || !me.daemon) return 10;
        const auto reports = [](std::string expected, bool daemon) {
            return [expected, daemon] {
                const ProcessInfo info = current_process();
                return info.name == expected && info.pid == ::getpid() && info.daemon == daemon ? 0
                                                                                                : 1;
            };
        };
        Process first(reports(me.name + ":1", false));
        if (first.name() != me.name + ":1") return 11;
        Process named(ProcessOptions{.daemon = true, .name = "worker"}, reports("worker", true));
        if (named.name() != "worker" || !named.daemon()) return 12;
        Process renamed(reports("renamed", false));
        if (renamed.name() != me.name + ":3") return 13;
        renamed.set_name("renamed");
        // A grandchild of this process is Process-K:4:1: the child's own counter starts at 1.
        Process parent_of_one([&] {
            Process grandchild(reports(me.name + ":4:1", false));
            grandchild.start();
            grandchild.join();
            return *grandchild.exitcode();
        });
        for (Process* process : {&first, &named, &renamed, &parent_of_one}) {
            process->start();
            if (!test::join_or_fail(*process)) return 20;
            if (process->exitcode() != 0) return 21;
        }
        renamed.set_name("after-start");  // renaming later changes only this handle
        return renamed.name() == "after-start" ? 0 : 22;
    });
    EXPECT_EQ(code, 0);
}

// Process(f, args...) as Python's Process(target=f, args=(...)): the arguments are copied or
// moved into the handle (move-only ones too) and given to the target in the child.
TEST(Process, ArgumentsArePassedToTheTarget) {
    int base = 3;
    Process adder(
        [](int a, const std::string& text, std::unique_ptr<int> boxed) {
            return a + static_cast<int>(text.size()) + *boxed;
        },
        base, std::string("abcd"), std::make_unique<int>(10));
    base = 100;  // copied at construction: the child sees 3
    adder.start();
    ASSERT_TRUE(test::join_and_expect_exit(adder, 17));

    Process with_options = spawn(
        ProcessOptions{.name = "summer"}, [](int a, int b) { return a + b; }, 20, 22);
    EXPECT_EQ(with_options.name(), "summer");
    ASSERT_TRUE(test::join_and_expect_exit(with_options, 42));

    Process older_spelling = spawn([] { return 9; }, ProcessOptions{.name = "nine"});
    EXPECT_EQ(older_spelling.name(), "nine");
    ASSERT_TRUE(test::join_and_expect_exit(older_spelling, 9));
}

}  // namespace
}  // namespace shuttle
