// shuttle_scenarios: the notes' MPMC scenarios across processes, every peer side by side in one
// run, interleaved per repetition; tables on the terminal, CSV / JSON / markdown beside them.
//
//   shuttle_scenarios --quick                       # seconds: every scenario, every peer
//   shuttle_scenarios --csv r.csv --json r.json     # the full run (minutes)
//   shuttle_scenarios --scenario notes-3x2,sweep --peers shuttle,boost-mq --repetitions 5
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "harness.hpp"
#include "report.hpp"

#ifndef SHUTTLE_BENCH_PYTHON_PEER
#define SHUTTLE_BENCH_PYTHON_PEER "bench/peers/python_peer.py"
#endif

namespace shuttle::bench {

std::unique_ptr<Peer> make_unavailable_peer(std::string name, std::string reason);

std::vector<std::unique_ptr<Peer>> make_peers(const std::string& python_peer_script) {
    std::vector<std::unique_ptr<Peer>> peers;
    auto add = [&](std::unique_ptr<Peer> peer, const char* name, const char* missing) {
        peers.push_back(peer ? std::move(peer) : make_unavailable_peer(name, missing));
    };
    add(make_shuttle_peer(), "shuttle", "");
    add(make_shuttle_pipe_peer(), "shuttle-pipe", "");
    add(make_boost_mq_peer(), "boost-mq", "");
    add(make_posix_mq_peer(), "posix-mq", "");
    add(make_pipe_peer(), "pipe", "");
    add(make_socketpair_peer(), "socketpair", "");
    add(make_python_peer(python_peer_script), "python", "");
    add(make_zmq_peer(), "zmq", "not installed (libzmq3-dev)");
    add(make_lockfree_peer(), "lockfree*", "");
    add(make_atomic_queue_peer(), "atomic_queue*", "not installed (libatomic-queue-dev)");
    add(make_moodycamel_peer(), "moodycamel*", "not installed (libconcurrentqueue-dev)");
    for (auto& lock : make_lock_peers()) peers.push_back(std::move(lock));
    return peers;
}

namespace {

struct Options {
    bool quick = false;
    std::vector<std::string> scenarios;
    std::vector<std::string> peers;
    int repetitions = 0;
    std::uint64_t items = 0;
    double budget = -1;
    double idle_seconds = 0;
    std::string csv, json, markdown;
    std::string python_peer = SHUTTLE_BENCH_PYTHON_PEER;
    std::string reference = "shuttle";
    double timeout = 0;
    std::vector<int> cpus;
    // Sweep filters (empty: the default grid). Shapes are "PxC", e.g. 1x1,3x2,8x8.
    std::vector<std::string> sweep_shapes;
    std::vector<std::size_t> sweep_capacities, sweep_payloads;
};

const std::vector<std::string> all_scenarios = {"notes-1x1",  "notes-3x2",     "notes-joinable",
                                                "notes-pipe", "notes-tickets", "ping-pong",
                                                "idle-cpu",   "sweep"};

/// Items per cell for a payload, from the 8 B figure: the byte volume grows with the payload
/// but slower than it (64 B moves 1/2 the items of 8 B, 1 KiB 1/8, 64 KiB 1/100), so a fast
/// transport's window stays long enough at every size; the time budget bounds the slow ones.
std::uint64_t scaled(std::uint64_t items, std::size_t payload) {
    std::uint64_t divisor = payload >= 65536 ? 100 : payload >= 1024 ? 8 : payload >= 64 ? 2 : 1;
    return std::max<std::uint64_t>(items / divisor, 20);
}

std::vector<RunSpec> plan(const Options& options) {
    std::vector<RunSpec> specs;
    const std::uint64_t items = options.items;
    auto wanted = [&](const std::string& name) {
        return std::find(options.scenarios.begin(), options.scenarios.end(), name) !=
               options.scenarios.end();
    };
    auto add = [&](std::string scenario, Kind kind, int producers, int consumers,
                   std::size_t capacity, std::size_t payload, std::uint64_t per_producer) {
        RunSpec spec;
        spec.scenario = std::move(scenario);
        spec.kind = kind;
        spec.producers = producers;
        spec.consumers = consumers;
        spec.capacity = capacity;
        spec.payload = payload;
        spec.items_per_producer = per_producer;
        spec.timeout_seconds = options.timeout;
        spec.budget_seconds = kind == Kind::tickets ? 0 : options.budget;
        specs.push_back(spec);
    };
    // `items` is the total per configuration at 8 B, split between the producers.
    if (wanted("notes-1x1")) add("notes-1x1", Kind::queue, 1, 1, 10, 8, items);
    if (wanted("notes-3x2")) {
        for (std::size_t payload : {std::size_t{8}, std::size_t{1024}}) {
            add("notes-3x2", Kind::queue, 3, 2, 10, payload, scaled(items, payload) / 3);
        }
    }
    if (wanted("notes-joinable")) add("notes-joinable", Kind::joinable, 1, 1, 10, 8, items);
    if (wanted("notes-pipe")) {
        for (std::size_t payload : {std::size_t{8}, std::size_t{1024}, std::size_t{65536}}) {
            add("notes-pipe", Kind::pipe, 1, 1, 64, payload, scaled(items, payload));
        }
    }
    if (wanted("notes-tickets")) {
        add("notes-tickets", Kind::tickets, 10, 0, 0, 8, std::max<std::uint64_t>(items / 2, 100));
    }
    if (wanted("ping-pong")) {
        add("ping-pong", Kind::ping_pong, 1, 1, 10, 8, std::max<std::uint64_t>(items / 10, 100));
    }
    if (wanted("idle-cpu")) {
        // A consumer blocked in get() on an empty queue; the window is --idle-seconds.
        add("idle-cpu", Kind::idle, 1, 1, 10, 8, 0);
        specs.back().budget_seconds = options.idle_seconds;
    }
    if (wanted("sweep")) {
        std::vector<int> widths =
            options.quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4, 8};
        std::vector<std::size_t> capacities =
            options.quick ? std::vector<std::size_t>{10} : std::vector<std::size_t>{10, 1024};
        std::vector<std::size_t> payloads = options.quick
                                                ? std::vector<std::size_t>{8, 1024}
                                                : std::vector<std::size_t>{8, 64, 1024, 65536};
        std::vector<std::pair<int, int>> shapes;
        for (int width : widths) shapes.emplace_back(width, width);
        if (!options.sweep_shapes.empty()) {
            shapes.clear();
            for (const auto& shape : options.sweep_shapes) {
                const auto x = shape.find('x');
                if (x == std::string::npos) throw std::invalid_argument("shape: " + shape);
                shapes.emplace_back(std::stoi(shape.substr(0, x)), std::stoi(shape.substr(x + 1)));
            }
        }
        if (!options.sweep_capacities.empty()) capacities = options.sweep_capacities;
        if (!options.sweep_payloads.empty()) payloads = options.sweep_payloads;
        for (auto capacity : capacities) {
            for (auto payload : payloads) {
                for (auto [producers, consumers] : shapes) {
                    // The same total work at every width: items are split between producers.
                    add("sweep", Kind::queue, producers, consumers, capacity, payload,
                        std::max<std::uint64_t>(scaled(items, payload) / producers, 10));
                }
            }
        }
    }
    return specs;
}

std::string machine_description() {
    utsname name{};
    uname(&name);
    std::string model = "unknown CPU";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    return fmt::format("{} ({} cores online), Linux {}", model, sysconf(_SC_NPROCESSORS_ONLN),
                       name.release);
}

std::string base_name(const std::string& peer) {
    return peer.back() == '*' ? peer.substr(0, peer.size() - 1) : peer;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"shuttle_scenarios: the notes' scenarios across processes, against every peer"};
    app.add_flag("--quick", options.quick,
                 "a smoke run in seconds: 1 repetition, few items, a reduced sweep (counts and "
                 "checksums still checked)");
    app.add_option("--scenario", options.scenarios, "scenarios to run (default: all)")
        ->delimiter(',')
        ->check(CLI::IsMember(all_scenarios));
    app.add_option("--peers", options.peers, "peers to run (default: all), e.g. shuttle,boost-mq")
        ->delimiter(',');
    app.add_option("--repetitions", options.repetitions,
                   "repetitions per peer, interleaved (default 3; 1 with --quick)")
        ->check(CLI::PositiveNumber);
    app.add_option("--items", options.items,
                   "items per configuration at 8 B, split between its producers; larger "
                   "payloads move fewer (64 B 1/2, 1 KiB 1/8, 64 KiB 1/100), ping-pong makes "
                   "1/10 as many round trips, notes-tickets sells a stock of 1/2 (default "
                   "2000000; 1000 with --quick)")
        ->check(CLI::PositiveNumber);
    app.add_option("--budget", options.budget,
                   "seconds after which the producers of a run stop early (a slow peer then "
                   "moves fewer items; counts and checksums are of what was sent); 0: none "
                   "(default 0.5; 0 with --quick)");
    app.add_option("--idle-seconds", options.idle_seconds,
                   "how long the idle-cpu consumer stays blocked (default 1; 0.2 with --quick)");
    app.add_option("--sweep-shapes", options.sweep_shapes,
                   "sweep only these producers x consumers shapes, e.g. 1x1,3x2,8x8")
        ->delimiter(',');
    app.add_option("--sweep-capacities", options.sweep_capacities, "sweep only these capacities")
        ->delimiter(',');
    app.add_option("--sweep-payloads", options.sweep_payloads, "sweep only these payload sizes")
        ->delimiter(',');
    app.add_option("--csv", options.csv, "write one summary row per configuration and peer");
    app.add_option("--json", options.json, "write summaries and every repetition as JSON");
    app.add_option("--markdown", options.markdown, "write the tables as markdown");
    app.add_option("--python-peer", options.python_peer, "path of bench/peers/python_peer.py");
    app.add_option("--reference", options.reference, "the peer ratios are computed against");
    app.add_option("--timeout", options.timeout, "seconds before a run is killed and failed");
    app.add_option("--cpus", options.cpus,
                   "run every process on these CPUs only (e.g. 0: producers and consumers then "
                   "share one CPU, as when the others are busy)");
    CLI11_PARSE(app, argc, argv);
    if (!options.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : options.cpus) CPU_SET(cpu, &set);
        // Inherited by every process forked (and exec'd) from here on.
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fmt::print(stderr, "--cpus: sched_setaffinity failed: {}\n", std::strerror(errno));
            return 2;
        }
    }

    if (options.scenarios.empty()) options.scenarios = all_scenarios;
    if (options.repetitions == 0) options.repetitions = options.quick ? 1 : 3;
    if (options.items == 0) options.items = options.quick ? 1000 : 2000000;
    if (options.budget < 0) options.budget = options.quick ? 0 : 0.5;
    if (options.idle_seconds <= 0) options.idle_seconds = options.quick ? 0.2 : 1;
    if (options.timeout == 0) options.timeout = options.quick ? 20 : 180;

    calibrate_ticks();
    auto peers = make_peers(options.python_peer);
    if (!options.peers.empty()) {
        std::set<std::string> wanted(options.peers.begin(), options.peers.end());
        std::erase_if(peers, [&](const auto& peer) {
            return !wanted.count(peer->name()) && !wanted.count(base_name(peer->name()));
        });
    }

    Report report;
    report.reference = options.reference;
    report.repetitions = options.repetitions;
    report.machine = machine_description();
    report.date = fmt::format("{:%Y-%m-%d %H:%M}", fmt::localtime(std::time(nullptr)));
    for (const auto& peer : peers) {
        for (auto& note : peer->notes()) report.notes.push_back(note);
    }
    report.notes.push_back(
        "joinable: shuttle uses JoinableQueue (and python its JoinableQueue); the other peers "
        "have no task accounting, so a shared counter + futex stands in for task_done()/join()");
    report.notes.push_back(
        "rate = items received / (start barrier .. last item received); CPU = user+system of "
        "every process of the run (getrusage RUSAGE_CHILDREN), or of this process for the "
        "in-process* peers");

    fmt::print("shuttle scenario runner - {} - {}\n", report.date, report.machine);
    fmt::print("{} repetitions per peer, interleaved; ratios against {}\n", options.repetitions,
               options.reference);
    if (!options.cpus.empty()) {
        fmt::print("every process pinned to CPU(s) {}\n", fmt::join(options.cpus, ","));
        report.notes.push_back(fmt::format("every process pinned to CPU(s) {} (--cpus)",
                                           fmt::join(options.cpus, ",")));
    }

    auto specs = plan(options);
    std::string current_scenario;
    std::set<std::string> printed_unavailable;
    for (std::size_t s = 0; s < specs.size(); ++s) {
        const RunSpec& spec = specs[s];
        if (spec.scenario != current_scenario) {
            if (!current_scenario.empty()) report.print_scenario(stdout, current_scenario);
            current_scenario = spec.scenario;
        }
        const std::size_t first = report.rows.size();
        // The peer of each row (names are not unique: shuttle's queue and its Lock are both
        // "shuttle", so the ratios of every scenario are against shuttle).
        std::vector<Peer*> row_peers;
        for (const auto& peer : peers) {
            auto reason = peer->skip_reason(spec);
            // Lock peers only appear in notes-tickets, channel peers only elsewhere.
            // (and shuttle's Pipe only in notes-pipe and ping-pong).
            if (reason && (*reason == "not a lock" || *reason == "not a channel" ||
                           *reason == not_a_pipe_scenario)) {
                continue;
            }
            report.rows.push_back(Row{spec, peer->name(), reason, {}});
            row_peers.push_back(peer.get());
        }
        fmt::print(stderr, "[{}/{}] {} {}\n", s + 1, specs.size(), spec.scenario, spec.label());
        for (int repetition = 0; repetition < options.repetitions; ++repetition) {
            for (auto index = first; index < report.rows.size(); ++index) {  // A B C A B C ...
                Row& row = report.rows[index];
                if (row.skipped) continue;
                Peer* peer = row_peers[index - first];
                if (!row.runs.empty() && !row.runs.back().ok) continue;  // failed: stop trying
                Measurement measurement;
                try {
                    measurement = peer->run(spec);
                } catch (const std::exception& error) {
                    measurement.ok = false;
                    measurement.error = error.what();
                }
                if (spec.kind == Kind::joinable && measurement.note.empty() &&
                    row.peer != "shuttle" && row.peer != "python") {
                    measurement.note = "task_done emulated";
                }
                row.runs.push_back(measurement);
            }
        }
    }
    if (!current_scenario.empty()) report.print_scenario(stdout, current_scenario);

    fmt::print("\nNotes:\n");
    for (const auto& note : report.notes) fmt::print("- {}\n", note);
    int failures = report.failures();
    fmt::print("\nfailures: {}\n", failures);
    if (!options.csv.empty()) report.write_csv(options.csv);
    if (!options.json.empty()) report.write_json(options.json);
    if (!options.markdown.empty()) report.write_markdown(options.markdown, options.scenarios);
    return failures == 0 ? 0 : 1;
}

}  // namespace shuttle::bench

int main(int argc, char** argv) {
    return shuttle::bench::main(argc, argv);
}
