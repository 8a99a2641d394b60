// `shuttle`: list, inspect, remove and reap named shuttle segments.
//
//   shuttle list [PREFIX]      every segment in /dev/shm (or $SHUTTLE_SHM_DIR), one line each
//   shuttle inspect NAME       header, attached processes; for a queue: its state, what
//                              survivors wait on (live processes holding a slot), lost items
//   shuttle remove NAME        unlink the name (attached processes keep working)
//   shuttle reap [PREFIX]      remove the segments no live process is attached to
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <ctime>

#include "shuttle/detail/queue_recovery.hpp"
#include "shuttle/inspect.hpp"

namespace {

using shuttle::SegmentSummary;

void print_line(const SegmentSummary& s) {
    if (!s.readable) {
        fmt::print("{:<40} {:>12}  {}\n", s.name, s.size, s.problem);
        return;
    }
    fmt::print("{:<40} {:>12}  {:<10} creator {} ({}), registered {}, mapped by {}{}\n", s.name,
               s.size, shuttle::kind_name(s.kind), s.creator_pid,
               s.creator_alive ? "alive" : "dead", s.registered.size(), s.mapping.size(),
               s.stale() ? "  [stale]" : "");
}

void print_queue(const SegmentSummary& s) {
    shuttle::SegmentExpectation expected;
    expected.kind = s.kind;
    expected.element_size = s.element_size;
    expected.element_align = s.element_align;
    expected.type_tag = s.type_tag;
    expected.body_size = shuttle::detail::queue_body_size;
    shuttle::Segment segment = shuttle::Segment::open(s.name, expected);
    const shuttle::detail::Ring ring = shuttle::detail::ring_of(segment);
    shuttle::detail::QueueRecovery recovery(ring, shuttle::Registry(segment));
    const uint64_t tail = ring.put_tickets();
    const uint64_t head = ring.control->head.load();
    fmt::print(
        "queue: capacity {}, {} queued (head {}, tail {}), {}{}\n", ring.capacity,
        tail > head ? std::min(tail - head, ring.capacity) : 0, head, tail,
        ring.control->closed.load() ? "closed" : "open",
        ring.joinable
            ? fmt::format(", {} unfinished tasks ({} settled for killed processes)",
                          tail - std::min(tail, ring.finished_tasks()), recovery.settled_tasks())
            : "");
    for (const shuttle::Stall& stall : recovery.stalls()) {
        fmt::print("  waiting on pid {}{}: it holds ticket {} mid-{}\n", stall.pid,
                   stall.stopped ? " (stopped)" : "", stall.ticket, stall.putting ? "put" : "get");
    }
    if (ring.redelivery) {
        fmt::print("redelivery: {} tasks redelivered after their holder died; leases:",
                   recovery.redelivered_count());
        uint32_t held = 0;
        for (uint32_t index = 0; index < ring.lease_count; ++index) {
            const uint64_t state = ring.lease_at(index).state.load();
            if (state == 0) continue;
            const uint64_t kind = state & shuttle::detail::lease_kind_mask;
            fmt::print(" [entry {} {} ticket {}]", index,
                       kind == shuttle::detail::lease_held     ? "held"
                       : kind == shuttle::detail::lease_acking ? "acknowledging"
                                                               : "orphaned (to redeliver)",
                       state & shuttle::detail::lease_ticket_mask);
            ++held;
        }
        fmt::print("{}\n", held == 0 ? " none held" : "");
    }
    fmt::print("lost with killed processes: {}\n", recovery.lost_count());
    for (const shuttle::LostItem& item : recovery.lost_items()) {
        fmt::print(
            "  ticket {} {} by pid {}, {} bytes{}\n", item.ticket,
            item.operation == shuttle::detail::LostOperation::put ? "put" : "get", item.pid,
            item.length,
            item.contents.empty() ? "" : fmt::format(": {:02x}", fmt::join(item.contents, "")));
    }
}

int inspect(const std::string& name) {
    auto summary = shuttle::inspect_segment(name);
    if (!summary) {
        fmt::print(stderr, "shuttle: no segment '{}'\n", name);
        return 1;
    }
    print_line(*summary);
    if (!summary->readable) return 0;
    const std::time_t created = summary->created_unix_seconds;
    fmt::print("created {:%Y-%m-%d %H:%M:%S}, layout version {}, element {} B, max message {} B\n",
               fmt::localtime(created), summary->layout_version, summary->element_size,
               summary->max_message_size);
    fmt::print("registered pids: {}\nmapping pids: {}\n", summary->registered, summary->mapping);
    if (summary->kind == shuttle::ObjectKind::queue ||
        summary->kind == shuttle::ObjectKind::byte_queue) {
        print_queue(*summary);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle: list, inspect, remove and reap named shuttle segments"};
    app.require_subcommand(1);
    std::string prefix, name;
    auto* list = app.add_subcommand("list", "list segments (all, or those starting with PREFIX)");
    list->add_option("prefix", prefix);
    auto* inspect_command = app.add_subcommand("inspect", "show one segment in detail");
    inspect_command->add_option("name", name)->required();
    auto* remove = app.add_subcommand("remove", "remove a name (attached processes keep working)");
    remove->add_option("name", name)->required();
    auto* reap = app.add_subcommand("reap", "remove segments no live process is attached to");
    reap->add_option("prefix", prefix);
    CLI11_PARSE(app, argc, argv);
    try {
        if (*list) {
            for (const auto& summary : shuttle::list_segments(prefix)) print_line(summary);
        } else if (*inspect_command) {
            return inspect(name);
        } else if (*remove) {
            if (!shuttle::Segment::remove(name)) {
                fmt::print(stderr, "shuttle: no segment '{}'\n", name);
                return 1;
            }
        } else if (*reap) {
            for (const std::string& removed : shuttle::reap_stale(prefix)) {
                fmt::print("removed {}\n", removed);
            }
        }
    } catch (const std::exception& error) {
        fmt::print(stderr, "shuttle: {}\n", error.what());
        return 1;
    }
    return 0;
}
