// The pipe's only Linux-specific code: socketpair lifetime tokens and doorbells.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <vector>

#include "shuttle/detail/pipe_socket.hpp"

namespace shuttle::detail {
namespace {

constexpr short hang_up_events = POLLHUP | POLLRDHUP | POLLERR;

/// poll() timeout in milliseconds for `deadline`, rounded up so a wait never ends early.
int poll_timeout(std::chrono::steady_clock::time_point deadline) noexcept {
    if (deadline == std::chrono::steady_clock::time_point::max()) return -1;
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<decltype(ms)>(ms, INT_MAX));
}

SocketState state_of(short revents) noexcept {
    if (revents & hang_up_events) return SocketState::hung_up;
    if (revents & POLLIN) return SocketState::readable;
    return SocketState::quiet;
}

}  // namespace

int open_socket_pair(int (&fds)[2]) noexcept {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return errno;
    return 0;
}

SocketState wait_socket(int fd, std::chrono::steady_clock::time_point deadline) noexcept {
    for (;;) {
        pollfd entry{fd, POLLIN | POLLRDHUP, 0};
        int count = ::poll(&entry, 1, poll_timeout(deadline));
        if (count > 0) return state_of(entry.revents);
        if (count == 0) {
            if (std::chrono::steady_clock::now() >= deadline) return SocketState::quiet;
            continue;  // poll's millisecond rounding woke us a hair early
        }
        if (errno != EINTR) return SocketState::hung_up;  // EBADF/ENOMEM: never sleep forever
    }
}

std::size_t wait_sockets(std::span<const int> fds, std::span<SocketState> states,
                         std::chrono::steady_clock::time_point deadline) noexcept {
    std::vector<pollfd> entries(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) entries[i] = pollfd{fds[i], POLLIN | POLLRDHUP, 0};
    for (;;) {
        int count = ::poll(entries.data(), entries.size(), poll_timeout(deadline));
        if (count >= 0 || errno != EINTR) {
            std::size_t ready = 0;
            for (std::size_t i = 0; i < fds.size(); ++i) {
                states[i] = count < 0 ? SocketState::hung_up : state_of(entries[i].revents);
                ready += states[i] != SocketState::quiet;
            }
            if (ready > 0 || std::chrono::steady_clock::now() >= deadline) return ready;
        }
    }
}

bool socket_hung_up(int fd) noexcept {
    pollfd entry{fd, POLLIN | POLLRDHUP, 0};
    int count;
    do count = ::poll(&entry, 1, 0);
    while (count < 0 && errno == EINTR);
    return count > 0 && (entry.revents & hang_up_events);
}

bool ring_socket(int fd) noexcept {
    const char byte = 1;
    ssize_t sent;
    do sent = ::send(fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (sent < 0 && errno == EINTR);
    return !(sent < 0 && (errno == EPIPE || errno == ECONNRESET));
}

void drain_socket(int fd) noexcept {
    char buffer[256];
    for (;;) {
        ssize_t got = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got > 0 && static_cast<std::size_t>(got) == sizeof buffer) continue;
        if (got < 0 && errno == EINTR) continue;
        return;
    }
}

void close_socket(int fd) noexcept {
    if (fd >= 0) ::close(fd);
}

int open_ready_set(int socket_fd, ReadySet& set) noexcept {
    set.self_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    set.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    int error = set.self_fd < 0 || set.epoll_fd < 0 ? errno : 0;
    for (int fd : {socket_fd, set.self_fd}) {
        if (error != 0) break;
        epoll_event event{};
        event.events = EPOLLIN | EPOLLRDHUP;
        event.data.fd = fd;
        if (::epoll_ctl(set.epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) error = errno;
    }
    if (error != 0) close_ready_set(set);
    return error;
}

void ring_self(const ReadySet& set) noexcept {
    const uint64_t one = 1;
    ssize_t written;
    do written = ::write(set.self_fd, &one, sizeof one);
    while (written < 0 && errno == EINTR);
}

void drain_ready_set(const ReadySet& set, int socket_fd) noexcept {
    drain_socket(socket_fd);
    uint64_t count;
    ssize_t got;
    do got = ::read(set.self_fd, &count, sizeof count);
    while (got < 0 && errno == EINTR);
}

void close_ready_set(ReadySet& set) noexcept {
    if (set.epoll_fd >= 0) ::close(set.epoll_fd);
    if (set.self_fd >= 0) ::close(set.self_fd);
    set = ReadySet{};
}

}  // namespace shuttle::detail
