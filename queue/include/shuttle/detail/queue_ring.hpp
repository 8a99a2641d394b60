// The ring's two fast paths side by side: one put attempt and one get attempt, free functions
// over the ring's geometry (Ring), the registry and the calling thread's entry. Everything else
// (waiting, recovery, task accounting) is built on these two.
//
// Slots and tickets. Puts take tickets from `tail`, gets from `head`; ticket t uses slot
// t % capacity on lap t / capacity. Each slot has a `turn`: 2*lap means "free for the put of
// this lap", 2*lap+1 "holds the item of this lap". A participant claims a ticket only when its
// slot is ready (check the turn, then CAS the cursor), so a process blocked in put/get holds no
// ticket: waits can time out, be cancelled, or be killed without wedging anyone (unlike
// ticket-first designs). Turns that step by two per lap keep capacity 1 unambiguous.
//
// Ordering pairs (every acquire/release/seq_cst site of the queue names its pair by number;
// the API-level guarantee they give is stated in queue.hpp):
//   (1) put publishes: turn = 2L+1 (seq_cst)  ->  get reads the turn (seq_cst, acquires): the
//       item's bytes and length are visible to the consumer that claims it.
//   (2) get releases:  turn = 2L+2 (seq_cst)  ->  the next lap's put reads the turn (seq_cst,
//       acquires): the consumer's copy is done before the producer overwrites the slot.
//   (6) the wake-up handshake (a Dekker shape): the waker stores the turn (1)/(2), then loads
//       the other side's waiter word (notify(), queue_waiting.hpp); a waiter sets its parked
//       bit (a seq_cst RMW in block_until), then re-reads the turn in attempt(). All four are
//       seq_cst, so in their single total order either the waker sees the parked bit (and
//       wakes it) or the waiter sees the new turn (and does not sleep): no lost wake-up. (On
//       x86-64 the seq_cst loads are plain loads; the turn stores become one xchg each.)
//   (3) announce (relaxed), then claim by CAS on the cursor (seq_cst)  ->  recovery reads the
//       cursor (acquire), then the announcements: a claim it sees was announced.
//   (4) shutdown(): tail |= closed_bit, then closed = 1 (both seq_cst)  ->  an empty get reads
//       `closed` (acquire), then the tail (acquire): shut_down only once nothing more can come.
//   (5) leased get: lease state = held | ticket (release), before (2)  ->  recovery reads the
//       lease state (acquire): a task in the lease survives its holder's death.
//   (6b) a batch (put_many / get_many) publishes or releases each slot of its run with a
//       seq_cst store, as a single put or get does in (6), before notify()'s load. (A release
//       store per slot and one seq_cst fence would do, and cost less, but ThreadSanitizer does
//       not model fences: GCC refuses them under -fsanitize=thread.)
//   (7), (8), (9) the waiter words, wake words and joiners (queue_waiting.hpp); (10), (11),
//       (12) the lease states, acknowledgement counts and settlements (queue_core.hpp); (13)
//       the armed doorbells (queue_waiting.hpp, queue_doorbell.hpp).
//   Recovery (queue/src/queue_recovery.cpp) runs under the recovery lock (acquired acq_rel,
//   released with release ordering: one recoverer's writes are visible to the next) and reads
//   the cursors (3), turns (1)/(2) and lease states (5)/(10) with acquire loads; its own sites
//   are not numbered one by one yet.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/queue_waiting.hpp"
#include "shuttle/error.hpp"
#include "shuttle/registry.hpp"

