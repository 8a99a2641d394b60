// The queue's part of the shared-memory protocol: the control block, the slots and the journal
// of items lost with killed processes, as they lie in the segment body. Offsets and indices only.
//
//   body:  QueueControl | LostRecord[journal_capacity] | slot 0 | ... | slot capacity-1
//          [ | lease 0 | ... | lease registry_capacity-1 ]   (queue_flag_redelivery only)
//
// Slot turns. Ticket t uses slot t % capacity on lap L = t / capacity. The slot's turn says:
//   2L                 free for the put of lap L
//   2L+1               holds lap L's item
//   2L+1 | poison_bit  lap L's put was lost (its producer was killed after claiming the slot);
//                      a consumer claims it like an item and discards it
//   2L+2               free for lap L+1
// Turns step by two per lap, so a single slot (capacity 1) is never ambiguous.
//
// Registry entries (one per thread using the queue) carry, for crash recovery:
//   announced  the ticket the thread is about to claim, written *before* the claim CAS and kept
//              until its next claim: a get ticket has announce_get set and, in a JoinableQueue,
//              announce_parity = the parity of `taken` before this get
//   words[0]   taken: items this thread got from a JoinableQueue (written by the owner only)
//   words[1]   done: task_done() calls this thread made (written by the owner only)
//   announce_lease (with announce_get): the get is a get_task() (at-least-once redelivery): its
//              item goes to the thread's lease before the slot is released; `taken` is not
//              bumped (the lease, not the counts, is that task's record)
//   announce_batch: a put_many / get_many claims the run of tickets announced .. announced +
//              words[2] - 1 with one CAS (words[2], and for a get words[3] = `taken` before it,
//              are written before the announcement); a batch get bumps `taken` by the whole
//              run in one store before releasing any slot, so "counted" is taken != words[3]
//
// Leases (a queue created with QueueOptions::redelivery): one per registry entry, written by the
// entry's owner (and, under the recovery lock, by a recoverer once the owner is dead). A lease's
// state is 0 (free) or a kind | ticket (the ticket of the get that filled it):
//   lease_held     the owner got the item with get_task() and has not acknowledged it
//   lease_acking   its task_done(task) is in progress: `acks` is (or is about to be) `acks_target`
//   lease_orphan   its holder died holding it: recovery puts it back into the ring (or the
//                  entry's next owner takes it over in its first get_task)
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <type_traits>

#include "shuttle/queue_types.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::detail {

/// Whether the inline put/get paths of this translation unit write what crash recovery reads
/// (announcements, taken/done counts) and call into recovery. The layout is the same either
/// way. SHUTTLE_QUEUE_UNPROTECTED turns it off, for the cost comparison and the hang test only;
/// the compiled library (recovery itself) is always built protected.
#if defined(SHUTTLE_QUEUE_UNPROTECTED)
inline constexpr bool queue_recovery = false;
#else
inline constexpr bool queue_recovery = true;
#endif

inline constexpr uint64_t closed_bit = uint64_t{1} << 63;
inline constexpr uint32_t max_queue_participants = 32;
inline constexpr uint64_t max_queue_capacity = uint64_t{1} << 32;
inline constexpr uint64_t max_queue_bytes = uint64_t{1} << 40;
inline constexpr uint64_t queue_flag_joinable = 1;
inline constexpr uint64_t queue_flag_variable_length = 2;
inline constexpr uint64_t queue_flag_redelivery = 4;  // joinable only: leases (get_task)

inline constexpr uint64_t poison_bit = uint64_t{1} << 63;
inline constexpr uint64_t announce_get = uint64_t{1} << 63;
inline constexpr uint64_t announce_parity = uint64_t{1} << 62;
inline constexpr uint64_t announce_lease = uint64_t{1} << 61;
inline constexpr uint64_t announce_batch = uint64_t{1} << 60;  // put_many / get_many: a run
inline constexpr uint64_t announce_ticket_mask = announce_batch - 1;
inline constexpr uint64_t announce_none = ~uint64_t{0};  // never a ticket: tickets stay < 2^60
inline constexpr std::size_t entry_taken = 0;            // RegistryEntry::words index
inline constexpr std::size_t entry_done = 1;
inline constexpr std::size_t entry_batch_count = 2;  // a batch announcement's ticket count
inline constexpr std::size_t entry_batch_taken = 3;  // `taken` before a batch get
/// The longest run one batch claims (longer batches take several claims): bounds what crash
/// recovery scans per announcement, whatever a scribbled count word says.
inline constexpr uint64_t max_batch_run = 256;

