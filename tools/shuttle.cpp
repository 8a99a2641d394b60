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

#include "shuttle/inspect.hpp"
#include "shuttle/queue_inspect.hpp"

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

const char* lease_state_name(shuttle::LeasedTask::State state) {
    switch (state) {
        case shuttle::LeasedTask::State::held: return "held";
        case shuttle::LeasedTask::State::acknowledging: return "acknowledging";
        case shuttle::LeasedTask::State::orphaned: return "orphaned (to redeliver)";
    }
    return "unknown";
}

void print_queue(const SegmentSummary& s) {
    const shuttle::QueueSnapshot queue = shuttle::inspect_queue(s);
    fmt::print("queue: capacity {}, {} queued (head {}, tail {}), {}{}\n", queue.capacity,
               queue.size, queue.gets, queue.puts, queue.shut_down ? "shut down" : "open",
               queue.joinable
                   ? fmt::format(", {} unfinished tasks ({} settled for killed processes)",
                                 queue.unfinished_tasks, queue.settled_tasks)
                   : "");
    for (const shuttle::Stall& stall : queue.stalls) {
        fmt::print("  waiting on pid {}{}: it holds ticket {} mid-{}\n", stall.pid,
                   stall.stopped ? " (stopped)" : "", stall.ticket, stall.putting ? "put" : "get");
    }
    if (queue.redelivery) {
        fmt::print("redelivery: {} tasks redelivered after their holder died; leases:",
                   queue.redelivered);
        for (const shuttle::LeasedTask& lease : queue.leases) {
            fmt::print(" [entry {} {} ticket {}]", lease.holder, lease_state_name(lease.state),
                       lease.ticket);
        }
        fmt::print("{}\n", queue.leases.empty() ? " none held" : "");
    }
    fmt::print("lost with killed processes: {}\n", queue.lost_count);
    for (const shuttle::LostItem& item : queue.lost_items) {
        fmt::print(
            "  ticket {} {} by pid {}, {} bytes{}\n", item.ticket,
            item.operation == shuttle::LostOperation::put ? "put" : "get", item.pid, item.length,
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
