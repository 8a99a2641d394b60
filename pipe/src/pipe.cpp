// shuttle::Pipe / Connection: one SPSC byte ring per direction in an anonymous segment, and one
// socketpair per direction as lifetime token and doorbell. See docs/pipe.md for the protocol.
// This file: making a pipe, an end's lifetime (move, close: the lifetime token) and what both
// directions share (the end lock's slow path, activity()). Sending is in pipe_send.cpp,
// receiving in pipe_recv.cpp, the segment's layout and framing in detail/pipe_layout.hpp.
#include "shuttle/pipe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <new>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/pipe_layout.hpp"
#include "shuttle/detail/pipe_lock.hpp"
#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {

using detail::PipeControl;
using detail::PipeRing;

// ---- the per-side lock (the fast path is in detail/pipe_lock.hpp) ---------------------------
namespace detail {

void pipe_concurrent_use() {
    throw Error(errc::invalid_argument,
                "one Connection is used by two threads at once in the same direction (send and "
                "send, or recv and recv); give each thread its own end or serialise them");
}

namespace {

/// A waiter for a pipe lock wakes at least this often to look at the holder again.
constexpr auto lock_backstop = std::chrono::milliseconds(2);

}  // namespace

PipeLockResult acquire_pipe_lock_slow(PipeLock& lock, ProcessIdentity me, bool try_once,
                                      steady_clock::time_point deadline) {
    Backoff backoff;
    OwnerWord word = pipe_lock_word(lock);
    // A holder seen without its namespace is alive mid-claim, or was killed right after its CAS:
    // the same holder still unnamed after `lock_backstop` is judged as a process of ours.
    UnnamedHolderWatch unnamed_holder(lock_backstop);
    for (;;) {
        uint64_t holder = 0;
        if (word.claim(holder, me, SHUTTLE_KILL_POINT_NAME("pipe.lock.taken_before_namespace"))) {
            return PipeLockResult::acquired;
        }
        if (holder == me) pipe_concurrent_use();
        if (try_once) return PipeLockResult::busy;
        if (deadline != no_deadline && steady_clock::now() >= deadline)
            return PipeLockResult::timeout;
        if (backoff.step()) continue;
        // Parking: first make sure the holder is not dead (the one holding it now).
        holder = word.holder();
        if (holder == 0) continue;
        const OwnerJudgement judgement = word.judge(holder, &unnamed_holder);
        if (judgement.liveness == Liveness::dead) {
            // take_over() refuses if the lock changed hands meanwhile: then judge again.
            if (word.take_over(holder, judgement, me)) return PipeLockResult::taken_from_dead;
            continue;
        }
        lock.waiters.fetch_add(1, std::memory_order_seq_cst);
        const uint32_t seen = lock.released.load(std::memory_order_acquire);
        if (lock.owner.load(std::memory_order_seq_cst) != 0) {
            auto until = std::min(deadline, steady_clock::now() + lock_backstop);
            wait_on(lock.released, seen, until);
        }
        lock.waiters.fetch_sub(1, std::memory_order_relaxed);
    }
}

}  // namespace detail

// ---- Connection: lifetime --------------------------------------------------------------------

Connection::Connection(Connection&& other) noexcept {
    *this = std::move(other);
}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this == &other) return *this;
    close();
    segment_ = std::move(other.segment_);
    control_ = std::exchange(other.control_, nullptr);
    in_ = std::exchange(other.in_, nullptr);
    out_ = std::exchange(other.out_, nullptr);
    in_fd_ = std::exchange(other.in_fd_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    side_ = other.side_;
    open_ = std::exchange(other.open_, false);
    in_peer_gone_ = other.in_peer_gone_;
    out_peer_gone_ = other.out_peer_gone_;
    capacity_ = std::exchange(other.capacity_, 0);  // a moved-from end reports capacity 0
    cached_write_ = other.cached_write_;
    cached_read_ = other.cached_read_;
    seen_peer_closes_ = other.seen_peer_closes_;
    last_clock_read_ticks_ = other.last_clock_read_ticks_;
    last_peer_check_ = other.last_peer_check_;
    recv_ready_ = std::exchange(other.recv_ready_, {});
    send_ready_ = std::exchange(other.send_ready_, {});
    return *this;
}

Connection::~Connection() {
    close();
}

void Connection::close() noexcept {
    if (!open_) return;
    open_ = false;
    // Descriptors first, then the count: a sender that sees the count move and asks the kernel
    // finds the hang-up already there if this was the last copy.
    detail::close_ready_set(recv_ready_);
    detail::close_ready_set(send_ready_);
    detail::close_socket(std::exchange(in_fd_, -1));
    detail::close_socket(std::exchange(out_fd_, -1));
    control_->closes[side_].fetch_add(1, std::memory_order_seq_cst);
    in_ = out_ = nullptr;
    control_ = nullptr;
    segment_.reset();
}

int Connection::recv_descriptor() {
    require_readable();
    if (recv_ready_.epoll_fd < 0) {
        if (const int error = detail::open_ready_set(in_fd_, recv_ready_); error != 0) {
            throw_system_error(error, "pipe recv_descriptor");
        }
        arm_recv();
    }
    return recv_ready_.epoll_fd;
}

int Connection::send_descriptor() {
    require_writable();
    if (send_ready_.epoll_fd < 0) {
        if (const int error = detail::open_ready_set(out_fd_, send_ready_); error != 0) {
            throw_system_error(error, "pipe send_descriptor");
        }
        arm_send(1);
    }
    return send_ready_.epoll_fd;
}