namespace shuttle::detail {

static_assert(((announce_get | announce_parity | announce_lease) & announce_ticket_mask) == 0,
              "an announcement's flags lie above its ticket");
static_assert(2 * (announce_ticket_mask + 1) <= poison_bit,
              "turns (2 * lap + 2, tickets below 2^60) never reach the poison bit");
static_assert((announce_batch & (announce_get | announce_parity | announce_lease)) == 0 &&
                  (announce_batch & announce_ticket_mask) == 0,
              "the batch flag is a flag of its own, above every ticket");
static_assert((closed_bit & announce_ticket_mask) == 0,
              "the tail's closed bit lies above every ticket");

/// Passes through an impossible state (a slot's turn a lap or more ahead of a cursor that did
/// not move) that a put or get attempt tolerates before it returns errc::corrupt. A live queue
/// never shows one: a turn is moved past a lap only after the cursor was (the turn's acquire
/// load then shows the new cursor); only a segment scribbled on does, and must not spin.
inline constexpr uint32_t max_impossible_passes = 64;

/// One put attempt on the ring from the thread owning `entry` (announce, claim, write, publish,
/// wake a consumer): QueueCore::try_put, and recovery's redelivery (`Redeliver`: also into a
/// shut-down queue, since the item was accepted before the shutdown). `write(void* payload)
/// -> uint64_t length` must not throw. Never blocks: ok, full, shut_down, or corrupt (cursor
/// and turns contradict each other: a scribbled segment; bounded, never a spin).
template <bool Redeliver = false, class Write>
[[gnu::always_inline]] inline errc ring_try_put(const Ring& ring, const Registry& registry,
                                                RegistryEntry& entry, Write&& write) noexcept {
    QueueControl& control = *ring.control;
    uint64_t tail = control.tail.load(std::memory_order_relaxed);
    uint32_t impossible = 0;
    for (;;) {
        if (!Redeliver && (tail & closed_bit)) return errc::shut_down;
        const uint64_t ticket = Redeliver ? tail & ~closed_bit : tail;
        SlotHeader& slot = ring.slot_at(ticket);
        const uint64_t lap = ring.lap_of(ticket);
        const uint64_t turn = slot.turn.load(std::memory_order_seq_cst);  // (2), (6)
        const int64_t diff = static_cast<int64_t>(turn - 2 * lap);
        if (diff == 0) {
            // (3) Announce before claiming: crash recovery reads it (docs/design.md §6).
            if constexpr (queue_recovery) entry.announced.store(ticket, std::memory_order_relaxed);
            SHUTTLE_KILL_POINT("queue.put.announced");
            if (control.tail.compare_exchange_weak(tail, tail + 1, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed)) {  // (3) claim
                ring_doorbells(control.consumers, control.doorbells[0]);          // (13)
                SHUTTLE_KILL_POINT("queue.put.claimed");
                slot.length.store(write(Ring::payload_of(slot)), std::memory_order_relaxed);
                slot.turn.store(2 * lap + 1, std::memory_order_seq_cst);  // (1) publish, (6)
                SHUTTLE_KILL_POINT("queue.put.published");
                notify(control.consumers, registry);
                return errc::ok;
            }
            // Lost the race for this ticket: withdraw the announcement, so recovery does
            // not wait for us on a slot someone else claimed.
            if constexpr (queue_recovery) {
                entry.announced.store(announce_none, std::memory_order_relaxed);
            }
        } else if (diff < 0 || (turn & poison_bit)) {
            // The slot still holds the previous lap's item: full (unless tail moved on).
            const uint64_t now = control.tail.load(std::memory_order_relaxed);
            if (now == tail) return errc::full;
            tail = now;
        } else {
            // The turn is ahead of this lap: only a stale `tail` explains it. Reloaded and
            // unchanged, it is impossible (docs/recovery.md, "A corrupt segment").
            const uint64_t now = control.tail.load(std::memory_order_relaxed);
            if (now == tail && ++impossible > max_impossible_passes) return errc::corrupt;
            tail = now;
        }
    }
}

/// One get attempt on the ring from the thread owning registry entry `index` (announce, claim,
/// read, release, wake a producer). `fits(uint64_t length) -> bool` may refuse the item
/// (errc::buffer_too_small; nothing is consumed); `read(const void* payload, uint64_t length)`
/// copies it out; neither may throw. `Leased` (get_task, redelivery): the item also goes to
/// entry `index`'s lease before the slot is released, and `ticket` is set to the get's ticket.
/// Discards lost puts on its way. Never blocks: ok, empty, shut_down, buffer_too_small or
/// corrupt (cursor and turns contradict each other; bounded).
template <bool Leased, class Fits, class Read>
inline errc ring_try_get(const Ring& ring, const Registry& registry, uint32_t index, Fits&& fits,
                         Read&& read, uint64_t& ticket) noexcept {
    RegistryEntry& entry = registry.entry(index);
    QueueControl& control = *ring.control;
    uint64_t head = control.head.load(std::memory_order_relaxed);
    uint32_t impossible = 0;
    for (;;) {
        SlotHeader& slot = ring.slot_at(head);
        const uint64_t lap = ring.lap_of(head);
        const uint64_t turn = slot.turn.load(std::memory_order_seq_cst);  // (1), (6)
        const int64_t diff = static_cast<int64_t>(turn - (2 * lap + 1));
        if (diff == 0) {
            // The slot is full and stays so until claimed: its length is stable. Read it
            // once and bound it: the segment is untrusted input.
            const uint64_t length = std::min<uint64_t>(slot.length.load(std::memory_order_relaxed),
                                                       ring.payload_capacity);
            if (!fits(length)) return errc::buffer_too_small;
            uint64_t taken = 0;
            if constexpr (queue_recovery) {
                // (3) Announce before claiming, with the parity of `taken` (was it counted?).
                taken = entry.words[entry_taken].load(std::memory_order_relaxed);
                entry.announced.store(head | announce_get | ((taken & 1) ? announce_parity : 0) |
                                          (Leased ? announce_lease : 0),
                                      std::memory_order_relaxed);
            }
            SHUTTLE_KILL_POINT("queue.get.announced");
            if (control.head.compare_exchange_weak(head, head + 1, std::memory_order_seq_cst,
                                                   std::memory_order_relaxed)) {  // (3) claim
                ring_doorbells(control.producers, control.doorbells[1]);          // (13)
                SHUTTLE_KILL_POINT("queue.get.claimed");
                if constexpr (Leased) {
                    // (5) Into the lease before the slot is released: from here on the item
                    // survives this thread's death (recovery redelivers it).
                    LeaseHeader& lease = ring.lease_at(index);
                    if (length != 0) {
                        std::memcpy(Ring::payload_of(lease), Ring::payload_of(slot), length);
                    }
                    lease.length.store(length, std::memory_order_relaxed);
                    lease.state.store(lease_held | head, std::memory_order_release);  // (5)
                    SHUTTLE_KILL_POINT("queue.lease.written");
                    ticket = head;
                }
                read(static_cast<const void*>(Ring::payload_of(slot)), length);
                if (queue_recovery && ring.joinable && !Leased) {
                    // Counted before the release: a consumer killed from here on has taken
                    // the task, and settling its entry covers it.
                    entry.words[entry_taken].store(taken + 1, std::memory_order_relaxed);
                    SHUTTLE_KILL_POINT("queue.get.counted");
                }
                slot.turn.store(2 * lap + 2, std::memory_order_seq_cst);  // (2) release, (6)
                SHUTTLE_KILL_POINT(Leased ? "queue.lease.released" : "queue.get.released");
                notify(control.producers, registry);
                return errc::ok;
            }
            if constexpr (queue_recovery) {
                entry.announced.store(announce_none, std::memory_order_relaxed);
            }
        } else if (diff < 0) {
            // Not yet written on this lap (empty, or a producer is still writing it), or
            // a lost put to discard.
            if (queue_recovery && turn == ((2 * lap + 1) | poison_bit)) {
                entry.announced.store(head | announce_get, std::memory_order_relaxed);
                if (control.head.compare_exchange_weak(head, head + 1, std::memory_order_seq_cst,
                                                       std::memory_order_relaxed)) {
                    ring_doorbells(control.producers, control.doorbells[1]);  // (13)
                    SHUTTLE_KILL_POINT("queue.get.discarding");
                    slot.turn.store(2 * lap + 2, std::memory_order_seq_cst);  // (2), (6)
                    control.recovery.discarded.fetch_add(1, std::memory_order_relaxed);
                    notify(control.producers, registry);
                    head = head + 1;
                } else {
                    entry.announced.store(announce_none, std::memory_order_relaxed);
                }
                continue;
            }
            const uint64_t now = control.head.load(std::memory_order_relaxed);
            if (now == head) {
                if (control.closed.load(std::memory_order_acquire) == 0) return errc::empty;  // (4)
                const uint64_t tail = control.tail.load(std::memory_order_acquire);           // (4)
                return (tail & ~closed_bit) <= head ? errc::shut_down : errc::empty;
            }
            head = now;
        } else {
            // Ahead of this lap: only a stale `head` explains it (as in ring_try_put).
            const uint64_t now = control.head.load(std::memory_order_relaxed);
            if (now == head && ++impossible > max_impossible_passes) return errc::corrupt;
            head = now;
        }
    }
}

// ---- batches: a run of slots per cursor operation
// ------------------------------------------------
//
// put_many / get_many check each slot of a run (the turn says it is free / holds this lap's
// item), then claim the whole run with one CAS on the cursor: nobody else can claim a ticket at
// or past the cursor, nor change such a slot's turn, so the run stays as seen. The run is
// announced first (its first ticket | announce_batch, its length in the entry's
// words[entry_batch_count]): a process killed mid-batch leaves a run whose unfinished slots
// recovery repairs one by one, each journaled as a killed single put or get would be.

/// One put_many attempt: puts a run of at most `want` items (and max_batch_run) into
/// consecutive free slots, claimed with one CAS, written and published in order; wakes one
/// consumer. `write(uint64_t j, void* payload) -> uint64_t length` fills the run's j-th slot and
/// must not throw. `count`: items put (0 unless ok). When the first slot is not free, one single
/// put decides (full, shut_down, corrupt, or it puts one item). Never blocks.
template <class Write>
inline errc ring_try_put_many(const Ring& ring, const Registry& registry, RegistryEntry& entry,
                              uint64_t want, Write&& write, uint64_t& count) noexcept {
    QueueControl& control = *ring.control;
    want = std::min({want, ring.capacity, max_batch_run});
    count = 0;
    uint64_t tail = control.tail.load(std::memory_order_relaxed);
    while (!(tail & closed_bit)) {
        uint64_t run = 0;
        while (run < want && ring.slot_at(tail + run).turn.load(std::memory_order_seq_cst) ==
                                 2 * ring.lap_of(tail + run)) {  // (2)
            ++run;
        }
        if (run == 0) break;
        if constexpr (queue_recovery) {  // (3) announced before the claim
            entry.words[entry_batch_count].store(run, std::memory_order_relaxed);
            entry.announced.store(tail | announce_batch, std::memory_order_relaxed);
        }
        SHUTTLE_KILL_POINT("queue.put_many.announced");
        if (control.tail.compare_exchange_weak(tail, tail + run, std::memory_order_seq_cst,
                                               std::memory_order_relaxed)) {  // (3) claim
            SHUTTLE_KILL_POINT("queue.put_many.claimed");
            for (uint64_t j = 0; j < run; ++j) {
                SlotHeader& slot = ring.slot_at(tail + j);
                slot.length.store(write(j, Ring::payload_of(slot)), std::memory_order_relaxed);
                slot.turn.store(2 * ring.lap_of(tail + j) + 1,
                                std::memory_order_seq_cst);  // (1), (6b)
                SHUTTLE_KILL_POINT("queue.put_many.published");
            }
            notify(control.consumers, registry);
            count = run;
            return errc::ok;
        }
        if constexpr (queue_recovery) {
            entry.announced.store(announce_none, std::memory_order_relaxed);
        }
    }
    // The first slot is not free on this lap (full, a stale tail, shut down ...): one put decides.
    const errc rc = ring_try_put(ring, registry, entry,
                                 [&write](void* payload) noexcept { return write(0, payload); });
    count = rc == errc::ok ? 1 : 0;
    return rc;
}

/// One get_many attempt by the thread owning registry entry `index`: takes a run of at most
/// `want` items (and max_batch_run) from consecutive full slots, claimed with one CAS,
/// read and released in order; wakes one producer. `fits(uint64_t j, uint64_t length) -> bool`
/// may end the run before item j (nothing of it consumed); `read(uint64_t j, const void*
/// payload, uint64_t length)` copies item j out; neither may throw. JoinableQueue: the whole
/// run is counted as taken in one store before any slot is released. `count`: items taken (0
/// unless ok). When the first slot holds no item, one single get decides (empty, shut_down,
/// buffer_too_small, corrupt, or it takes one item, discarding lost puts). Never blocks.
template <class Fits, class Read>
inline errc ring_try_get_many(const Ring& ring, const Registry& registry, uint32_t index,
                              uint64_t want, Fits&& fits, Read&& read, uint64_t& count) noexcept {
    RegistryEntry& entry = registry.entry(index);
    QueueControl& control = *ring.control;
    want = std::min({want, ring.capacity, max_batch_run});
    count = 0;
    uint64_t head = control.head.load(std::memory_order_relaxed);
    for (;;) {
        uint64_t run = 0;
        while (run < want) {
            SlotHeader& slot = ring.slot_at(head + run);
            if (slot.turn.load(std::memory_order_seq_cst) != 2 * ring.lap_of(head + run) + 1) {
                break;  // (1)
            }
            // Stable while the slot is full and unclaimed; bounded (untrusted segment).
            const uint64_t length = std::min<uint64_t>(slot.length.load(std::memory_order_relaxed),
                                                       ring.payload_capacity);
            if (!fits(run, length)) break;
            ++run;
        }
        if (run == 0) break;
        uint64_t taken = 0;
        if constexpr (queue_recovery) {  // (3) announced before the claim
            taken = entry.words[entry_taken].load(std::memory_order_relaxed);
            entry.words[entry_batch_count].store(run, std::memory_order_relaxed);
            entry.words[entry_batch_taken].store(taken, std::memory_order_relaxed);
            entry.announced.store(head | announce_get | announce_batch, std::memory_order_relaxed);
        }
        SHUTTLE_KILL_POINT("queue.get_many.announced");
        if (control.head.compare_exchange_weak(head, head + run, std::memory_order_seq_cst,
                                               std::memory_order_relaxed)) {  // (3) claim
            SHUTTLE_KILL_POINT("queue.get_many.claimed");
            if (queue_recovery && ring.joinable) {
                // The whole run counted as taken before any release: a consumer killed from
                // here on has taken every task of it (settling its entry covers them).
                entry.words[entry_taken].store(taken + run, std::memory_order_relaxed);
                SHUTTLE_KILL_POINT("queue.get_many.counted");
            }
            for (uint64_t j = 0; j < run; ++j) {
                SlotHeader& slot = ring.slot_at(head + j);
                read(j, static_cast<const void*>(Ring::payload_of(slot)),
                     std::min<uint64_t>(slot.length.load(std::memory_order_relaxed),
                                        ring.payload_capacity));
                slot.turn.store(2 * ring.lap_of(head + j) + 2,
                                std::memory_order_seq_cst);  // (2), (6b)
                SHUTTLE_KILL_POINT("queue.get_many.released");
            }
            notify(control.producers, registry);
            count = run;
            return errc::ok;
        }
        if constexpr (queue_recovery) {
            entry.announced.store(announce_none, std::memory_order_relaxed);
        }
    }
    // The first slot holds no item of this lap (empty, a lost put, a stale head ...), or the
    // first item does not fit: one get decides.
    uint64_t ticket = 0;
    const errc rc = ring_try_get<false>(
        ring, registry, index, [&fits](uint64_t length) noexcept { return fits(0, length); },
        [&read](const void* payload, uint64_t length) noexcept { read(0, payload, length); },
        ticket);
    count = rc == errc::ok ? 1 : 0;
    return rc;
}

}  // namespace shuttle::detail
