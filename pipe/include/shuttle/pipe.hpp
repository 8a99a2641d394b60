// shuttle::Pipe: Python's multiprocessing.Pipe() and its Connection, at shared-memory speed.
//
//     auto [parent_end, child_end] = shuttle::Pipe();
//     shuttle::Process child([&] {
//         parent_end.close();                       // close the end this side does not use
//         while (auto message = child_end.recv()) std::puts(message->c_str());
//         // the loop ends with errc::eof once the parent closed its end and all was read
//     });
//     child.start();
//     child_end.close();
//     for (int i = 0; i < 10; ++i) parent_end.send(fmt::format("message {}", i));
//     parent_end.close();
//     child.join();
//
// Memory ordering: a send happens-before the receive that returns its message (everything the
// sender wrote before send() is visible to the receiver after it), as with a kernel pipe. (The
// pairs behind this are numbered (P1)..(P9) in pipe/src/pipe_send.cpp, pipe_recv.cpp and
// detail/pipe_wait.hpp / pipe_lock.hpp; tested on x86-64 only.)
//
// Data travels through one shared-memory byte ring per direction (an anonymous memfd segment
// inherited across fork()). Each direction also has a kernel socketpair whose descriptors are the
// lifetime tokens of the two ends: once every copy of an end is closed -- close(), exit, SIGKILL,
// exec (close-on-exec) -- the other end's socket reports hang-up, so EOF and broken pipe are exact
// with fork()-inherited copies, as with Python's fd-based pipes. The socket is also the doorbell
// a parked side sleeps on; it is written only when the other side is parked. See docs/pipe.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "shuttle/codec.hpp"
#include "shuttle/detail/pipe_socket.hpp"
#include "shuttle/error.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {

class Segment;

namespace detail {
struct PipeRing;
struct PipeControl;
}  // namespace detail

struct PipeOptions {
    /// Bytes of ring per direction: a power of two, 4 KiB .. 1 GiB. Messages of any size fit
    /// (larger ones are streamed through in chunks); the capacity bounds what a sender can get
    /// ahead of its receiver.
    std::size_t capacity = std::size_t{1} << 20;
};

/// No limit on the length of a received message.
inline constexpr std::size_t no_max_length = std::numeric_limits<std::size_t>::max();

/// What the processes on a pipe's two directions are doing at one instant, as seen from one end
/// (Connection::activity()): for diagnostics, monitoring and tests. "Parked" means a side has
/// committed to sleeping on its socket (it sets the flag, looks at the ring once more, then
/// sleeps) until a doorbell or a hang-up; a process killed while parked leaves its flag set.
struct PipeActivity {
    bool incoming_receiver_parked = false;  // a receive on this end waits for data
    bool incoming_sender_parked = false;    // the peer's send into this end waits for room
    bool outgoing_receiver_parked = false;  // the peer's receive from this end waits for data
    bool outgoing_sender_parked = false;    // a send on this end waits for room
    /// Processes asleep waiting for a lock held by another copy of this end (receive / send).
    uint32_t incoming_receive_lock_waiters = 0;
    uint32_t outgoing_send_lock_waiters = 0;
};

/// One end of a pipe (Python's multiprocessing.connection.Connection).
///
/// Movable, not copyable; valid in a fork()ed child. fork() copies an end: every copy counts as
/// the end being open, so each process closes the ends it does not use (the peer sees EOF only
/// once every copy is closed). An exec'd program does not inherit an end (close-on-exec).
///
/// Thread-safety: one thread may send while another receives on the same Connection; two
/// threads must not both send (or both receive) on the same Connection object (reported with
/// Error(errc::invalid_argument) when detected). Copies of one end in different processes may
/// send (or receive) concurrently: a per-direction lock in shared memory serialises them, and a
/// copy whose process dies holding it is stepped over (see docs/pipe.md).
///
/// Flow conditions are values: eof, broken_pipe, timeout, empty/full, too_large,
/// buffer_too_small, cut_off. Misuse throws Error: errc::wrong_end (sending on the receive-only
/// end of a one-way pipe, or receiving on the send-only end), errc::closed (any use after
/// close()).
///
/// Every blocking call comes as x() (blocks), try_x() (never blocks: errc::empty / errc::full),
/// x_for(d) / x_until(t) (steady_clock; errc::timeout; zero or negative tries once). The deadline
/// bounds the wait for a message to begin (receive) or for room to begin it (send); a message
/// larger than the ring that has begun is finished: a receiver keeps streaming it in, a timed
/// sender that runs out of time midway abandons it and the receiver gets errc::cut_off.
///
/// If the calling process dies inside any call, the peer sees what a death anywhere else
/// produces: messages fully sent are delivered, a message cut off midway is reported as
/// errc::cut_off (never delivered in part), then EOF or broken pipe once no copy is left.
class Connection {
  public:
    Connection() = default;
    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    /// Closes this copy (see close()).
    ~Connection();