/// Who waits on one side (consumers for an item, producers for room): bit i of the low half
/// means registry entry i is parked, bit i of the high half that it is polling. One word, so a
/// waker moves a waiter from parked to polling in one CAS.
///
/// Event-loop waiters (docs/event_loop.md) do not park: each holds a doorbell slot (an abstract
/// Unix datagram socket named by `token`, claimed by process `owner`) and sets its bit in
/// `armed` when it is about to wait on its descriptor (the slots: QueueControl::doorbells, cold,
/// at the end of the block). The side's claims ring (and disarm) every
/// armed doorbell: one load of `armed`, on the line wakers read anyway, when nobody is armed.
struct DoorbellSlot {
    std::atomic<uint64_t> owner{0};            // ProcessIdentity, 0 if free
    std::atomic<uint64_t> owner_namespace{0};  // its pid namespace (written after `owner`)
    std::atomic<uint64_t> token{0};            // names the socket; written before `armed` is set
    std::atomic<uint64_t> reserved{0};
};
inline constexpr uint32_t max_queue_doorbells = 32;
struct alignas(cache_line) WaitSide {
    std::atomic<uint64_t> state{0};
    std::atomic<uint32_t> armed{0};  // bit i: doorbell i's owner waits on its descriptor
};
inline constexpr uint64_t parked_bit(uint32_t index) {
    return uint64_t{1} << index;
}
inline constexpr uint64_t polling_bit(uint32_t index) {
    return uint64_t{1} << (index + 32);
}
inline constexpr uint64_t parked_mask = 0xffffffffull;
inline constexpr uint64_t polling_mask = ~parked_mask;

/// Crash recovery's shared state. Only the holder of `holder` (one process at a time; a dead
/// holder's claim is taken over) repairs slots, writes the journal or settles tasks.
struct alignas(cache_line) RecoveryControl {
    std::atomic<uint64_t> holder{0};             // ProcessIdentity recovering now, 0 if nobody
    std::atomic<uint64_t> holder_namespace{0};   // its pid namespace (written after `holder`)
    std::atomic<uint64_t> lost{0};               // records committed to the journal, ever
    std::atomic<uint64_t> settled{0};            // tasks settled for killed processes
    std::atomic<uint64_t> settling_identity{0};  // a settlement in progress: whose tasks ...
    std::atomic<uint64_t> settling_target{0};    // ... and `settled` once it is committed
    std::atomic<uint64_t> settling_entries{0};   // ... and which registry entries (bits)
    std::atomic<uint64_t> discarded{0};          // lost puts consumers skipped (diagnostic)
    // At-least-once redelivery (queue_flag_redelivery; docs/recovery.md).
    alignas(cache_line) std::atomic<uint64_t> redelivered{0};  // orphaned tasks delivered again
    std::atomic<uint64_t> orphans{0};    // nonzero: a lease may be orphaned (a hint for waiters)
    std::atomic<uint64_t> lease_key{0};  // this queue's id in task handles (random, at creation)
    std::atomic<uint64_t> releasing_lease{0};    // a lease release in progress: its index + 1 ...
    std::atomic<uint64_t> releasing_state{0};    // ... the state it leaves ...
    std::atomic<uint64_t> releasing_settled{0};  // ... and `settled` / `redelivered` once it
    std::atomic<uint64_t> releasing_redelivered{0};  // is committed
};

