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

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/sync.hpp"

namespace {

using steady_clock = std::chrono::steady_clock;

/// Items/s for `producers` x `consumers` processes moving `items` 8-byte items; 0 on a failed
/// count or checksum.
double measure(int producers, int consumers, uint64_t items) {
    auto queue = shuttle::Queue<uint64_t>::anonymous(1024);
    auto results = shuttle::Queue<uint64_t>::anonymous(64);  // each consumer's sum, then count
    auto start = shuttle::Event::anonymous();
    std::vector<shuttle::Process> children;
    const uint64_t per_producer = items / producers;
    for (int c = 0; c < consumers; ++c) {
        children.push_back(shuttle::spawn([&] {
            uint64_t sum = 0, count = 0;
            start.wait();
            while (auto item = queue.get()) {
                sum += *item;
                ++count;
            }
            (void)results.put(sum);
            (void)results.put(count);
        }));
    }
    std::vector<shuttle::Process> producer_processes;
    for (int p = 0; p < producers; ++p) {
        producer_processes.push_back(shuttle::spawn([&, p] {
            start.wait();
            for (uint64_t i = 0; i < per_producer; ++i) (void)queue.put(p * per_producer + i);
        }));
    }
    const auto began = steady_clock::now();
    start.set();
    for (auto& producer : producer_processes) producer.join();
    queue.shutdown();
    for (auto& consumer : children) consumer.join();
    const double seconds = std::chrono::duration<double>(steady_clock::now() - began).count();
    uint64_t sum = 0, count = 0;
    for (int c = 0; c < consumers; ++c) {
        sum += *results.get();
        count += *results.get();
    }
    const uint64_t total = per_producer * producers;
    if (count != total || sum != total * (total - 1) / 2) return 0;
    return static_cast<double>(total) / seconds;
}

double run_variant(const std::string& binary, int producers, int consumers, uint64_t items) {
    const std::string command =
        fmt::format("{} --measure {} {} --items {}", binary, producers, consumers, items);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return 0;
    double rate = 0;
    if (std::fscanf(pipe, "%lf", &rate) != 1) rate = 0;
    ::pclose(pipe);
    return rate;
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
        auto median = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
        };
        std::sort(ratios.begin(), ratios.end());
        fmt::print(
            "{}x{}: robust {:.2f} M items/s, unprotected {:.2f} M items/s (medians); "
            "ratio median {:.3f}, spread {:.3f} .. {:.3f}\n",
            producers, consumers, median(robust) / 1e6, median(unprotected) / 1e6, median(ratios),
            ratios.front(), ratios.back());
    }
    return 0;
}