    // ---- sending ---------------------------------------------------------------------------
    /// Sends one whole message (zero length allowed). Blocks while the ring has no room (and,
    /// for a message larger than the ring, until it has all been taken in by the receiver's
    /// side). Returns errc::broken_pipe at once if every copy of the peer end was closed with
    /// close(); a peer that died (or exited without close()) is noticed by the first send at
    /// least 1 ms (at most ~1.25 ms) after this end last asked the kernel, and a sender blocked
    /// on a full ring wakes on the hang-up. Never raises SIGPIPE. Process-safe (see class
    /// comment). If the caller dies inside, see the class comment.
    status send_bytes(std::span<const std::byte> message);
    status try_send_bytes(std::span<const std::byte> message);
    template <class Rep, class Period>
    status send_bytes_for(std::span<const std::byte> message,
                          std::chrono::duration<Rep, Period> timeout) {
        return send_bytes_until(message, deadline_after(timeout));
    }
    status send_bytes_until(std::span<const std::byte> message, steady_clock::time_point deadline);

    /// send_bytes() of a string's characters.
    status send(std::string_view message) { return send_bytes(as_bytes(message)); }
    status try_send(std::string_view message) { return try_send_bytes(as_bytes(message)); }
    template <class Rep, class Period>
    status send_for(std::string_view message, std::chrono::duration<Rep, Period> timeout) {
        return send_bytes_until(as_bytes(message), deadline_after(timeout));
    }
    status send_until(std::string_view message, steady_clock::time_point deadline) {
        return send_bytes_until(as_bytes(message), deadline);
    }

    /// Sends the bytes of a trivially copyable value (receive it with recv_value<T>()).
    template <class T>
    requires std::is_trivially_copyable_v<T> status send_value(const T& value) {
        return send_bytes(std::as_bytes(std::span<const T, 1>(&value, 1)));
    }
    /// Sends any other value the codec knows (std::string, std::vector, std::variant, cereal
    /// types: shuttle/codec.hpp) as its encoding, one message (receive it with recv_value<T>()).
    /// May throw what encoding a user type throws.
    template <class T>
    requires(!std::is_trivially_copyable_v<T> && encodable<T>) status send_value(const T& value) {
        return send_bytes(encode(value));
    }

    // ---- receiving -------------------------------------------------------------------------
    /// Receives one whole message. Blocks until one is there; returns errc::eof once every copy
    /// of the peer end is closed and all it sent was received; errc::too_large (nothing
    /// consumed: the message stays first in line) if it is longer than `max_length`;
    /// errc::cut_off if the message's sender died (or a timed send gave up) midway through it.
    result<std::vector<std::byte>> recv_bytes(std::size_t max_length = no_max_length);
    result<std::vector<std::byte>> try_recv_bytes(std::size_t max_length = no_max_length);
    template <class Rep, class Period>
    result<std::vector<std::byte>> recv_bytes_for(std::chrono::duration<Rep, Period> timeout,
                                                  std::size_t max_length = no_max_length) {
        return recv_bytes_until(deadline_after(timeout), max_length);
    }
    result<std::vector<std::byte>> recv_bytes_until(steady_clock::time_point deadline,
                                                    std::size_t max_length = no_max_length);