/// The queue's control block at the start of the segment body. Hot cursors on their own lines.
struct QueueControl {
    alignas(cache_line) std::atomic<uint64_t> tail{0};  // next put ticket | closed_bit (shut down)
    alignas(cache_line) std::atomic<uint64_t> head{0};  // next get ticket
    WaitSide consumers;                                 // waiting for an item
    WaitSide producers;                                 // waiting for room
    // shutdown() (the queue's shared state; close() is per handle and not here). Set after the
    // tail's closed bit: consumers that find the ring empty read this read-mostly
    // line instead of the producers' tail, which would otherwise bounce on every empty poll.
    alignas(cache_line) std::atomic<uint32_t> closed{0};
    // JoinableQueue: unfinished tasks = put tickets (tail) - done - recovery.settled - the
    // leases' acks (Ring::finished_tasks).
    alignas(cache_line) std::atomic<uint64_t> done{0};
    std::atomic<uint32_t> join_word{0};
    std::atomic<uint32_t> joiners{0};
    RecoveryControl recovery;
    // Event-loop waiters' doorbells: [0] the consumers' side, [1] the producers' (WaitSide).
    alignas(cache_line) DoorbellSlot doorbells[2][max_queue_doorbells];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "queue cursors must be lock-free");
static_assert(sizeof(QueueControl) % cache_line == 0, "the journal starts on a cache line");

// Where the hot words lie, not only how big the block is: producers hammer `tail`, consumers
// `head`, wakers read the waiter words on every put/get, and empty polls read `closed`. Any two
// of them on one cache line would bounce it between the two sides on every operation.
namespace layout_check {
inline constexpr std::size_t line_of(std::size_t offset) {
    return offset / cache_line;
}
static_assert(std::is_standard_layout_v<QueueControl>, "offsetof needs a standard layout");
inline constexpr std::size_t hot_words[] = {
    offsetof(QueueControl, tail),      offsetof(QueueControl, head),
    offsetof(QueueControl, consumers), offsetof(QueueControl, producers),
    offsetof(QueueControl, closed),    offsetof(QueueControl, done),
    offsetof(QueueControl, recovery)};
inline constexpr bool each_on_its_own_line() {
    for (std::size_t a = 0; a < std::size(hot_words); ++a) {
        if (hot_words[a] % cache_line != 0) return false;
        for (std::size_t b = a + 1; b < std::size(hot_words); ++b) {
            if (line_of(hot_words[a]) == line_of(hot_words[b])) return false;
        }
    }
    return true;
}
static_assert(each_on_its_own_line(),
              "tail, head, the two waiter words, closed, the task counts and the recovery block "
              "must each start their own cache line");
static_assert(offsetof(QueueControl, tail) == 0 && offsetof(QueueControl, head) == cache_line,
              "the cursors are the first two lines of the body (docs/layout.md)");
static_assert(offsetof(QueueControl, consumers) == 2 * cache_line &&
                  offsetof(QueueControl, producers) == 3 * cache_line,
              "the consumers' and producers' waiter words follow the cursors, a line each");
static_assert(sizeof(WaitSide) == cache_line, "a waiter word fills its cache line alone");
static_assert(offsetof(RecoveryControl, redelivered) % cache_line == 0,
              "redelivery's words start their own line in the recovery block");
static_assert(segment_header_area % cache_line == 0 && sizeof(RegistryEntry) % cache_line == 0,
              "the body (so the control block, and every line offset above) starts on a line");
}  // namespace layout_check

/// The journal's operation field (tests and recovery name it detail::LostOperation).
using LostOperation = shuttle::LostOperation;

/// One journal record: an item lost with a killed process. The journal keeps the last
/// journal_capacity records (older ones are overwritten; `lost` keeps counting).
struct alignas(cache_line) LostRecord {
    static constexpr std::size_t contents_capacity = 192;
    std::atomic<uint64_t> sequence;  // loss number + 1 once the record is complete, 0 while written
    uint64_t ticket;
    uint64_t stuck_turn;      // the slot's turn the repair replaced (tells whether it happened)
    uint64_t settled_target;  // recovery.settled once this repair is committed
    int64_t repaired_at_ns;   // steady_clock (CLOCK_MONOTONIC: comparable across processes)
    uint64_t length;          // the item's length (get: what was in the slot; put: 0)
    uint32_t operation;       // LostOperation
    int32_t pid;              // the killed process
    std::byte contents[contents_capacity];  // the item's first bytes (get only)
};
static_assert(sizeof(LostRecord) == 256, "journal records are 256 bytes");
inline constexpr uint64_t journal_capacity = 32;

