// shuttle::Pipe / Connection: one SPSC byte ring per direction in an anonymous segment, and one
// socketpair per direction as lifetime token and doorbell. See docs/pipe.md for the protocol.
#include "shuttle/pipe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <new>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/pipe_layout.hpp"
#include "shuttle/detail/pipe_lock.hpp"
#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/detail/pipe_wait.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {
namespace {

using detail::abort_reserve;
using detail::copy_from_ring;
using detail::copy_into_ring;
using detail::frame_size;
using detail::FrameHeader;
using detail::FrameKind;
using detail::header_size;
using detail::PipeControl;
using detail::PipeLock;
using detail::PipeRing;
using detail::ring_bytes;
using detail::round8;
using detail::total_field_size;

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

/// Whether `holder`, seen holding `lock`, is proven dead; `judged_namespace` receives the
/// namespace word it was judged by. While `holder` holds the lock that word is its namespace, or
/// 0 in the instant between its CAS and its store of the namespace (forever if it died right
/// there). So 0 is "unknown" (alive) at first sight; only the same holder still without a
/// namespace after `lock_backstop` is judged as a process of this namespace.
bool holder_dead(PipeLock& lock, uint64_t holder, uint64_t& judged_namespace,
                 uint64_t& unnamed_holder, steady_clock::time_point& unnamed_since) noexcept {
    judged_namespace = lock.owner_namespace.load(std::memory_order_acquire);
    uint64_t holder_namespace = judged_namespace;
    if (holder_namespace == 0) {
        const auto now = steady_clock::now();
        if (unnamed_holder != holder) {
            unnamed_holder = holder;
            unnamed_since = now;
            return false;
        }
        if (now - unnamed_since < lock_backstop) return false;
        holder_namespace = current_pid_namespace();
    }
    return process_liveness(holder, holder_namespace) == Liveness::dead;
}

}  // namespace

