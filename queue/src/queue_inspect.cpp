// inspect_queue(): a queue's shared state read from outside, for `shuttle inspect` and monitors.
#include "shuttle/queue_inspect.hpp"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/queue_recovery.hpp"
#include "shuttle/detail/queue_waiting.hpp"
#include "shuttle/error.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/registry.hpp"

namespace shuttle {

namespace {

std::vector<LeasedTask> leases_of(const detail::Ring& ring) {
    std::vector<LeasedTask> leases;
    for (uint32_t index = 0; index < ring.lease_count; ++index) {
        const uint64_t state = ring.lease_at(index).state.load(std::memory_order_acquire);
        if (state == 0) continue;
        const uint64_t kind = state & detail::lease_kind_mask;
        leases.push_back(LeasedTask{index, state & detail::lease_ticket_mask,
                                    kind == detail::lease_held ? LeasedTask::State::held
                                    : kind == detail::lease_acking
                                        ? LeasedTask::State::acknowledging
                                        : LeasedTask::State::orphaned});
    }
    return leases;
}

/// What `ring` and `registry` hold that no run of the queue can leave (docs/recovery.md, "A
/// corrupt segment"). Cursors: a get claims a ticket only after its put published it, so the
/// head never passes the tail, and the tail never runs more than a capacity ahead of it. A
/// slot's turn (poison bit aside) names a lap within one of the cursors' laps.
std::vector<std::string> impossible_states(const detail::Ring& ring, const Registry& registry,
                                           uint64_t gets, uint64_t puts) {
    std::vector<std::string> found;
    if (gets > puts) {
        found.push_back(fmt::format("the head ({}) is ahead of the tail ({}): more gets than puts",
                                    gets, puts));
    } else if (puts - gets > ring.capacity) {
        found.push_back(fmt::format(
            "the tail ({}) is {} ahead of the head ({}): more items than the capacity ({})", puts,
            puts - gets, gets, ring.capacity));
    }
    const uint64_t head_lap = ring.lap_of(gets);
    const uint64_t tail_lap = ring.lap_of(puts);
    constexpr std::size_t max_slots_named = 4;
    uint64_t odd_slots = 0;
    for (uint64_t slot = 0; slot < ring.capacity; ++slot) {
        const uint64_t turn = ring.slot_at(slot).turn.load(std::memory_order_acquire);
        const uint64_t lap = (turn & ~detail::poison_bit) / 2;
        if (lap <= tail_lap + 1 && lap + 1 >= head_lap) continue;
        if (++odd_slots <= max_slots_named) {
            found.push_back(fmt::format(
                "slot {}'s turn ({}) names lap {}, not within one lap of the head's ({}) and "
                "the tail's ({})",
                slot, turn, lap, head_lap, tail_lap));
        }
    }
    if (odd_slots > max_slots_named) {
        found.push_back(
            fmt::format("{} more slots' turns are out of range", odd_slots - max_slots_named));
    }
    if (ring.joinable && ring.finished_tasks() > puts) {
        found.push_back(
            fmt::format("more tasks finished ({}) than put ({})", ring.finished_tasks(), puts));
    }
    const pid_t lock_pid =
        detail::identity_pid(ring.control->recovery.holder.load(std::memory_order_acquire));
    if (lock_pid < 0 || lock_pid > detail::max_pid) {
        found.push_back(
            fmt::format("the recovery lock's holder ({}) is not a process id", lock_pid));
    }
    for (uint32_t index = 0; index < registry.capacity(); ++index) {
        const pid_t pid = detail::identity_pid(registry.entry(index).identity.load());
        if (pid < 0 || pid > detail::max_pid) {
            found.push_back(
                fmt::format("registry entry {}'s holder ({}) is not a process id", index, pid));
        }
    }
    return found;
}

}  // namespace

QueueSnapshot inspect_queue(std::string_view name) {
    auto summary = inspect_segment(name);
    if (!summary) throw Error(errc::not_found, "no segment '" + std::string(name) + "'");
    return inspect_queue(*summary);
}

QueueSnapshot inspect_queue(const SegmentSummary& summary) {
    if (!summary.readable) {
        const errc code = !summary.shuttle ? errc::not_shuttle
                          : summary.layout_version != segment_layout_version
                              ? errc::version_mismatch
                              : errc::corrupt;
        throw Error(code, "segment '" + summary.name + "': " + summary.problem);
    }
    if (summary.kind != ObjectKind::queue && summary.kind != ObjectKind::byte_queue) {
        throw Error(errc::kind_mismatch, "segment '" + summary.name + "' holds a " +
                                             kind_name(summary.kind) + ", not a queue");
    }
    // Attach as the queue's own open() would, with the element fingerprint the header shows
    // (open() validates every field again: the header may have changed since it was read).
    // The summary's owner already passed inspect_segment()'s rule (the caller's, root's, or
    // anyone's for root): the queue is attached as it would be, foreign owner or not.
    SegmentExpectation expected = detail::queue_expectation(
        summary.kind, summary.element_size, summary.element_align, summary.type_tag);
    expected.allow_foreign_owner = true;
    const Segment segment = Segment::open(summary.name, expected);
    const detail::Ring ring = detail::ring_of(segment);
    const detail::QueueRecovery recovery(ring, Registry(segment));
    const SegmentInfo& info = segment.info();

    const uint64_t gets = ring.control->head.load(std::memory_order_acquire);
    const uint64_t puts = ring.put_tickets();
    return QueueSnapshot{
        .name = summary.name,
        .kind = info.kind,
        .capacity = ring.capacity,
        .element_size = info.element_size,
        .max_message_size = info.max_message_size,
        .max_participants = info.registry_capacity,
        .size = ring.size_between(gets, puts),
        .puts = puts,
        .gets = gets,
        .shut_down = (ring.control->tail.load(std::memory_order_acquire) & detail::closed_bit) != 0,
        .joinable = ring.joinable,
        .redelivery = ring.redelivery,
        .unfinished_tasks = ring.joinable ? ring.unfinished_tasks() : 0,
        .settled_tasks = ring.joinable ? recovery.settled_tasks() : 0,
        .redelivered = ring.redelivery ? recovery.redelivered_count() : 0,
        .leases = leases_of(ring),
        .waiting_getters = detail::waiters_on(ring.control->consumers),
        .waiting_putters = detail::waiters_on(ring.control->producers),
        .lost_count = recovery.lost_count(),
        .lost_items = recovery.lost_items(),
        .discarded_puts = ring.control->recovery.discarded.load(std::memory_order_relaxed),
        .stalls = recovery.stalls(),
        .impossible = impossible_states(ring, Registry(segment), gets, puts),
    };
}

}  // namespace shuttle