struct alignas(16) SlotHeader {
    std::atomic<uint64_t> turn;
    // Atomic (relaxed: free on x86-64) because a consumer reads it before its claim, while the
    // next lap's producer may be writing it; the claim CAS then discards such a read.
    std::atomic<uint64_t> length;
};
inline constexpr std::size_t slot_header_size = sizeof(SlotHeader);
inline constexpr uint64_t slots_offset =
    sizeof(QueueControl) + journal_capacity * sizeof(LostRecord);

inline constexpr uint64_t slot_stride_for(uint64_t payload_size) {
    return (slot_header_size + payload_size + cache_line - 1) / cache_line * cache_line;
}
inline constexpr uint64_t lease_stride_for(uint64_t payload_size) {
    return (32 + payload_size + cache_line - 1) / cache_line * cache_line;
}
static_assert(slots_offset % cache_line == 0, "slot 0 starts on a cache line");
static_assert(slot_header_size == 16 && alignof(SlotHeader) == 16,
              "a slot's payload starts 16 bytes in, 16-byte aligned");
static_assert(slot_stride_for(0) == cache_line && slot_stride_for(48) == cache_line &&
                  slot_stride_for(49) == 2 * cache_line,
              "slots are whole cache lines: neighbouring slots never share one");

/// A lease (queue_flag_redelivery): a task a consumer got with get_task() and has not yet
/// acknowledged, kept here so that it can be put back if its holder dies. The header, then the
/// payload. Tasks acknowledged through a lease are counted in the lease (`acks`, one writer at a
/// time: its holder, or a recoverer once the holder is dead), not in the queue's `done`: so a
/// holder killed mid-acknowledgement is finished exactly (acks = acks_target), never twice.
struct alignas(16) LeaseHeader {
    std::atomic<uint64_t> state;   // 0 free, else lease_held / lease_acking / lease_orphan | ticket
    std::atomic<uint64_t> length;  // the item's length (written with the payload, before state)
    std::atomic<uint64_t> acks;    // task_done(task)s through this lease, ever
    std::atomic<uint64_t> acks_target;  // acks once the acknowledgement in progress is done
};
inline constexpr std::size_t lease_header_size = sizeof(LeaseHeader);
static_assert(lease_header_size == 32, "lease headers are 32 bytes");
static_assert(lease_stride_for(32) == cache_line && lease_stride_for(33) == 2 * cache_line,
              "leases are whole cache lines, after the slots (which are too)");
inline constexpr uint64_t lease_held = uint64_t{1} << 61;
inline constexpr uint64_t lease_acking = uint64_t{2} << 61;
inline constexpr uint64_t lease_orphan = uint64_t{3} << 61;
inline constexpr uint64_t lease_kind_mask = uint64_t{3} << 61;
inline constexpr uint64_t lease_ticket_mask = lease_held - 1;

/// Body size for a queue segment; nullopt when a value is out of range.
inline std::optional<uint64_t> queue_body_size(const SegmentInfo& info) {
    const uint64_t payload =
        (info.flags & queue_flag_variable_length) ? info.max_message_size : info.element_size;
    if (info.capacity == 0 || info.capacity > max_queue_capacity) return std::nullopt;
    if (payload > max_queue_bytes || info.registry_capacity == 0 ||
        info.registry_capacity > max_queue_participants) {
        return std::nullopt;
    }
    const uint64_t stride = slot_stride_for(payload);
    if (info.capacity > (max_queue_bytes - slots_offset) / stride) return std::nullopt;
    const uint64_t leases = (info.flags & queue_flag_redelivery) ? info.registry_capacity : 0;
    if ((info.flags & queue_flag_redelivery) && !(info.flags & queue_flag_joinable)) {
        return std::nullopt;  // leases are JoinableQueue task accounting
    }
    return slots_offset + info.capacity * stride + leases * lease_stride_for(payload);
}

/// The ring's geometry, read once from the validated header and kept in the handle.
struct Ring {
    QueueControl* control = nullptr;
    LostRecord* journal = nullptr;
    std::byte* slots = nullptr;
    uint64_t capacity = 0;
    uint64_t payload_capacity = 0;
    uint64_t stride = 0;
    uint64_t capacity_mask = 0;  // capacity - 1 when a power of two (> 1), else 0
    uint32_t capacity_shift = 0;
    bool joinable = false;
    bool redelivery = false;  // leases follow the slots (one per registry entry)
    uint32_t lease_count = 0;
    uint64_t lease_stride = 0;

