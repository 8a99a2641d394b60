// Helpers for the sync tests: shared words in an anonymous segment, timing checks.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "counters_segment.hpp"
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

inline bool sanitized() {
    return std::getenv("SHUTTLE_SANITIZED") != nullptr;
}

/// The calling process dies at once, as if killed from outside.
[[noreturn]] inline void die_now() {
    ::kill(::getpid(), SIGKILL);
    for (;;) ::pause();
}

}  // namespace shuttle::test
