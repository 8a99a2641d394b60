// Helpers for the sync tests: shared words in an anonymous segment, timing checks.
#pragma once

#include <linux/futex.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "counters_segment.hpp"
#include "shuttle/detail/sync_state.hpp"
#include "support.hpp"

namespace shuttle::test {

/// `count` 64-bit atomics in anonymous shared memory, inherited by fork()ed children.
class SharedWords {
  public:
    explicit SharedWords(uint64_t count = 16)
        : segment_(Segment::create_anonymous(counters_info(count), counters_body_size, {})) {
        for (uint64_t i = 0; i < count; ++i) (*this)[i].store(0);
    }
    std::atomic<uint64_t>& operator[](uint64_t index) const { return counters(segment_)[index]; }

  private:
    Segment segment_;
};

/// Waits (yielding, bounded) until `word` reaches at least `value`; false after 20 s.
inline bool await_at_least(const std::atomic<uint64_t>& word, uint64_t value) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (word.load() < value) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

/// Runs `body` and checks it took at least `timeout` and less than `timeout` + 50 ms.
template <class F>
void expect_takes(std::chrono::milliseconds timeout, F body) {
    auto start = std::chrono::steady_clock::now();
    body();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, timeout + std::chrono::milliseconds(50))
        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

/// The state letter of process `pid` from /proc/<pid>/stat ('R' running, 'S' sleeping, 'Z'
/// zombie, ...), or 0 if it is gone.
inline char process_state(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    std::FILE* file = std::fopen(path, "r");
    if (file == nullptr) return 0;
    char buffer[512] = {};
    std::size_t length = std::fread(buffer, 1, sizeof buffer - 1, file);
    std::fclose(file);
    buffer[length] = '\0';
    const char* close = std::strrchr(buffer, ')');  // the command name may hold spaces
    return close != nullptr && close[1] == ' ' ? close[2] : 0;
}

/// CPU time (user + system) process `pid` has used so far, from /proc/<pid>/stat (utime and
/// stime, fields 14 and 15), or a negative duration if it is gone.
inline std::chrono::microseconds process_cpu_time(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    std::FILE* file = std::fopen(path, "r");
    if (file == nullptr) return std::chrono::microseconds(-1);
    char buffer[1024] = {};
    std::size_t length = std::fread(buffer, 1, sizeof buffer - 1, file);
    std::fclose(file);
    buffer[length] = '\0';
    const char* cursor = std::strrchr(buffer, ')');
    if (cursor == nullptr) return std::chrono::microseconds(-1);
    cursor += 2;  // field 3, the state
    for (int field = 3; field < 14; ++field) {
        cursor = std::strchr(cursor, ' ');
        if (cursor == nullptr) return std::chrono::microseconds(-1);
        ++cursor;
    }
    char* end = nullptr;
    unsigned long long user = std::strtoull(cursor, &end, 10);
    unsigned long long system = std::strtoull(end, nullptr, 10);
    const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    return std::chrono::microseconds((user + system) * 1000000ull /
                                     static_cast<unsigned long long>(ticks_per_second));
}

/// Whether a waiter has flagged the lock's futex word (bit 31): a locker sets it right before
/// it goes to sleep in the kernel.
inline bool futex_word_has_waiters(const detail::LockState& state) {
    return (state.word.load(std::memory_order_acquire) & 0x80000000u) != 0;
}

/// The calling process dies at once, as if killed from outside.
[[noreturn]] inline void die_now() {
    ::kill(::getpid(), SIGKILL);
    for (;;) ::pause();
}

}  // namespace shuttle::test

// The names every sync test uses unqualified.
namespace shuttle {
namespace {
using namespace std::chrono_literals;
using test::NameGuard;
using test::run_child;
using test::SharedWords;
}  // namespace
}  // namespace shuttle
