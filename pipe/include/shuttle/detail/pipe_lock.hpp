// The lock over one side (the senders, or the receivers) of one direction of a pipe
// (PipeLock, in detail/pipe_layout.hpp): free in one CAS when uncontended; contended waiters
// spin, yield, then sleep on its futex word; a holder proven dead is stepped over. The slow
// path is in pipe/src/pipe.cpp.
#pragma once

#include <atomic>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/owner_word.hpp"
#include "shuttle/detail/pipe_layout.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

enum class PipeLockResult { acquired, taken_from_dead, busy, timeout };

/// The lock's owner words (detail/owner_word.hpp: claim, judge, take over, release).
inline OwnerWord pipe_lock_word(PipeLock& lock) noexcept {
    return OwnerWord(lock.owner, lock.owner_namespace);
}

/// Throws Error(invalid_argument): the calling process already holds the lock, so two threads
/// use one Connection in the same direction at once.
[[noreturn]] void pipe_concurrent_use();

/// The contended path of acquire_pipe_lock(): waits for the holder (or steps over a dead one).
PipeLockResult acquire_pipe_lock_slow(PipeLock& lock, ProcessIdentity me, bool try_once,
                                      steady_clock::time_point deadline);

/// Takes `lock`: `busy` at once if held and `try_once`, `timeout` once `deadline` passed,
/// `taken_from_dead` if its holder had died holding it (the caller repairs what it left).
inline PipeLockResult acquire_pipe_lock(PipeLock& lock, bool try_once,
                                        steady_clock::time_point deadline) {
    const ProcessIdentity me = current_process_identity();
    uint64_t expected = 0;
    if (pipe_lock_word(lock).claim(expected, me)) [[likely]]
        return PipeLockResult::acquired;
    if (expected == me) pipe_concurrent_use();
    return acquire_pipe_lock_slow(lock, me, try_once, deadline);
}

inline void release_pipe_lock(PipeLock& lock) noexcept {
    // (P9) The owner word is released with release ordering (OwnerWord::release): the next
    // holder acquires what this one wrote. Then the waiter count, seq_cst; a waiter counts
    // itself (seq_cst) and then reads the owner (pipe.cpp). The release store is not seq_cst,
    // so that pair is not a full Dekker handshake: a wake-up it misses is caught by the waiter's
    // lock_backstop (its park is always bounded by it), never a hang.
    pipe_lock_word(lock).release();
    if (lock.waiters.load(std::memory_order_seq_cst) != 0) [[unlikely]] {
        lock.released.fetch_add(1, std::memory_order_release);
        wake_all(lock.released);
    }
}

/// Releases a lock taken with acquire_pipe_lock() at the end of a scope.
class PipeLockGuard {
  public:
    explicit PipeLockGuard(PipeLock& lock) noexcept : lock_(lock) {}
    ~PipeLockGuard() { release_pipe_lock(lock_); }
    PipeLockGuard(const PipeLockGuard&) = delete;
    PipeLockGuard& operator=(const PipeLockGuard&) = delete;

  private:
    PipeLock& lock_;
};

}  // namespace shuttle::detail
