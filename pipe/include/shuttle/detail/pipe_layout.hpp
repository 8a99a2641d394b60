// The pipe's part of the shared-memory protocol: the control block, one byte ring per direction,
// and how messages are framed inside a ring. Offsets and byte counts only, no pointers.
// docs/layout.md ("The pipe's body") describes the same bytes.
//
//   body:  PipeControl | ring 0: PipeRing + capacity bytes | [ring 1: PipeRing + capacity bytes]
//
// Ring 0 carries end 1 -> end 0; ring 1 (duplex only) carries end 0 -> end 1. Each word on its
// own cache line unless said otherwise (offsets in bytes):
//
//   PipeControl (128 B)
//     0    capacity         u64         bytes of data per ring (power of two, 4 KiB .. 1 GiB)
//     8    duplex           u64         1: two rings; 0: one (end 0 only receives)
//     64   closes[2]        atomic u64  explicit close()s of copies of end 0, of end 1
//   PipeRing (384 B), then data[capacity]: the byte at cursor c is data[c & (capacity - 1)]
//     0    write_cursor     atomic u64  bytes ever published by the sender (never wraps)
//     64   read_cursor      atomic u64  bytes ever consumed by the receiver (never wraps)
//     128  reader_parked    atomic u32  1: the receiver sleeps (or is about to) on its socket
//     192  writer_parked    atomic u32  1: the sender sleeps (or is about to) on its socket
//     256  writer_lock      PipeLock    serialises copies of the sending end
//     320  reader_lock      PipeLock    serialises copies of the receiving end
//   PipeLock (64 B, one line)
//     0    owner            atomic u64  holder's ProcessIdentity (pid << 32 | start time), 0 free
//     8    owner_namespace  atomic u64  holder's pid namespace, 0 while not known yet
//     16   released         atomic u32  futex word: bumped by a release that sees waiters
//     20   waiters          atomic u32  processes asleep on `released`
//     24   mid_message      atomic u32  writer_lock only: 1 while the holder streams a message
//
// A frame starts at a cursor that is a multiple of 8 (so its header never wraps):
//
//   byte 0          4          8                  16
//        | length   | kind     | total (u64)      | payload: length bytes | pad to a multiple of 8
//          u32        u32        begin frames only
//
//   whole  (1)  a whole message of `length` bytes (when its frame fits a quarter of the ring)
//   begin  (2)  the first chunk of a larger message; `total` is the message's length (> length)
//   middle (3)  a further chunk
//   end    (4)  the last chunk: the chunks' lengths add up to `total`
//   abort  (5)  length 0: the message being streamed is void (a timed sender gave up, or the
//               lock of a sender that died midway was taken over)
//
// No frame is larger than a quarter of the ring, and a sender always leaves room for one abort
// frame free behind what it writes. A frame is visible only once the write cursor has moved past
// all of it, so a receiver never sees half a frame. A receiver checks every value it reads from
// the ring (kind, length, total) before using it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shuttle/segment.hpp"

namespace shuttle::detail {

inline constexpr uint64_t min_pipe_capacity = 4096;
inline constexpr uint64_t max_pipe_capacity = uint64_t{1} << 30;
inline constexpr uint64_t pipe_flag_duplex = 1;  // SegmentHeader::flags

/// A lock over one side (the senders, or the receivers) of one direction, for copies of an end
/// used by several processes at once. `owner` is the ProcessIdentity of the holder (0: free);
/// `owner_namespace` is the holder's pid namespace, stored right after `owner` is taken and
/// cleared right before it is released (0: not known yet). A holder found dead is stepped over;
/// a holder in another pid namespace is never judged (its pid means nothing here).
struct alignas(cache_line) PipeLock {
    std::atomic<uint64_t> owner;
    std::atomic<uint64_t> owner_namespace;
    std::atomic<uint32_t> released;  // futex word, bumped by a release when someone waits
    std::atomic<uint32_t> waiters;
    std::atomic<uint32_t> mid_message;  // sender lock only: the holder is inside a chunked message
};

/// One direction: the cursors (total bytes written / read since creation, never wrapping) on
/// their own cache lines, the parked flags a side sets before sleeping on its socket, the two
/// locks, then `capacity` bytes of data.
struct PipeRing {
    alignas(cache_line) std::atomic<uint64_t> write_cursor;
    alignas(cache_line) std::atomic<uint64_t> read_cursor;
    alignas(cache_line) std::atomic<uint32_t> reader_parked;
    alignas(cache_line) std::atomic<uint32_t> writer_parked;
    alignas(cache_line) PipeLock writer_lock;
    alignas(cache_line) PipeLock reader_lock;

