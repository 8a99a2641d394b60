// shuttle::Connection's sending side: noticing a closed or dead peer, waiting for room, and
// writing frames into the outgoing ring (whole messages, and larger ones chunk by chunk).
#include "shuttle/pipe.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/pipe_layout.hpp"
#include "shuttle/detail/pipe_lock.hpp"
#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/detail/pipe_wait.hpp"

namespace shuttle {
namespace {

// A sender reads the clock at most once per `clock_read_ticks` of cheap_ticks(). On x86-64 that
// is the time-stamp counter (~10 ns to read here, against ~25 ns for steady_clock::now()), which
// ticks at >= 1 GHz on every CPU with an invariant TSC: 250k ticks are <= 0.25 ms, so a dead
// peer is noticed by the first send <= 1.25 ms after the last check. Elsewhere every send reads
// the clock.
#if defined(__x86_64__)
inline uint64_t cheap_ticks() noexcept {
    return __rdtsc();
}
constexpr uint64_t clock_read_ticks = 250'000;
#else
inline uint64_t cheap_ticks() noexcept {
    return 0;
}
constexpr uint64_t clock_read_ticks = 0;
#endif

}  // namespace

using detail::abort_reserve;
using detail::copy_into_ring;
using detail::frame_size;
using detail::FrameHeader;
using detail::FrameKind;
using detail::header_size;
using detail::round8;
using detail::total_field_size;

bool Connection::peer_closed_check() {
    if (out_peer_gone_) return true;
    const uint64_t closes = control_->closes[1 - side_].load(std::memory_order_relaxed);
    bool ask = closes != seen_peer_closes_;
    seen_peer_closes_ = closes;
    // A peer that died (or exited without close()) cannot bump the count: ask the kernel on the
    // first send at least peer_check_interval after the last question, however few sends came
    // in between. The tick counter is a cheap filter in front of the clock (it only bounds how
    // often the clock is read); the clock alone decides when to ask.
    if (!ask) {
        const uint64_t ticks = cheap_ticks();
        if (ticks - last_clock_read_ticks_ >= clock_read_ticks) {
            last_clock_read_ticks_ = ticks;
            const auto now = steady_clock::now();
            if (now - last_peer_check_ >= detail::peer_check_interval) {
                last_peer_check_ = now;
                ask = true;
            }
        }
    }
    if (ask && detail::socket_hung_up(out_fd_)) out_peer_gone_ = true;
    return out_peer_gone_;
}

void Connection::publish(uint64_t write_cursor) noexcept {
    // (P1) pairs with (P4) in pipe_recv.cpp: the frame's bytes are visible to the receiver that
    // sees this cursor. (P2) A Dekker handshake with (P5)+(P6) in pipe_wait.hpp / pipe_recv.cpp:
    // store the cursor, then load the receiver's flag, both seq_cst; the receiver stores its
    // flag, then loads this cursor, both seq_cst. In the single total order one of the two
    // loads sees the other side's store: no doorbell is lost.
    out_->write_cursor.store(write_cursor, std::memory_order_seq_cst);
    if (out_->reader_parked.load(std::memory_order_seq_cst) != 0 &&
        out_->reader_parked.exchange(0, std::memory_order_acq_rel) != 0) {
        if (!detail::ring_socket(out_fd_)) out_peer_gone_ = true;
    }
}

status Connection::wait_for_room(uint64_t need, Mode mode, steady_clock::time_point deadline) {
    const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
    auto room = [&] {
        if (write - cached_read_ <= capacity_ - need) return true;
        // (P3) pairs with (P7) in pipe_recv.cpp: the receiver is done with the bytes before the
        // sender overwrites them. seq_cst: also the sender's re-check after (P5) (Dekker (P8)).
        cached_read_ = out_->read_cursor.load(std::memory_order_seq_cst);
        return write - cached_read_ <= capacity_ - need;
    };
    if (room()) [[likely]]
        return {};
    if (detail::peer_hung_up(out_fd_, out_peer_gone_)) return errc::broken_pipe;
    if (mode == Mode::try_once) {
        if (send_ready_.epoll_fd >= 0) [[unlikely]]
            arm_send(need);
        return errc::full;
    }
    return detail::wait_until_ready({out_->writer_parked, out_fd_, out_peer_gone_},
                                    mode == Mode::until, deadline, detail::peer_check_interval,
                                    room, [] { return status{errc::broken_pipe}; });
}

status Connection::send_impl(std::span<const std::byte> message, Mode mode,
                             steady_clock::time_point deadline) {
    require_writable();
    switch (detail::acquire_pipe_lock(out_->writer_lock, mode == Mode::try_once, deadline)) {
        case detail::PipeLockResult::busy: return errc::full;
        case detail::PipeLockResult::timeout: return errc::timeout;
        case detail::PipeLockResult::taken_from_dead:
            if (out_->writer_lock.mid_message.load(std::memory_order_relaxed) != 0) {
                // The dead sender was inside a chunked message: tell the receiver it is void.
                // Room for this frame was always kept free.
                const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
                const FrameHeader abort{0, static_cast<uint32_t>(FrameKind::abort)};
                std::memcpy(out_->data() + (write & (capacity_ - 1)), &abort, sizeof abort);
                publish(write + header_size);
                out_->writer_lock.mid_message.store(0, std::memory_order_relaxed);
            }
            break;
        default: break;
    }
    detail::PipeLockGuard guard(out_->writer_lock);
    if (peer_closed_check()) return errc::broken_pipe;

    const uint64_t mask = capacity_ - 1;
    const uint64_t largest_frame = detail::largest_frame(capacity_);
    const uint64_t total = message.size();
    if (header_size + round8(total) <= largest_frame) {
        const uint64_t need = header_size + round8(total);
        if (status room = wait_for_room(need + abort_reserve, mode, deadline); !room) return room;
        const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
        const FrameHeader header{static_cast<uint32_t>(total),
                                 static_cast<uint32_t>(FrameKind::whole)};
        std::memcpy(out_->data() + (write & mask), &header, sizeof header);
        copy_into_ring(*out_, mask, write + header_size, message.data(), total);
        publish(write + need);
        return {};
    }

    // Larger than a quarter of the ring: stream it through in chunks of at most a quarter, so
    // the receiver copies one chunk out while the next is copied in.
    if (mode == Mode::try_once) {
        // Never blocks: only if the whole message fits the free space now (chunk headers and
        // rounding included), and then it is written without waiting.
        const uint64_t chunks = total / (largest_frame - header_size - total_field_size) + 1;
        const uint64_t need = total + chunks * (header_size + 8) + total_field_size;
        if (need > capacity_ - abort_reserve) return errc::full;
        if (status room = wait_for_room(need + abort_reserve, mode, deadline); !room) return room;
        mode = Mode::block;
    }
    uint64_t sent = 0;
    bool first = true;
    out_->writer_lock.mid_message.store(1, std::memory_order_relaxed);
    while (sent < total) {
        const uint64_t overhead = header_size + (first ? total_field_size : 0);
        const uint64_t remaining = total - sent;
        // Wait until the rest fits, or a full-size chunk does: never for more than the ring
        // can ever free while the rest would already fit.
        const uint64_t want = std::min(overhead + round8(remaining), largest_frame);
        status room = wait_for_room(want + abort_reserve, mode, deadline);
        if (!room) {
            if (!first && room.error() != errc::broken_pipe) {
                const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
                const FrameHeader abort{0, static_cast<uint32_t>(FrameKind::abort)};
                std::memcpy(out_->data() + (write & mask), &abort, sizeof abort);
                publish(write + header_size);
            }
            out_->writer_lock.mid_message.store(0, std::memory_order_relaxed);
            return room;
        }
        const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
        const uint64_t free_bytes = capacity_ - (write - cached_read_) - abort_reserve;
        const uint64_t usable = (std::min(free_bytes, largest_frame) - overhead) & ~uint64_t{7};
        const uint64_t chunk = std::min(remaining, usable);
        const FrameKind kind = first                ? FrameKind::begin
                               : chunk == remaining ? FrameKind::end
                                                    : FrameKind::middle;
        const FrameHeader header{static_cast<uint32_t>(chunk), static_cast<uint32_t>(kind)};
        std::memcpy(out_->data() + (write & mask), &header, sizeof header);
        if (first) std::memcpy(out_->data() + ((write + header_size) & mask), &total, sizeof total);
        copy_into_ring(*out_, mask, write + overhead, message.data() + sent, chunk);
        publish(write + frame_size(kind, chunk));
        SHUTTLE_KILL_POINT("pipe.send.chunk_published");
        sent += chunk;
        first = false;
    }
    out_->writer_lock.mid_message.store(0, std::memory_order_relaxed);
    return {};
}

status Connection::send_bytes(std::span<const std::byte> message) {
    return send_impl(message, Mode::block, no_deadline);
}
status Connection::try_send_bytes(std::span<const std::byte> message) {
    return send_impl(message, Mode::try_once, {});
}
status Connection::send_bytes_until(std::span<const std::byte> message,
                                    steady_clock::time_point deadline) {
    return send_impl(message, deadline == no_deadline ? Mode::block : Mode::until, deadline);
}

}  // namespace shuttle
