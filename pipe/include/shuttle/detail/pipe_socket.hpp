// The kernel side of a shuttle pipe (implemented in pipe/src/pipe_socket_linux.cpp, the pipe's
// one Linux-specific file): a socketpair per direction whose descriptors are the lifetime tokens
// of the two ends (the kernel reports hang-up once every copy of one end is closed, counting
// fork-inherited copies, dead processes and close-on-exec) and the doorbell a parked side waits on.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

namespace shuttle::detail {

/// A connected AF_UNIX SOCK_STREAM pair, both close-on-exec. Returns 0 or an errno value.
int open_socket_pair(int (&fds)[2]) noexcept;

enum class SocketState {
    quiet,     // nothing happened before the deadline
    readable,  // a doorbell byte is waiting
    hung_up,   // every copy of the peer descriptor is closed
};

/// Waits until `fd` is readable or hung up, at most until `deadline` (time_point::max() waits
/// without limit). EINTR is retried with the remaining time. Hang-up wins over readable.
SocketState wait_socket(int fd, std::chrono::steady_clock::time_point deadline) noexcept;

/// The same over several descriptors: fills `states` (one per fd) and returns how many are not
/// quiet (0 after the deadline).
std::size_t wait_sockets(std::span<const int> fds, std::span<SocketState> states,
                         std::chrono::steady_clock::time_point deadline) noexcept;

/// Non-blocking: true if every copy of the peer descriptor is closed. One poll() system call.
bool socket_hung_up(int fd) noexcept;

/// Writes one doorbell byte (MSG_NOSIGNAL | MSG_DONTWAIT: a closed peer or a full buffer is
/// ignored, never a SIGPIPE). Returns false if the peer is gone (EPIPE / ECONNRESET).
bool ring_socket(int fd) noexcept;

/// Reads and discards every doorbell byte waiting on `fd` (non-blocking).
void drain_socket(int fd) noexcept;

void close_socket(int fd) noexcept;

/// What an event loop waits on for one direction of an end (docs/event_loop.md): an epoll set
/// holding the direction's socket (a doorbell byte, or the peer's hang-up) and an eventfd the
/// end rings itself with (ring_self) when arming finds the ring ready already. Polls readable
/// when either is. Both close-on-exec.
struct ReadySet {
    int epoll_fd = -1;
    int self_fd = -1;
};
/// Makes the set for `socket_fd`; returns 0 or an errno value.
int open_ready_set(int socket_fd, ReadySet& set) noexcept;
void ring_self(const ReadySet& set) noexcept;
/// Drains the set's socket and eventfd (non-blocking).
void drain_ready_set(const ReadySet& set, int socket_fd) noexcept;
void close_ready_set(ReadySet& set) noexcept;

}  // namespace shuttle::detail