    std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this) + sizeof(PipeRing); }
};

struct PipeControl {
    alignas(cache_line) uint64_t capacity;
    uint64_t duplex;
    /// How many copies of each end have been closed explicitly: a sender that sees its peer's
    /// count change asks the kernel (one poll) whether that was the last copy.
    alignas(cache_line) std::atomic<uint64_t> closes[2];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the pipe's shared words must be lock-free atomics");
static_assert(sizeof(PipeLock) == 64 && offsetof(PipeLock, owner_namespace) == 8 &&
                  offsetof(PipeLock, released) == 16 && offsetof(PipeLock, waiters) == 20 &&
                  offsetof(PipeLock, mid_message) == 24,
              "a pipe lock is one cache line laid out as in the comment above");
static_assert(offsetof(PipeRing, write_cursor) == 0 && offsetof(PipeRing, read_cursor) == 64 &&
                  offsetof(PipeRing, reader_parked) == 128 &&
                  offsetof(PipeRing, writer_parked) == 192 &&
                  offsetof(PipeRing, writer_lock) == 256 && offsetof(PipeRing, reader_lock) == 320,
              "the ring's cursors, flags and locks each have their own cache line");
static_assert(sizeof(PipeRing) == 384, "ring data starts 384 bytes into the ring, on a line");
static_assert(offsetof(PipeControl, capacity) == 0 && offsetof(PipeControl, duplex) == 8 &&
                  offsetof(PipeControl, closes) == 64 && sizeof(PipeControl) == 128,
              "the control block is two cache lines and the first ring starts on a line");

/// Bytes of one direction in the body: its PipeRing, then the data.
inline uint64_t ring_bytes(uint64_t capacity) noexcept {
    return sizeof(PipeRing) + capacity;
}

/// Where ring `index` (0, or 1 in a duplex pipe) starts in the body; with index = the number of
/// rings, the body's size.
inline uint64_t ring_offset(uint64_t index, uint64_t capacity) noexcept {
    return sizeof(PipeControl) + index * ring_bytes(capacity);
}

// ---- framing ---------------------------------------------------------------------------------
enum class FrameKind : uint32_t { whole = 1, begin = 2, middle = 3, end = 4, abort = 5 };
struct FrameHeader {
    uint32_t length;
    uint32_t kind;
};
static_assert(sizeof(FrameHeader) == 8 && offsetof(FrameHeader, kind) == 4,
              "a frame header is {u32 length, u32 kind}");
inline constexpr uint64_t header_size = 8;
inline constexpr uint64_t total_field_size = 8;
inline constexpr uint64_t abort_reserve = header_size;  // room always kept for an abort frame
static_assert(min_pipe_capacity % header_size == 0,
              "every frame starts on an 8-byte boundary, so a header never wraps");

/// The largest frame a ring of `capacity` bytes carries: a message whose frame is larger is
/// streamed in chunks, so the receiver copies one chunk out while the next is copied in.
inline constexpr uint64_t largest_frame(uint64_t capacity) noexcept {
    return capacity / 4;
}

inline constexpr uint64_t round8(uint64_t n) noexcept {
    return (n + 7) & ~uint64_t{7};
}

inline uint64_t frame_size(FrameKind kind, uint64_t length) noexcept {
    return header_size + (kind == FrameKind::begin ? total_field_size : 0) + round8(length);
}

/// Copies `length` bytes into the ring at cursor `position`, wrapping at the end of the data.
inline void copy_into_ring(PipeRing& ring, uint64_t mask, uint64_t position,
                           const std::byte* source, uint64_t length) noexcept {
    if (length == 0) return;
    const uint64_t offset = position & mask;
    const uint64_t first = std::min(length, mask + 1 - offset);
    std::memcpy(ring.data() + offset, source, first);
    if (first < length) std::memcpy(ring.data(), source + first, length - first);
}

/// Copies `length` bytes out of the ring from cursor `position`, wrapping at the end of the data.
inline void copy_from_ring(PipeRing& ring, uint64_t mask, uint64_t position, std::byte* target,
                           uint64_t length) noexcept {
    if (length == 0) return;
    const uint64_t offset = position & mask;
    const uint64_t first = std::min(length, mask + 1 - offset);
    std::memcpy(target, ring.data() + offset, first);
    if (first < length) std::memcpy(target + first, ring.data(), length - first);
}

}  // namespace shuttle::detail
