// notes-3x2: three producers and two consumers share Queue(10). The parent joins the producers,
// then puts one sentinel per consumer (or, with --close, closes the queue: the built-in
// sentinel). Prints what the notes print — who produced and consumed what, the sentinels — one
// line at a time as it happens (stdout is line-buffered even into a pipe), then a throughput line
// for a bulk run.
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <vector>

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

namespace {

struct Item {
    int32_t producer;  // -1: sentinel
    int32_t number;
};

/// One run: returns the seconds it took, or a negative value if something went wrong.
double run(int64_t items_per_producer, bool use_close, bool verbose) {
    constexpr int producers = 3, consumers = 2;
    auto queue = shuttle::Queue<Item>::anonymous(10);
    // Each consumer reports how many items it got through its exit code's success and a
    // second queue of totals (counts are checked by the parent).
    auto totals = shuttle::Queue<int64_t>::anonymous(consumers);

    std::vector<shuttle::Process> consumer_processes;
    for (int c = 0; c < consumers; ++c) {
        consumer_processes.push_back(shuttle::spawn([&, c] {
            int64_t received = 0;
            for (;;) {
                auto item = queue.get();  // closed (with --close) ends the loop
                if (!item || item->producer < 0) {
                    if (verbose) {
                        fmt::print("consumer {} (pid {}) got {}, exits after {} items\n", c,
                                   getpid(), item ? "the sentinel" : "'closed'", received);
                    }
                    break;
                }
                ++received;
                if (verbose) {
                    fmt::print("consumer {} (pid {}) got item {} from producer {}\n", c, getpid(),
                               item->number, item->producer);
                }
            }
            totals.put(received).value();
        }));
    }
    const auto start = std::chrono::steady_clock::now();
    std::vector<shuttle::Process> producer_processes;
    for (int p = 0; p < producers; ++p) {
        producer_processes.push_back(shuttle::spawn([&, p] {
            for (int32_t i = 0; i < items_per_producer; ++i) {
                queue.put(Item{p, i}).value();
                if (verbose) fmt::print("producer {} (pid {}) put item {}\n", p, getpid(), i);
            }
            if (verbose) fmt::print("producer {} (pid {}) done\n", p, getpid());
        }));
    }
    for (auto& producer : producer_processes) producer.join();
    if (verbose) {
        fmt::print("parent: producers joined; {}\n",
                   use_close ? "closing the queue" : "putting one sentinel per consumer");
    }
    if (use_close) {
        queue.close();
    } else {
        for (int c = 0; c < consumers; ++c) queue.put(Item{-1, 0}).value();
    }
    int64_t received = 0;
    for (auto& consumer : consumer_processes) {
        consumer.join();
        received += *totals.get();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (received != producers * items_per_producer) {
        fmt::print(stderr, "lost or duplicated items: received {} of {}\n", received,
                   producers * items_per_producer);
        return -1;
    }
    return seconds;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"notes-3x2: 3 producers x 2 consumers on Queue(10)"};
    int64_t items = 4, bulk = 1'000'000;
    bool use_close = false;
    app.add_option("-n,--items", items, "items per producer in the printed run");
    app.add_option("--bulk", bulk, "items per producer in the timed run (0: skip)");
    app.add_flag("--close", use_close, "stop consumers with close() instead of sentinels");
    CLI11_PARSE(app, argc, argv);
    // One line at a time even into a pipe or file, so the processes' lines interleave as they
    // happen, as on a terminal.
    std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);

    fmt::print("notes-3x2: 3 producers, 2 consumers, Queue(10), stop by {}\n",
               use_close ? "close()" : "one sentinel per consumer");
    if (run(items, use_close, true) < 0) return 1;
    if (bulk > 0) {
        const double seconds = run(bulk, use_close, false);
        if (seconds < 0) return 1;
        fmt::print("bulk: {} items through Queue(10) in {:.3f} s = {:.2f} M items/s\n", 3 * bulk,
                   seconds, 3.0 * static_cast<double>(bulk) / seconds / 1e6);
    }
    return 0;
}
