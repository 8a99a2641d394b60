// UnboundedQueue<T> against a bounded Queue<T> of capacity 1024 in the same run (issue 14 §2):
//  1. 1x1 throughput across processes, 8-byte items, >= 10 interleaved pairs, each measurement in
//     a fresh process: the ratio unbounded / bounded (median and spread);
//  2. >= 1e6 items put without a get, then drained in another process: time, chunks, memory.
//
//   build/bench/unbounded/shuttle_unbounded_bench [--pairs 10] [--items 2000000] [--fill 1000000]
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "queue_throughput.hpp"
#include "shuttle/process.hpp"
#include "shuttle/unbounded_queue.hpp"

namespace {

using steady_clock = std::chrono::steady_clock;

using shuttle::bench::seconds_since;

double measure(const std::string& variant, uint64_t items) {
    if (variant == "bounded") {
        auto queue = shuttle::Queue<uint64_t>::anonymous(1024);
        return shuttle::bench::throughput(queue, 1, 1, items);
    }
    auto queue = shuttle::UnboundedQueue<uint64_t>::anonymous({.chunk_capacity = 1024});
    return shuttle::bench::throughput(queue, 1, 1, items);
}

double run_variant(const std::string& self, const std::string& variant, uint64_t items) {
    return shuttle::bench::read_figure(
        fmt::format("{} --measure {} --items {}", self, variant, items));
}

/// `fill` items put by a child with no get, then drained by the parent.
int fill_then_drain(uint64_t fill) {
    auto queue = shuttle::UnboundedQueue<uint64_t>::anonymous({.chunk_capacity = 1024});
    const auto began = steady_clock::now();
    shuttle::Process producer = shuttle::spawn([&] {
        for (uint64_t i = 0; i < fill; ++i) {
            if (!queue.put(i)) std::_Exit(1);
        }
    });
    producer.join();
    if (producer.exitcode() != 0) {
        fmt::print("fill: the producer failed\n");
        return 1;
    }
    const double put_seconds = seconds_since(began);
    const std::size_t chunks = queue.chunks();
    const auto drain_began = steady_clock::now();
    for (uint64_t i = 0; i < fill; ++i) {
        auto item = queue.try_get();
        if (!item || *item != i) {
            fmt::print("fill: item {} missing or out of order\n", i);
            return 1;
        }
    }
    const double drain_seconds = seconds_since(drain_began);
    fmt::print(
        "fill: {} items put without a get in {:.3f} s ({:.2f} M items/s), {} chunks (1024 items, "
        "doubling behind the backlog); "
        "drained in {:.3f} s ({:.2f} M items/s); chunks after the drain: {}\n",
        fill, put_seconds, fill / put_seconds / 1e6, chunks, drain_seconds,
        fill / drain_seconds / 1e6, queue.chunks());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle: UnboundedQueue against a bounded Queue(1024), same run"};
    int pairs = 10;
    uint64_t items = 2'000'000, fill = 1'000'000;
    std::string variant;
    app.add_option("--pairs", pairs, "interleaved bounded/unbounded pairs")
        ->check(CLI::Range(1, 1000));
    app.add_option("--items", items, "8-byte items per 1x1 measurement");
    app.add_option("--fill", fill, "items put without a get, then drained (0: skip)");
    app.add_option("--measure", variant, "internal: measure once (bounded or unbounded)");
    CLI11_PARSE(app, argc, argv);
    if (!variant.empty()) {
        std::printf("%.0f\n", measure(variant, items));
        return 0;
    }
    const std::string self = ::realpath("/proc/self/exe", nullptr);
    fmt::print("1x1 across processes, 8 B items, {} items, {} interleaved pairs\n", items, pairs);
    std::vector<double> ratios, bounded, unbounded;
    for (int pair = 0; pair < pairs; ++pair) {
        // Alternate which variant goes first, so drift hits both alike.
        const bool bounded_first = pair % 2 == 0;
        const double first = run_variant(self, bounded_first ? "bounded" : "unbounded", items);
        const double second = run_variant(self, bounded_first ? "unbounded" : "bounded", items);
        const double b = bounded_first ? first : second, u = bounded_first ? second : first;
        if (b == 0 || u == 0) {
            fmt::print("pair {} failed its count or checksum\n", pair);
            return 1;
        }
        bounded.push_back(b);
        unbounded.push_back(u);
        ratios.push_back(u / b);
    }
    std::sort(ratios.begin(), ratios.end());
    using shuttle::bench::median;
    fmt::print(
        "1x1: bounded(1024) {:.2f} M items/s, unbounded(chunks of 1024) {:.2f} M items/s "
        "(medians); unbounded/bounded median {:.3f}, spread {:.3f} .. {:.3f}\n",
        median(bounded) / 1e6, median(unbounded) / 1e6, median(ratios), ratios.front(),
        ratios.back());
    return fill > 0 ? fill_then_drain(fill) : 0;
}
