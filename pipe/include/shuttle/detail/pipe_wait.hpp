// Waiting on one direction of a pipe: the receiver for data, the sender for room. Both spin,
// yield (Backoff), then park on their socket of the direction with their parked flag set, and
// ask the kernel now and then whether the other side hung up. See docs/pipe.md ("the doorbell").
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/error.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// How often a waiting side asks the kernel whether the other side is gone while it spins or
/// yields (a parked side wakes on the hang-up itself); a sender also asks on its first send this
/// long after its last question.
inline constexpr auto peer_check_interval = std::chrono::milliseconds(1);
/// A waiting receiver's first question to the kernel (is the peer gone?) comes after this much
/// spinning/yielding, then every peer_check_interval; a parked one wakes on the hang-up itself.
inline constexpr auto first_peer_check_delay = std::chrono::microseconds(50);
/// A parked side wakes at least this often, whatever the doorbell and the hang-up do.
inline constexpr auto park_backstop = std::chrono::milliseconds(100);

/// Whether every copy of the other end of `fd`'s socketpair is closed: one poll() until it is,
/// then remembered in `peer_gone` (sticky).
inline bool peer_hung_up(int fd, bool& peer_gone) noexcept {
    if (!peer_gone && socket_hung_up(fd)) peer_gone = true;
    return peer_gone;
}

/// One side of a direction as it waits: its parked flag in the ring, its socket of the
/// direction, and its sticky "the other side hung up".
struct PipeWaiter {
    std::atomic<uint32_t>& parked;
    int fd;
    bool& peer_gone;
};

/// The slow path of a wait for `ready()`, once a first look found it false. Spins and yields,
/// asking the kernel about the peer `first_peer_check` into the wait and then every
/// peer_check_interval; then parks on the socket. Parking sets the flag (seq_cst), then looks
/// again: the other side stores its cursor (seq_cst), then reads the flag and rings only if it
/// was set, so no doorbell is lost. Returns ok once ready(), on_peer_gone() once the other side
/// hung up, errc::timeout once `deadline` passed if `timed` (else `deadline` is not used).
template <class Ready, class OnPeerGone>
status wait_until_ready(PipeWaiter waiter, bool timed, steady_clock::time_point deadline,
                        steady_clock::duration first_peer_check, Ready ready,
                        OnPeerGone on_peer_gone) {
    Backoff backoff;
    auto next_peer_check = steady_clock::now() + first_peer_check;
    uint32_t polls = 0;
    while (backoff.step()) {
        if (ready()) {
            backoff.satisfied();
            return {};
        }
        // Past the first polls Backoff reads the clock itself: one more read is as cheap.
        if (timed || ++polls > 16) {
            const auto now = steady_clock::now();
            if (timed && now >= deadline) return errc::timeout;
            if (now >= next_peer_check) {
                next_peer_check = now + peer_check_interval;
                if (peer_hung_up(waiter.fd, waiter.peer_gone)) return on_peer_gone();
            }
        }
    }
    for (;;) {
        // (P5) The waiter's half of the Dekker handshakes (P2) and (P8): store the flag, then
        // re-read the other side's cursor in ready() (seq_cst loads (P4) / (P3)).
        waiter.parked.store(1, std::memory_order_seq_cst);
        if (ready()) {
            waiter.parked.store(0, std::memory_order_relaxed);
            return {};
        }
        const auto now = steady_clock::now();
        if (timed && now >= deadline) {
            waiter.parked.store(0, std::memory_order_relaxed);
            return errc::timeout;
        }
        const auto until = std::min(timed ? deadline : no_deadline, now + park_backstop);
        const SocketState state = wait_socket(waiter.fd, until);
        waiter.parked.store(0, std::memory_order_relaxed);
        if (state == SocketState::hung_up) {
            waiter.peer_gone = true;
            return on_peer_gone();
        }
        if (state == SocketState::readable) drain_socket(waiter.fd);
        if (ready()) return {};
    }
}

}  // namespace shuttle::detail
