// shuttle::Connection's receiving side: waiting for data, taking frames out of the incoming ring
// (whole messages, and larger ones chunk by chunk), poll() and wait() over several ends.
#include "shuttle/pipe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "shuttle/detail/pipe_layout.hpp"
#include "shuttle/detail/pipe_lock.hpp"
#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/detail/pipe_wait.hpp"

namespace shuttle {

using detail::copy_from_ring;
using detail::frame_size;
using detail::FrameHeader;
using detail::FrameKind;
using detail::header_size;
using detail::total_field_size;

/// Where a received message goes: a vector, a string, or the caller's buffer (or nowhere, to
/// only learn the next message's length).
struct Connection::Sink {
    std::size_t limit = no_max_length;
    errc too_long = errc::too_large;
    std::vector<std::byte>* bytes = nullptr;
    std::string* text = nullptr;
    std::byte* buffer = nullptr;
    bool peek = false;

    std::byte* prepare(std::size_t length) {
        if (bytes) {
            bytes->resize(length);
            return bytes->data();
        }
        if (text) {
            text->resize(length);
            return reinterpret_cast<std::byte*>(text->data());
        }
        return buffer;
    }
    void discard() {
        if (bytes) bytes->clear();
        if (text) text->clear();
    }
};

bool Connection::data_ready() noexcept {
    const uint64_t read = in_->read_cursor.load(std::memory_order_relaxed);
    if (cached_write_ > read) return true;
    // (P4) pairs with (P1) in pipe_send.cpp. seq_cst: also the receiver's re-check after its
    // flag store (P5), the other half of the Dekker handshake (P2).
    cached_write_ = in_->write_cursor.load(std::memory_order_seq_cst);
    return cached_write_ > read;
}

status Connection::wait_for_data(Mode mode, steady_clock::time_point deadline) {
    if (data_ready()) [[likely]]
        return {};
    // A hang-up is seen through a system call; the data the peer published before closing is
    // visible after it: look again before reporting EOF. A try asks the kernel at once; a wait
    // first spins a little without system calls (in a ping-pong the answer comes within a
    // microsecond: a poll() per receive would double the round trip), then asks every 1 ms.
    auto data_or_eof = [&] { return data_ready() ? status{} : status{errc::eof}; };
    if (in_peer_gone_) return data_or_eof();
    if (mode == Mode::try_once) {
        if (detail::peer_hung_up(in_fd_, in_peer_gone_)) return data_or_eof();
        if (recv_ready_.epoll_fd >= 0) [[unlikely]]
            arm_recv();
        return errc::empty;
    }
    return detail::wait_until_ready(
        {in_->reader_parked, in_fd_, in_peer_gone_}, mode == Mode::until, deadline,
        detail::first_peer_check_delay, [&] { return data_ready(); }, data_or_eof);
}

void Connection::consume(uint64_t read_cursor) noexcept {
    // (P7) pairs with (P3) in pipe_send.cpp. (P8) A Dekker handshake with the parked sender:
    // store this cursor, then load its flag, both seq_cst; the sender stores its flag (P5),
    // then re-reads this cursor (P3), both seq_cst: no doorbell is lost.
    in_->read_cursor.store(read_cursor, std::memory_order_seq_cst);
    if (in_->writer_parked.load(std::memory_order_seq_cst) != 0 &&
        in_->writer_parked.exchange(0, std::memory_order_acq_rel) != 0) {
        detail::ring_socket(in_fd_);
    }
}

result<std::size_t> Connection::recv_impl(Sink& sink, Mode mode,
                                          steady_clock::time_point deadline) {
    require_readable();
    switch (detail::acquire_pipe_lock(in_->reader_lock, mode == Mode::try_once, deadline)) {
        case detail::PipeLockResult::busy: return errc::empty;
        case detail::PipeLockResult::timeout: return errc::timeout;
        default: break;
    }
    detail::PipeLockGuard guard(in_->reader_lock);
    const uint64_t mask = capacity_ - 1;
    const uint64_t largest_frame = detail::largest_frame(capacity_);
    uint64_t read = in_->read_cursor.load(std::memory_order_relaxed);

    // Reads the frame at `read`, checking every value found in the ring before using it.
    auto read_frame = [&](FrameHeader& header, uint64_t& total) {
        std::memcpy(&header, in_->data() + (read & mask), sizeof header);
        const uint64_t available = cached_write_ - read;
        const auto kind = static_cast<FrameKind>(header.kind);
        if (header.kind < 1 || header.kind > 5 || frame_size(kind, header.length) > available ||
            frame_size(kind, header.length) > largest_frame) {
            throw Error(errc::corrupt, fmt::format("pipe ring holds a corrupt frame (kind {}, "
                                                   "length {}) at {}",
                                                   header.kind, header.length, read));
        }
        total = header.length;
        if (kind == FrameKind::begin) {
            std::memcpy(&total, in_->data() + ((read + header_size) & mask), sizeof total);
            if (total <= header.length) {
                throw Error(errc::corrupt, "pipe ring holds a corrupt message length");
            }
        }
        return kind;
    };

    for (;;) {
        if (status ready = wait_for_data(mode, deadline); !ready) return ready.error();
        read = in_->read_cursor.load(std::memory_order_relaxed);
        FrameHeader header;
        uint64_t total = 0;
        const FrameKind kind = read_frame(header, total);
        if (kind == FrameKind::middle || kind == FrameKind::end || kind == FrameKind::abort) {
            // The rest of a message whose receiver (another copy of this end) died midway, or a
            // stray abort: nothing to deliver.
            read += frame_size(kind, header.length);
            consume(read);
            continue;
        }
        if (sink.peek) return static_cast<std::size_t>(total);
        if (total > sink.limit) return sink.too_long;  // not consumed
        std::byte* target = sink.prepare(total);
        if (kind == FrameKind::whole) {
            copy_from_ring(*in_, mask, read + header_size, target, header.length);
            consume(read + frame_size(kind, header.length));
            return static_cast<std::size_t>(total);
        }
        // A chunked message: take each chunk as it comes, freeing ring space for the sender.
        copy_from_ring(*in_, mask, read + header_size + total_field_size, target, header.length);
        uint64_t received = header.length;
        read += frame_size(kind, header.length);
        consume(read);
        while (received < total) {
            if (!wait_for_data(Mode::block, no_deadline)) {  // EOF mid-message: cut off
                sink.discard();
                return errc::cut_off;
            }
            uint64_t unused;
            const FrameKind next = read_frame(header, unused);
            if (next == FrameKind::whole || next == FrameKind::begin) {
                sink.discard();  // the sender's lock was taken over without an abort
                return errc::cut_off;
            }
            if (next == FrameKind::abort) {
                consume(read + frame_size(next, header.length));
                sink.discard();
                return errc::cut_off;
            }
            if (received + header.length > total ||
                (next == FrameKind::end) != (received + header.length == total)) {
                throw Error(errc::corrupt, "pipe ring holds chunks that do not add up");
            }
            copy_from_ring(*in_, mask, read + header_size, target + received, header.length);
            received += header.length;
            read += frame_size(next, header.length);
            consume(read);
        }
        return static_cast<std::size_t>(total);
    }
}

result<std::vector<std::byte>> Connection::recv_bytes(std::size_t max_length) {
    return recv_bytes_until(no_deadline, max_length);
}
result<std::vector<std::byte>> Connection::try_recv_bytes(std::size_t max_length) {
    std::vector<std::byte> message;
    Sink sink{.limit = max_length, .bytes = &message};
    if (auto got = recv_impl(sink, Mode::try_once, {}); !got) return got.error();
    return message;
}
result<std::vector<std::byte>> Connection::recv_bytes_until(steady_clock::time_point deadline,
                                                            std::size_t max_length) {
    std::vector<std::byte> message;
    Sink sink{.limit = max_length, .bytes = &message};
    auto got = recv_impl(sink, deadline == no_deadline ? Mode::block : Mode::until, deadline);
    if (!got) return got.error();
    return message;
}

result<std::string> Connection::recv(std::size_t max_length) {
    return recv_until(no_deadline, max_length);
}
result<std::string> Connection::try_recv(std::size_t max_length) {
    std::string message;
    Sink sink{.limit = max_length, .text = &message};
    if (auto got = recv_impl(sink, Mode::try_once, {}); !got) return got.error();
    return message;
}
result<std::string> Connection::recv_until(steady_clock::time_point deadline,
                                           std::size_t max_length) {
    std::string message;
    Sink sink{.limit = max_length, .text = &message};
    auto got = recv_impl(sink, deadline == no_deadline ? Mode::block : Mode::until, deadline);
    if (!got) return got.error();
    return message;
}

result<std::size_t> Connection::recv_bytes_into(std::span<std::byte> buffer) {
    return recv_bytes_into_until(buffer, no_deadline);
}
result<std::size_t> Connection::try_recv_bytes_into(std::span<std::byte> buffer) {
    Sink sink{.limit = buffer.size(), .too_long = errc::buffer_too_small, .buffer = buffer.data()};
    return recv_impl(sink, Mode::try_once, {});
}
result<std::size_t> Connection::recv_bytes_into_until(std::span<std::byte> buffer,
                                                      steady_clock::time_point deadline) {
    Sink sink{.limit = buffer.size(), .too_long = errc::buffer_too_small, .buffer = buffer.data()};
    return recv_impl(sink, deadline == no_deadline ? Mode::block : Mode::until, deadline);
}

result<std::size_t> Connection::message_length() {
    Sink sink{.peek = true};
    return recv_impl(sink, Mode::try_once, {});
}

bool Connection::poll() {
    require_readable();
    if (data_ready()) return true;
    return detail::peer_hung_up(in_fd_, in_peer_gone_);
}

bool Connection::poll_until(steady_clock::time_point deadline) {
    require_readable();
    if (poll()) return true;
    switch (detail::acquire_pipe_lock(in_->reader_lock, false, deadline)) {
        case detail::PipeLockResult::busy:
        case detail::PipeLockResult::timeout: return poll();
        default: break;
    }
    detail::PipeLockGuard guard(in_->reader_lock);
    status ready = wait_for_data(deadline == no_deadline ? Mode::block : Mode::until, deadline);
    return ready || ready.error() == errc::eof;
}

// ---- waiting on several connections ----------------------------------------------------------

std::vector<Connection*> wait(std::span<Connection* const> connections,
                              steady_clock::time_point deadline) {
    std::vector<Connection*> ready;
    auto collect = [&](bool ask_kernel) {
        for (Connection* connection : connections) {
            if (ask_kernel ? connection->poll() : connection->data_ready()) {
                ready.push_back(connection);
            }
        }
        return !ready.empty();
    };
    for (Connection* connection : connections) connection->require_readable();
    if (collect(true) || connections.empty()) return ready;
    Backoff backoff;
    while (backoff.step()) {
        if (collect(false)) return ready;
        if (deadline != no_deadline && steady_clock::now() >= deadline) return ready;
    }
    std::vector<int> fds;
    for (Connection* connection : connections) fds.push_back(connection->in_fd_);
    std::vector<detail::SocketState> states(fds.size());
    for (;;) {
        for (Connection* connection : connections) {
            connection->in_->reader_parked.store(1, std::memory_order_seq_cst);
        }
        const bool found = collect(false);
        const auto now = steady_clock::now();
        std::fill(states.begin(), states.end(), detail::SocketState::quiet);
        if (!found && now < deadline) {
            detail::wait_sockets(fds, states, std::min(deadline, now + detail::park_backstop));
        }
        for (Connection* connection : connections) {
            connection->in_->reader_parked.store(0, std::memory_order_relaxed);
        }
        if (found) return ready;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (states[i] == detail::SocketState::readable) detail::drain_socket(fds[i]);
        }
        if (collect(true) || steady_clock::now() >= deadline) return ready;
    }
}

}  // namespace shuttle