PipeLockResult acquire_pipe_lock_slow(PipeLock& lock, ProcessIdentity me, bool try_once,
                                      steady_clock::time_point deadline) {
    Backoff backoff;
    uint64_t unnamed_holder = 0;
    steady_clock::time_point unnamed_since{};
    for (;;) {
        uint64_t holder = 0;
        if (lock.owner.compare_exchange_strong(holder, me, std::memory_order_acquire,
                                               std::memory_order_acquire)) {
            SHUTTLE_KILL_POINT("pipe.lock.taken_before_namespace");
            lock.owner_namespace.store(current_pid_namespace(), std::memory_order_release);
            return PipeLockResult::acquired;
        }
        if (holder == me) pipe_concurrent_use();
        if (try_once) return PipeLockResult::busy;
        if (deadline != no_deadline && steady_clock::now() >= deadline)
            return PipeLockResult::timeout;
        if (backoff.step()) continue;
        // Parking: first make sure the holder is not dead (the one holding it now).
        holder = lock.owner.load(std::memory_order_acquire);
        if (holder == 0) continue;
        uint64_t judged_namespace = 0;
        if (holder_dead(lock, holder, judged_namespace, unnamed_holder, unnamed_since)) {
            // The namespace word must still be the one judged by: if the lock changed hands
            // meanwhile (and came back to `holder`), judge again rather than steal.
            if (lock.owner_namespace.load(std::memory_order_acquire) == judged_namespace &&
                lock.owner.compare_exchange_strong(holder, me, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed)) {
                lock.owner_namespace.store(current_pid_namespace(), std::memory_order_release);
                return PipeLockResult::taken_from_dead;
            }
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

using detail::acquire_pipe_lock;
using detail::PipeLockGuard;
using detail::PipeLockResult;

// ---- Connection: receiving side --------------------------------------------------------------

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
    capacity_ = other.capacity_;
    cached_write_ = other.cached_write_;
    cached_read_ = other.cached_read_;
    seen_peer_closes_ = other.seen_peer_closes_;
    last_clock_read_ticks_ = other.last_clock_read_ticks_;
    last_peer_check_ = other.last_peer_check_;
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
    detail::close_socket(std::exchange(in_fd_, -1));
    detail::close_socket(std::exchange(out_fd_, -1));
    control_->closes[side_].fetch_add(1, std::memory_order_seq_cst);
    in_ = out_ = nullptr;
    control_ = nullptr;
    segment_.reset();
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

bool Connection::data_ready() noexcept {
    const uint64_t read = in_->read_cursor.load(std::memory_order_relaxed);
    if (cached_write_ > read) return true;
    cached_write_ = in_->write_cursor.load(std::memory_order_acquire);
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
        return errc::empty;
    }
    return detail::wait_until_ready(
        {in_->reader_parked, in_fd_, in_peer_gone_}, mode == Mode::until, deadline,
        detail::first_peer_check_delay, [&] { return data_ready(); }, data_or_eof);
}

void Connection::consume(uint64_t read_cursor) noexcept {
    // seq_cst store, then the writer's parked flag: pairs with the writer's seq_cst store of
    // its flag followed by its re-read of this cursor (a Dekker handshake, no lost doorbell).
    in_->read_cursor.store(read_cursor, std::memory_order_seq_cst);
    if (in_->writer_parked.load(std::memory_order_relaxed) != 0 &&
        in_->writer_parked.exchange(0, std::memory_order_acq_rel) != 0) {
        detail::ring_socket(in_fd_);
    }
}

result<std::size_t> Connection::recv_impl(Sink& sink, Mode mode,
                                          steady_clock::time_point deadline) {
    require_readable();
    switch (acquire_pipe_lock(in_->reader_lock, mode == Mode::try_once, deadline)) {
        case PipeLockResult::busy: return errc::empty;
        case PipeLockResult::timeout: return errc::timeout;
        default: break;
    }
    PipeLockGuard guard(in_->reader_lock);
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
result<std::vector<std::byte>> Connection::recv_bytes_for(steady_clock::duration timeout,
                                                          std::size_t max_length) {
    return recv_bytes_until(deadline_after(timeout), max_length);
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
result<std::string> Connection::recv_for(steady_clock::duration timeout, std::size_t max_length) {
    return recv_until(deadline_after(timeout), max_length);
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
result<std::size_t> Connection::recv_bytes_into_for(std::span<std::byte> buffer,
                                                    steady_clock::duration timeout) {
    return recv_bytes_into_until(buffer, deadline_after(timeout));
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

bool Connection::poll() {
    require_readable();
    if (data_ready()) return true;
    return detail::peer_hung_up(in_fd_, in_peer_gone_);
}

bool Connection::poll_for(steady_clock::duration timeout) {
    return poll_until(deadline_after(timeout));
}

bool Connection::poll_until(steady_clock::time_point deadline) {
    require_readable();
    if (poll()) return true;
    switch (acquire_pipe_lock(in_->reader_lock, false, deadline)) {
        case PipeLockResult::busy:
        case PipeLockResult::timeout: return poll();
        default: break;
    }
    PipeLockGuard guard(in_->reader_lock);
    status ready = wait_for_data(deadline == no_deadline ? Mode::block : Mode::until, deadline);
    return ready || ready.error() == errc::eof;
}

// ---- Connection: sending side ----------------------------------------------------------------

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
    out_->write_cursor.store(write_cursor, std::memory_order_seq_cst);
    if (out_->reader_parked.load(std::memory_order_relaxed) != 0 &&
        out_->reader_parked.exchange(0, std::memory_order_acq_rel) != 0) {
        if (!detail::ring_socket(out_fd_)) out_peer_gone_ = true;
    }
}

status Connection::wait_for_room(uint64_t need, Mode mode, steady_clock::time_point deadline) {
    const uint64_t write = out_->write_cursor.load(std::memory_order_relaxed);
    auto room = [&] {
        if (write - cached_read_ <= capacity_ - need) return true;
        cached_read_ = out_->read_cursor.load(std::memory_order_acquire);
        return write - cached_read_ <= capacity_ - need;
    };
    if (room()) [[likely]]
        return {};
    if (detail::peer_hung_up(out_fd_, out_peer_gone_)) return errc::broken_pipe;
    if (mode == Mode::try_once) return errc::full;
    return detail::wait_until_ready({out_->writer_parked, out_fd_, out_peer_gone_},
                                    mode == Mode::until, deadline, detail::peer_check_interval,
                                    room, [] { return status{errc::broken_pipe}; });
}

status Connection::send_impl(std::span<const std::byte> message, Mode mode,
                             steady_clock::time_point deadline) {
    require_writable();
    switch (acquire_pipe_lock(out_->writer_lock, mode == Mode::try_once, deadline)) {
        case PipeLockResult::busy: return errc::full;
        case PipeLockResult::timeout: return errc::timeout;
        case PipeLockResult::taken_from_dead:
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
    PipeLockGuard guard(out_->writer_lock);
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
status Connection::send_bytes_for(std::span<const std::byte> message,
                                  steady_clock::duration timeout) {
    return send_bytes_until(message, deadline_after(timeout));
}
status Connection::send_bytes_until(std::span<const std::byte> message,
                                    steady_clock::time_point deadline) {
    return send_impl(message, deadline == no_deadline ? Mode::block : Mode::until, deadline);
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
        return sizeof(PipeControl) + rings * ring_bytes(i.capacity);
    };
    auto init = [&](Segment& segment) {
        auto* control = new (segment.body()) PipeControl{};
        control->capacity = capacity;
        control->duplex = duplex ? 1 : 0;
        for (int r = 0; r < rings; ++r) {
            new (segment.body() + sizeof(PipeControl) + r * ring_bytes(capacity)) PipeRing{};
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
        return reinterpret_cast<PipeRing*>(segment->body() + sizeof(PipeControl) +
                                           r * ring_bytes(capacity));
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