// Arming (docs/event_loop.md): drain, set the parked flag (seq_cst), look at the ring again
// (seq_cst) and ring ourselves if it is ready: the Dekker handshake (P2)/(P8) of a parked
// waiter, with the event loop doing the sleeping.
void Connection::arm_recv() noexcept {
    if (recv_ready_.epoll_fd < 0) return;
    detail::drain_ready_set(recv_ready_, in_fd_);
    in_->reader_parked.store(1, std::memory_order_seq_cst);  // (P5)
    if (data_ready()) detail::ring_self(recv_ready_);
}

void Connection::arm_send(uint64_t need) noexcept {
    if (send_ready_.epoll_fd < 0) return;
    detail::drain_ready_set(send_ready_, out_fd_);
    out_->writer_parked.store(1, std::memory_order_seq_cst);  // (P5)
    const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
    const uint64_t read = out_->read_cursor.load(std::memory_order_seq_cst);  // (P3)
    if (write - read <= capacity_ - std::min<uint64_t>(need, capacity_)) {
        detail::ring_self(send_ready_);
    }
}

void Connection::require_open() const {
    if (!open_) throw Closed("the pipe end is closed (or was never opened)");
}
void Connection::require_readable() const {
    require_open();
    if (!in_) throw Error(errc::wrong_end, "this end of a one-way pipe only sends");
}
void Connection::require_writable() const {
    require_open();
    if (!out_) throw Error(errc::wrong_end, "this end of a one-way pipe only receives");
}

PipeActivity Connection::activity() const noexcept {
    PipeActivity now;
    if (in_) {
        now.incoming_receiver_parked = in_->reader_parked.load(std::memory_order_acquire) != 0;
        now.incoming_sender_parked = in_->writer_parked.load(std::memory_order_acquire) != 0;
        now.incoming_receive_lock_waiters =
            in_->reader_lock.waiters.load(std::memory_order_acquire);
    }
    if (out_) {
        now.outgoing_receiver_parked = out_->reader_parked.load(std::memory_order_acquire) != 0;
        now.outgoing_sender_parked = out_->writer_parked.load(std::memory_order_acquire) != 0;
        now.outgoing_send_lock_waiters = out_->writer_lock.waiters.load(std::memory_order_acquire);
    }
    return now;
}

// ---- making a pipe ---------------------------------------------------------------------------

std::pair<Connection, Connection> Pipe(bool duplex, PipeOptions options) {
    const std::size_t capacity = options.capacity;
    if (capacity < detail::min_pipe_capacity || capacity > detail::max_pipe_capacity ||
        !std::has_single_bit(capacity)) {
        throw Error(
            errc::invalid_argument,
            fmt::format("pipe capacity {} must be a power of two from 4 KiB to 1 GiB", capacity));
    }
    const int rings = duplex ? 2 : 1;
    SegmentInfo info;
    info.kind = ObjectKind::pipe;
    info.capacity = capacity;
    info.max_message_size = detail::largest_frame(capacity);
    info.flags = duplex ? detail::pipe_flag_duplex : 0;
    info.registry_capacity = 0;
    auto body_size = [rings](const SegmentInfo& i) -> std::optional<uint64_t> {
        return detail::ring_offset(rings, i.capacity);
    };
    auto init = [&](Segment& segment) {
        auto* control = new (segment.body()) PipeControl{};
        control->capacity = capacity;
        control->duplex = duplex ? 1 : 0;
        for (int r = 0; r < rings; ++r) {
            new (segment.body() + detail::ring_offset(r, capacity)) PipeRing{};
        }
    };
    auto segment = std::make_shared<Segment>(Segment::create_anonymous(info, body_size, init));

    int sockets[2][2] = {{-1, -1}, {-1, -1}};
    for (int r = 0; r < rings; ++r) {
        if (int error = detail::open_socket_pair(sockets[r])) {
            for (auto& pair : sockets) {
                for (int fd : pair) detail::close_socket(fd);
            }
            throw_system_error(error, "socketpair for a pipe");
        }
    }
    auto* control = reinterpret_cast<PipeControl*>(segment->body());
    auto ring = [&](int r) {
        return reinterpret_cast<PipeRing*>(segment->body() + detail::ring_offset(r, capacity));
    };
    // Ring 0 carries end 1 -> end 0; ring 1 (duplex only) carries end 0 -> end 1. Socketpair r
    // belongs to ring r: end 0 holds sockets[r][0], end 1 holds sockets[r][1].
    std::pair<Connection, Connection> ends;
    Connection* both[2] = {&ends.first, &ends.second};
    for (int side = 0; side < 2; ++side) {
        Connection& end = *both[side];
        end.segment_ = segment;
        end.control_ = control;
        end.side_ = side;
        end.capacity_ = capacity;
        end.open_ = true;
        end.last_peer_check_ = steady_clock::now();
    }
    ends.first.in_ = ring(0);
    ends.first.in_fd_ = sockets[0][0];
    ends.second.out_ = ring(0);
    ends.second.out_fd_ = sockets[0][1];
    if (duplex) {
        ends.first.out_ = ring(1);
        ends.first.out_fd_ = sockets[1][0];
        ends.second.in_ = ring(1);
        ends.second.in_fd_ = sockets[1][1];
    }
    return ends;
}

}  // namespace shuttle
