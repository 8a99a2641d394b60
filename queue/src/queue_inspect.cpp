// inspect_queue(): a queue's shared state read from outside, for `shuttle inspect` and monitors.
#include "shuttle/queue_inspect.hpp"

#include <algorithm>
#include <string>

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
        .closed = (ring.control->tail.load(std::memory_order_acquire) & detail::closed_bit) != 0,
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
    };
}

}  // namespace shuttle