    /// Receives one whole message into `buffer` and returns its length. A message longer than
    /// the buffer gives errc::buffer_too_small and is NOT consumed: read it with a larger buffer
    /// (message_length() says how large). Otherwise as recv_bytes().
    result<std::size_t> recv_bytes_into(std::span<std::byte> buffer);
    result<std::size_t> try_recv_bytes_into(std::span<std::byte> buffer);
    template <class Rep, class Period>
    result<std::size_t> recv_bytes_into_for(std::span<std::byte> buffer,
                                            std::chrono::duration<Rep, Period> timeout) {
        return recv_bytes_into_until(buffer, deadline_after(timeout));
    }
    result<std::size_t> recv_bytes_into_until(std::span<std::byte> buffer,
                                              steady_clock::time_point deadline);

    /// recv_bytes() as a std::string.
    result<std::string> recv(std::size_t max_length = no_max_length);
    result<std::string> try_recv(std::size_t max_length = no_max_length);
    template <class Rep, class Period>
    result<std::string> recv_for(std::chrono::duration<Rep, Period> timeout,
                                 std::size_t max_length = no_max_length) {
        return recv_until(deadline_after(timeout), max_length);
    }
    result<std::string> recv_until(steady_clock::time_point deadline,
                                   std::size_t max_length = no_max_length);

    /// Throwing conveniences: the message, or EOFError at EOF (Error for anything else).
    std::vector<std::byte> recv_bytes_or_throw() { return recv_bytes().value(); }
    std::string recv_or_throw() { return recv().value(); }

    /// Receives a message sent with send_value<T>(). errc::type_mismatch if its length is not
    /// sizeof(T) (a longer message is not consumed: errc::buffer_too_small).
    template <class T>
    requires std::is_trivially_copyable_v<T> result<T> recv_value() {
        alignas(T) std::byte storage[sizeof(T)];
        result<std::size_t> got = recv_bytes_into(storage);
        if (!got) return got.error();
        if (*got != sizeof(T)) return errc::type_mismatch;
        T value;
        std::memcpy(&value, storage, sizeof(T));
        return value;
    }
    /// Receives a message sent with send_value<T>() of a T that is not trivially copyable:
    /// errc::bad_message (the message consumed) if it does not decode as T; otherwise as
    /// recv_bytes().
    template <class T>
    requires(!std::is_trivially_copyable_v<T> && encodable<T>) result<T> recv_value() {
        result<std::vector<std::byte>> message = recv_bytes();
        if (!message) return message.error();
        return decode<T>(*message);
    }

    /// Length of the next message if one has begun arriving (non-blocking), else the error
    /// try_recv_bytes() would give (errc::empty, errc::eof).
    result<std::size_t> message_length();

    // ---- readiness ---------------------------------------------------------------------------
    /// True if a receive would not block: a message is there, or EOF. Non-blocking (one system
    /// call when nothing is there, to ask the kernel about the peer).
    bool poll();
    /// Waits until poll() would be true, at most `timeout` / until `deadline`.
    template <class Rep, class Period>
    bool poll_for(std::chrono::duration<Rep, Period> timeout) {
        return poll_until(deadline_after(timeout));
    }
    bool poll_until(steady_clock::time_point deadline);

    // ---- lifetime ----------------------------------------------------------------------------
    /// Closes this copy of the end: releases its descriptors and mapping. Once every copy of an
    /// end is closed (in every process), the peer's receives report EOF after draining and its
    /// sends report broken pipe. Idempotent; non-blocking. Not thread-safe against concurrent
    /// use of this object.
    void close() noexcept;
    bool closed() const noexcept { return !open_; }
    bool readable() const noexcept { return in_ != nullptr; }
    bool writable() const noexcept { return out_ != nullptr; }
    /// Bytes of ring per direction.
    std::size_t capacity() const noexcept { return capacity_; }

    /// The descriptor a parked receive of this end sleeps on (readable on a doorbell, hang-up on
    /// EOF), -1 if this end does not receive. For diagnostics and wait(); do not read from it.
    int receive_descriptor() const noexcept { return in_fd_; }

