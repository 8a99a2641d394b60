// `shuttle`: list, inspect, remove and reap named shuttle segments.
//
//   shuttle list [PREFIX]      every segment in /dev/shm (or $SHUTTLE_SHM_DIR), one line each
//   shuttle inspect NAME       header, attached processes; for a queue: its state, what
//                              survivors wait on (live processes holding a slot), lost items
//   shuttle remove NAME        unlink the name (attached processes keep working)
//   shuttle reap [PREFIX]      remove the segments no live process is attached to
//
// NAME and PREFIX are segment names (the library's rule: never a path). Files are opened as the
// library opens them (never through a symlink, never waiting on a FIFO, regular files only)
// and only if their owner is the caller or root, or the caller is root (docs/segments.md).
// Every command prints what it did; usage errors exit with 2, refusals and failures with 1.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "shuttle/detail/os.hpp"
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
    for (const std::string& what : queue.impossible) {
        fmt::print("IMPOSSIBLE (the segment was written by something else): {}\n", what);
    }
    fmt::print("lost with killed processes: {}\n", queue.lost_count);
    for (const shuttle::LostItem& item : queue.lost_items) {
        fmt::print(
            "  ticket {} {} by pid {}, {} bytes{}\n", item.ticket,
            item.operation == shuttle::LostOperation::put ? "put" : "get", item.pid, item.length,
            item.contents.empty() ? "" : fmt::format(": {:02x}", fmt::join(item.contents, "")));
    }
}

/// The summary of `name`, or nullopt after saying on stderr that there is no such segment.
std::optional<SegmentSummary> find(const std::string& name) {
    auto summary = shuttle::inspect_segment(name);
    if (!summary) fmt::print(stderr, "shuttle: no segment '{}'\n", name);
    return summary;
}

int inspect(const std::string& name) {
    const auto summary = find(name);
    if (!summary) return 1;
    if (!summary->readable) {
        fmt::print(stderr, "shuttle: cannot inspect '{}': {}\n", name, summary->problem);
        return 1;
    }
    print_line(*summary);
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

void print_header() {
    fmt::print("{:<40} {:>12}  {}\n", "NAME", "BYTES", "OBJECT");
}

/// How many of `summaries` could not be read (mode or owner): the user should know they exist.
std::size_t unreadable_count(const std::vector<SegmentSummary>& summaries) {
    return static_cast<std::size_t>(std::count_if(
        summaries.begin(), summaries.end(),
        [](const SegmentSummary& summary) { return summary.error == shuttle::errc::permission; }));
}

int list_all(const std::string& prefix) {
    const std::vector<SegmentSummary> summaries = shuttle::list_segments(prefix);
    print_header();
    for (const SegmentSummary& summary : summaries) print_line(summary);
    const std::size_t unreadable = unreadable_count(summaries);
    fmt::print("{} {} in {}{}\n", summaries.size(), summaries.size() == 1 ? "file" : "files",
               shuttle::detail::shm_directory(),
               unreadable == 0
                   ? std::string()
                   : fmt::format(", {} could not be read (permission denied)", unreadable));
    return 0;
}

int remove_one(const std::string& name) {
    const auto summary = find(name);
    if (!summary) return 1;
    // Only what inspection could open (a regular file of an allowed owner) and found to be a
    // shuttle segment (of any layout version, truncated or corrupt): never another file.
    if (summary->error == shuttle::errc::permission || !summary->shuttle) {
        fmt::print(stderr, "shuttle: not removing '{}': {}\n", name,
                   summary->problem.empty() ? "not a shuttle segment" : summary->problem);
        return 1;
    }
    if (!shuttle::Segment::remove(name)) {
        fmt::print(stderr, "shuttle: no segment '{}'\n", name);
        return 1;
    }
    const std::size_t attached = summary->mapping.size();
    fmt::print("removed {}{}\n", name,
               attached == 0 ? std::string()
                             : fmt::format(" ({} attached {} working)", attached,
                                           attached == 1 ? "process keeps" : "processes keep"));
    return 0;
}

int reap_all(const std::string& prefix) {
    const std::vector<std::string> removed = shuttle::reap_stale(prefix);
    for (const std::string& name : removed) fmt::print("removed {}\n", name);
    if (removed.empty()) fmt::print("nothing to reap\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle: list, inspect, remove and reap named shuttle segments"};
    app.name("shuttle");
    app.require_subcommand(1);
    std::string prefix, name;
    auto* list_command =
        app.add_subcommand("list", "list segments (all, or those starting with PREFIX)");
    list_command->add_option("prefix", prefix);
    auto* inspect_command = app.add_subcommand("inspect", "show one segment in detail");
    inspect_command->add_option("name", name)->required();
    auto* remove_command =
        app.add_subcommand("remove", "remove a name (attached processes keep working)");
    remove_command->add_option("name", name)->required();
    auto* reap_command =
        app.add_subcommand("reap", "remove segments no live process is attached to");
    reap_command->add_option("prefix", prefix);
    constexpr int usage_error = 2;
    if (argc < 2) {
        fmt::print(stderr, "{}", app.help());
        return usage_error;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        const int code = app.exit(error);  // prints the help, or the error and a hint
        return code == 0 ? 0 : usage_error;
    }
    try {
        if (*list_command) return list_all(prefix);
        if (*inspect_command) return inspect(name);
        if (*remove_command) return remove_one(name);
        if (*reap_command) return reap_all(prefix);
    } catch (const std::exception& error) {
        fmt::print(stderr, "shuttle: {}\n", error.what());
        return 1;
    }
    return usage_error;
}
