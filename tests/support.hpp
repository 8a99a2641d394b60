// Shared helpers for the test suite: unique names, children with a watchdog, bounded waits.
#pragma once

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <source_location>
#include <string>
#include <thread>
#include <vector>

#include "shuttle/process.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::test {

using namespace std::chrono_literals;

/// Whether the suite runs in the sanitizer build (scripts/test sets SHUTTLE_SANITIZED=1 there):
/// stress tests run smaller and time limits are looser.
inline bool sanitized() {
    return std::getenv("SHUTTLE_SANITIZED") != nullptr;
}

#ifdef SHUTTLE_EXAMPLES_DIR
/// The path of the example program `name` in this build.
inline std::string example(const std::string& name) {
    return std::string(SHUTTLE_EXAMPLES_DIR) + "/" + name;
}
#endif

/// A segment name no other test (or concurrent test run) uses.
inline std::string unique_name(const std::string& stem = "t") {
    static std::atomic<int> counter{0};
    return "shuttle-test-" + stem + "-" + std::to_string(getpid()) + "-" +
           std::to_string(counter.fetch_add(1));
}

/// Removes a named segment when the test ends (in the process that made the guard).
class NameGuard {
  public:
    explicit NameGuard(std::string name) : name_(std::move(name)), pid_(getpid()) {}
    ~NameGuard() {
        if (getpid() == pid_) Segment::remove(name_);
    }
    const std::string& operator*() const { return name_; }
    const std::string& str() const { return name_; }

  private:
    std::string name_;
    pid_t pid_;
};

/// Runs `body` in a daemon child and returns its exit code; a child still running after
/// `limit` is killed and the test fails (a hung child is a failed test).
template <class F>
int run_child(F body, std::chrono::milliseconds limit = 20000ms) {
    Process child(std::move(body), ProcessOptions{.daemon = true});
    child.start();
    if (!child.join_for(limit)) {
        child.kill();
        child.join();
        ADD_FAILURE() << "child process hung for " << limit.count() << " ms and was killed";
        return -1000;
    }
    return *child.exitcode();
}

/// Joins `process` within `limit` or kills it and fails the test.
inline bool join_or_fail(Process& process, std::chrono::milliseconds limit = 20000ms) {
    if (process.join_for(limit)) return true;
    process.kill();
    process.join();
    ADD_FAILURE() << "process " << process.pid() << " hung and was killed";
    return false;
}

/// Joins `process` as join_or_fail does, then checks that it exited with `exit_code` (minus the
/// signal number if killed); a different code fails the test at the caller's line, which goes
/// on. Returns false only if the process hung: ASSERT_TRUE on it.
[[nodiscard]] inline bool join_and_expect_exit(
    Process& process, int exit_code = 0, std::chrono::milliseconds limit = 20000ms,
    std::source_location caller = std::source_location::current()) {
    if (!join_or_fail(process, limit)) return false;
    if (process.exitcode() != exit_code) {
        ADD_FAILURE_AT(caller.file_name(), static_cast<int>(caller.line()))
            << "process " << process.pid() << " exited with " << process.exitcode().value_or(-1)
            << ", expected " << exit_code;
    }
    return true;
}

/// join_and_expect_exit for each of `processes` in order; false at the first one that hung.
[[nodiscard]] inline bool join_all_and_expect_exit(
    std::vector<Process>& processes, int exit_code = 0,
    std::source_location caller = std::source_location::current()) {
    for (Process& process : processes) {
        if (!join_and_expect_exit(process, exit_code, 20000ms, caller)) return false;
    }
    return true;
}

struct ProgramOutput {
    int exit_code = -1;  // -signal if killed, -1000 if it hung (and was killed)
    std::string output;  // stdout and stderr, interleaved
};

/// Runs a program (e.g. an example) with `arguments`, capturing its output; kills it after
/// `limit`.
ProgramOutput run_program(const std::string& path, const std::vector<std::string>& arguments,
                          std::chrono::milliseconds limit = 30000ms);

/// Number of times `needle` occurs in `text`.
inline std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++count;
    }
    return count;
}

/// Polls `predicate` (yielding the processor between polls) until it returns true or `timeout`
/// has passed. Returns whether it became true: ASSERT_TRUE on it, so a condition that never
/// comes fails the test instead of hanging it. Blocking (bounded); no sleeps.
template <class Predicate>
[[nodiscard]] bool wait_until_true(Predicate predicate,
                                   std::chrono::milliseconds timeout = 20000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
        if (std::chrono::steady_clock::now() >= deadline) return predicate();
        std::this_thread::yield();
    }
    return true;
}

/// Spins (yielding the processor) until `condition()` holds; false if it still does not after
/// `limit`. For waiting on a flag another process or thread sets: a bounded wait that fails the
/// test instead of hanging it.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 10000ms) {
    return wait_until_true(std::move(condition), limit);
}

/// Kills `process` (SIGKILL) from a thread of its own once `ready()` holds — or after `limit`,
/// so a state that never comes fails the test instead of hanging it — and notes when: how tests
/// time how fast the survivors notice a death. join() before reading the results (the
/// destructor joins too).
class KillWhen {
  public:
    template <class Ready>
    KillWhen(Process& process, Ready ready, std::chrono::milliseconds limit = 10000ms)
        : thread_([this, &process, ready = std::move(ready), limit] {
              ready_seen_ = eventually(ready, limit);
              killed_at_ = std::chrono::steady_clock::now();
              process.kill();
          }) {}
    KillWhen(const KillWhen&) = delete;
    KillWhen& operator=(const KillWhen&) = delete;
    ~KillWhen() { join(); }

    void join() {
        if (thread_.joinable()) thread_.join();
    }
    /// Whether `ready()` held before the kill (false: killed after `limit` instead).
    bool ready_seen() const { return ready_seen_; }
    /// Milliseconds from the kill to `then`.
    double milliseconds_from_kill_to(std::chrono::steady_clock::time_point then) const {
        return std::chrono::duration<double, std::milli>(then - killed_at_).count();
    }

  private:
    bool ready_seen_ = false;
    std::chrono::steady_clock::time_point killed_at_{};
    std::thread thread_;  // last: it starts once the members it writes exist
};

/// The id of the calling thread (gettid), for sleeping_in_system_call.
pid_t current_thread_id();

/// Whether thread `thread_id` of this process is asleep (state 'S' in /proc/self/task/<id>/stat)
/// inside system call `system_call` (the first number in /proc/self/task/<id>/syscall) with
/// `first_argument` (if given) as its first argument: proof that a waiter is parked, not about to
/// park.
bool sleeping_in_system_call(pid_t thread_id, long system_call,
                             std::optional<uint64_t> first_argument = std::nullopt);

/// Waits (bounded by `limit`) until sleeping_in_system_call holds; false if it never did.
bool wait_until_sleeping_in_system_call(pid_t thread_id, long system_call,
                                        std::optional<uint64_t> first_argument,
                                        std::chrono::milliseconds limit = 10000ms);

/// Reads `fd` until end of file, at most until `limit` has passed (then `timed_out` is set).
std::string read_until_end_of_file(int fd, std::chrono::milliseconds limit, bool& timed_out);

/// The errc that `body` throws (as shuttle::Error), or errc::ok if it returns.
template <class F>
errc error_of(F body) {
    try {
        body();
    } catch (const Error& error) {
        return error.condition();
    }
    return errc::ok;
}

}  // namespace shuttle::test