    /// Descriptors for event loops (epoll, poll, Boost.Asio; docs/event_loop.md). Both poll
    /// *readable* (POLLIN) when the operation would not block: recv_descriptor() when a message
    /// or EOF is there, send_descriptor() when a send finds room (or the peer is gone). Level-
    /// triggered, sometimes spurious: on readiness call try_recv()/try_send() until it says
    /// empty/full; that re-arms the descriptor (a full try_send arms it for room for that
    /// message; before any, it means room for a small one). Owned by this end (do not close it);
    /// made on first call, thread-safe against nothing else on this object. A blocking receive
    /// (send) through another copy of this end at the same time may take the doorbell: use one or
    /// the other per direction. Throws Error(wrong_end) for the direction this end does not have.
    int recv_descriptor();
    int send_descriptor();

    /// A snapshot of who waits on this pipe (see PipeActivity); all false/0 on a closed end.
    /// Non-blocking (a few loads of shared words, no system call), thread- and process-safe,
    /// stale as soon as it returns: poll it, never use it to decide that a peer is gone.
    PipeActivity activity() const noexcept;

  private:
    friend std::pair<Connection, Connection> Pipe(bool duplex, PipeOptions options);
    friend std::vector<Connection*> wait(std::span<Connection* const> connections,
                                         steady_clock::time_point deadline);

    enum class Mode { block, try_once, until };
    struct Sink;

    static std::span<const std::byte> as_bytes(std::string_view text) noexcept {
        return std::as_bytes(std::span<const char>(text.data(), text.size()));
    }
    status send_impl(std::span<const std::byte> message, Mode mode,
                     steady_clock::time_point deadline);
    result<std::size_t> recv_impl(Sink& sink, Mode mode, steady_clock::time_point deadline);
    status wait_for_room(uint64_t need, Mode mode, steady_clock::time_point deadline);
    status wait_for_data(Mode mode, steady_clock::time_point deadline);
    bool data_ready() noexcept;
    bool peer_closed_check();
    void publish(uint64_t write_cursor) noexcept;
    void consume(uint64_t read_cursor) noexcept;
    void require_open() const;
    void require_readable() const;
    void require_writable() const;

    void arm_recv() noexcept;
    void arm_send(uint64_t need) noexcept;

    std::shared_ptr<Segment> segment_;
    detail::PipeControl* control_ = nullptr;
    detail::PipeRing* in_ = nullptr;   // the ring this end receives from
    detail::PipeRing* out_ = nullptr;  // the ring this end sends into
    int in_fd_ = -1;                   // this end's socket of the incoming direction
    int out_fd_ = -1;                  // this end's socket of the outgoing direction
    int side_ = 0;                     // 0 or 1: which end of the pipe
    bool open_ = false;
    bool in_peer_gone_ = false;   // the sender side hung up (sticky)
    bool out_peer_gone_ = false;  // the receiver side hung up (sticky)
    std::size_t capacity_ = 0;
    uint64_t cached_write_ = 0;  // a lower bound of in_->write_cursor
    uint64_t cached_read_ = 0;   // a lower bound of out_->read_cursor
    uint64_t seen_peer_closes_ = 0;
    uint64_t last_clock_read_ticks_ = 0;  // cheap_ticks() at the last clock read (pipe_send.cpp)
    steady_clock::time_point last_peer_check_{};
    detail::ReadySet recv_ready_;  // recv_descriptor(), made on first call
    detail::ReadySet send_ready_;  // send_descriptor()
};

/// Makes a connected pair of ends (Python's multiprocessing.Pipe). duplex: both ends send and
/// receive. One-way (duplex = false): the first end only receives, the second only sends.
/// Make the pipe before fork(); each process then closes the end it does not use.
/// Throws Error(errc::system / no_space / invalid_argument).
std::pair<Connection, Connection> Pipe(bool duplex = true, PipeOptions options = {});

/// multiprocessing.connection.wait: waits until at least one of `connections` (receiving ends)
/// is ready (a message or EOF), at most until `deadline`, and returns the ready ones (empty on
/// timeout). Blocking. Intended for the one-receiver-per-end case.
std::vector<Connection*> wait(std::span<Connection* const> connections,
                              steady_clock::time_point deadline = no_deadline);
template <class Rep, class Period>
std::vector<Connection*> wait_for(std::span<Connection* const> connections,
                                  std::chrono::duration<Rep, Period> timeout) {
    return wait(connections, deadline_after(timeout));
}

}  // namespace shuttle
