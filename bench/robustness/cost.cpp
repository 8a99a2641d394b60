// What crash recovery costs on the queue's fast path: the same 8-byte, capacity-1024 run across
// processes (1x1 and 4x4) with the robust queue and with the one built without recovery
// (SHUTTLE_QUEUE_UNPROTECTED), in >= 10 interleaved pairs; the median ratio and its spread.
//
//   build/bench/shuttle_bench_robustness [--pairs 10] [--items 2000000]
//
// The same source builds both binaries; the robust one drives, running each measurement in a
// fresh process (`--measure P C`) so neither variant inherits the other's warm state.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "queue_throughput.hpp"
#include "shuttle/queue.hpp"

namespace {

using steady_clock = std::chrono::steady_clock;

/// Items/s for `producers` x `consumers` processes through a capacity-1024 queue.
double measure(int producers, int consumers, uint64_t items) {
    auto queue = shuttle::Queue<uint64_t>::anonymous(1024);
    return shuttle::bench::throughput(queue, producers, consumers, items);
}

double run_variant(const std::string& binary, int producers, int consumers, uint64_t items) {
    return shuttle::bench::read_figure(
        fmt::format("{} --measure {} {} --items {}", binary, producers, consumers, items));
}

std::string sibling(const std::string& self, const std::string& name) {
    const auto slash = self.rfind('/');
    return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/" + name;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle: the cost of crash recovery on the queue's fast path"};
    int pairs = 10;
    uint64_t items = 2'000'000;
    std::vector<int> shape;
    app.add_option("--pairs", pairs, "interleaved robust/unprotected pairs per shape")
        ->check(CLI::Range(1, 1000));
    app.add_option("--items", items, "8-byte items per measurement");
    app.add_option("--measure", shape, "internal: measure once, P producers x C consumers")
        ->expected(2);
    CLI11_PARSE(app, argc, argv);
    if (!shape.empty()) {
        std::printf("%.0f\n", measure(shape[0], shape[1], items));
        return 0;
    }
    const std::string self = ::realpath("/proc/self/exe", nullptr);
    const std::array<std::string, 2> binaries{self, sibling(self, "shuttle_bench_unprotected")};
    fmt::print(
        "robust vs unprotected queue, 8 B items, capacity 1024, {} items, {} interleaved "
        "pairs (ratio > 1: robust is faster)\n",
        items, pairs);
    for (const auto& [producers, consumers] : {std::pair{1, 1}, std::pair{4, 4}}) {
        std::vector<double> ratios, robust, unprotected;
        for (int pair = 0; pair < pairs; ++pair) {
            // Alternate which variant goes first, so drift hits both alike.
            const bool robust_first = pair % 2 == 0;
            const double first =
                run_variant(binaries[robust_first ? 0 : 1], producers, consumers, items);
            const double second =
                run_variant(binaries[robust_first ? 1 : 0], producers, consumers, items);
            const double r = robust_first ? first : second, u = robust_first ? second : first;
            if (r == 0 || u == 0) {
                fmt::print("{}x{}: pair {} failed its count or checksum\n", producers, consumers,
                           pair);
                return 1;
            }
            robust.push_back(r);
            unprotected.push_back(u);
            ratios.push_back(r / u);
        }
        using shuttle::bench::median;
        std::sort(ratios.begin(), ratios.end());
        fmt::print(
            "{}x{}: robust {:.2f} M items/s, unprotected {:.2f} M items/s (medians); "
            "ratio median {:.3f}, spread {:.3f} .. {:.3f}\n",
            producers, consumers, median(robust) / 1e6, median(unprotected) / 1e6, median(ratios),
            ratios.front(), ratios.back());
    }
    return 0;
}
