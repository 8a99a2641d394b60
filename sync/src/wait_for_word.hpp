// The wait Semaphore and Event share: spin, yield, then park on a futex word with a backstop.
#pragma once

#include <atomic>
#include <cstdint>
#include <stop_token>

#include "shuttle/detail/sync_state.hpp"
#include "shuttle/error.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// Polls `ready` (spin, yield), then parks on `word` with a backstop, counting ourselves in
/// `waiters` while parked so wakers know to make the syscall. `ready(word_value)` is checked
/// after every wake; `word` is parked on with its last value.
template <class Ready>
status wait_for_word(const std::atomic<uint32_t>& word, std::atomic<uint32_t>& waiters,
                     steady_clock::time_point deadline, const std::stop_token& stop, Ready ready) {
    if (ready(word.load(std::memory_order_acquire))) return {};
    if (deadline != no_deadline && steady_clock::now() >= deadline) return errc::timeout;
    Backoff backoff;
    while (backoff.step()) {
        if (ready(word.load(std::memory_order_acquire))) return {};
        if (stop.stop_requested()) return errc::cancelled;
        if (deadline != no_deadline && steady_clock::now() >= deadline) return errc::timeout;
    }
    // Dekker with the waker: we announce (seq_cst) then the futex re-reads the word; the waker
    // changes the word (seq_cst) then reads `waiters`. One of us sees the other.
    waiters.fetch_add(1, std::memory_order_seq_cst);
    status outcome;
    for (;;) {
        uint32_t value = word.load(std::memory_order_seq_cst);
        if (ready(value)) break;
        if (deadline != no_deadline && steady_clock::now() >= deadline) {
            outcome = errc::timeout;
            break;
        }
        if (wait_on(word, value, backstop_deadline(deadline), stop) == wake_reason::cancelled) {
            outcome = ready(word.load(std::memory_order_acquire)) ? status{} : errc::cancelled;
            break;
        }
    }
    waiters.fetch_sub(1, std::memory_order_relaxed);
    return outcome;
}

}  // namespace shuttle::detail