    SlotHeader& slot_at(uint64_t ticket) const noexcept {
        return *reinterpret_cast<SlotHeader*>(slots + index_of(ticket) * stride);
    }
    // Tickets map to (slot, lap); a power-of-two capacity avoids the 64-bit division.
    uint64_t index_of(uint64_t ticket) const noexcept {
        return capacity_mask ? ticket & capacity_mask : ticket % capacity;
    }
    uint64_t lap_of(uint64_t ticket) const noexcept {
        return capacity_mask ? ticket >> capacity_shift : ticket / capacity;
    }
    static std::byte* payload_of(SlotHeader& slot) noexcept {
        return reinterpret_cast<std::byte*>(&slot) + slot_header_size;
    }
    LeaseHeader& lease_at(uint32_t index) const noexcept {
        return *reinterpret_cast<LeaseHeader*>(slots + capacity * stride + index * lease_stride);
    }
    static std::byte* payload_of(LeaseHeader& lease) noexcept {
        return reinterpret_cast<std::byte*>(&lease) + lease_header_size;
    }
    /// Tasks acknowledged through leases (redelivery), part of the tasks finished.
    uint64_t lease_acks() const noexcept {
        uint64_t sum = 0;
        for (uint32_t index = 0; index < lease_count; ++index) {
            sum += lease_at(index).acks.load(std::memory_order_seq_cst);  // (11)
        }
        return sum;
    }
    /// Tasks finished: task_done()s, task_done(task)s and tasks settled for killed processes.
    /// JoinableQueue: unfinished tasks = put_tickets() - finished_tasks().
    uint64_t finished_tasks() const noexcept {
        // (11) / (12): the finished counts task_done() and recovery publish.
        return control->done.load(std::memory_order_acquire) +
               control->recovery.settled.load(std::memory_order_acquire) + lease_acks();
    }
    uint64_t put_tickets() const noexcept {
        return control->tail.load(std::memory_order_acquire) & ~closed_bit;  // (3)
    }
    /// JoinableQueue: items put and not yet finished.
    uint64_t unfinished_tasks() const noexcept {
        const uint64_t finished = finished_tasks();
        const uint64_t tickets = put_tickets();
        return tickets > finished ? tickets - finished : 0;
    }
    /// Items in the ring (approximate while others put or get).
    uint64_t size() const noexcept {
        const uint64_t head = control->head.load(std::memory_order_acquire);  // (3)
        return size_between(head, put_tickets());
    }
    /// Items between get ticket `head` and put ticket `tail` (bounded: read apart, they may
    /// be from different moments).
    uint64_t size_between(uint64_t head, uint64_t tail) const noexcept {
        if (tail <= head) return 0;
        return std::min<uint64_t>(tail - head, capacity);
    }
};

/// The ring of a validated queue segment.
inline Ring ring_of(const Segment& segment) noexcept {
    const SegmentInfo& info = segment.info();
    Ring ring;
    ring.control = reinterpret_cast<QueueControl*>(segment.body());
    ring.journal = reinterpret_cast<LostRecord*>(segment.body() + sizeof(QueueControl));
    ring.slots = segment.body() + slots_offset;
    ring.capacity = info.capacity;
    ring.payload_capacity =
        (info.flags & queue_flag_variable_length) ? info.max_message_size : info.element_size;
    ring.stride = slot_stride_for(ring.payload_capacity);
    ring.capacity_mask =
        std::has_single_bit(ring.capacity) && ring.capacity > 1 ? ring.capacity - 1 : 0;
    ring.capacity_shift = static_cast<uint32_t>(std::countr_zero(ring.capacity));
    ring.joinable = info.flags & queue_flag_joinable;
    ring.redelivery = ring.joinable && (info.flags & queue_flag_redelivery);
    ring.lease_count = ring.redelivery ? info.registry_capacity : 0;
    ring.lease_stride = lease_stride_for(ring.payload_capacity);
    return ring;
}

}  // namespace shuttle::detail
