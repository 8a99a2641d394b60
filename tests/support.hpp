// Shared helpers for the test suite: unique names, children with a watchdog.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "shuttle/process.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::test {

using namespace std::chrono_literals;

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

}  // namespace shuttle::test
