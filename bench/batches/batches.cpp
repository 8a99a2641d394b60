// Batches against single operations, in one run: 8-byte items, capacity 1024, every producer
// and consumer a forked process, producers putting flat out, shutdown to stop, counts and
// checksums checked. Each shape alternates single put/get and batches of --batch (64) items,
// --rounds times (the first variant alternating too); medians and the median ratio.
//
//   build/bench/batches/shuttle_bench_batches [--rounds 5] [--items 4000000] [--batch 64]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/sync.hpp"

namespace {

using steady_clock = std::chrono::steady_clock;

/// Items/s for `producers` x `consumers` processes moving `items` 8-byte items, `batch` items
/// per put_many / get_many (1: single put / get); 0 on a failed count or checksum.
double measure(int producers, int consumers, uint64_t items, std::size_t batch) {
    auto queue = shuttle::Queue<uint64_t>::anonymous(1024);
    auto results = shuttle::Queue<uint64_t>::anonymous(64);  // each consumer's sum, then count
    auto start = shuttle::Event::anonymous();
    const uint64_t per_producer = items / producers;
    std::vector<shuttle::Process> consumer_processes, producer_processes;
    for (int c = 0; c < consumers; ++c) {
        consumer_processes.push_back(shuttle::spawn([&] {
            uint64_t sum = 0, count = 0;
            std::vector<uint64_t> out(batch);
            start.wait();
            if (batch == 1) {
                while (auto item = queue.get()) {
                    sum += *item;
                    ++count;
                }
            } else {
                while (auto got = queue.get_many(out)) {
                    for (std::size_t i = 0; i < *got; ++i) sum += out[i];
                    count += *got;
                }
            }
            (void)results.put(sum);
            (void)results.put(count);
        }));
    }
    for (int p = 0; p < producers; ++p) {
        producer_processes.push_back(shuttle::spawn([&, p] {
            const uint64_t first = p * per_producer;
            std::vector<uint64_t> in(batch);
            start.wait();
            if (batch == 1) {
                for (uint64_t i = 0; i < per_producer; ++i) (void)queue.put(first + i);
                return;
            }
            for (uint64_t i = 0; i < per_producer;) {
                const std::size_t n = std::min<uint64_t>(batch, per_producer - i);
                for (std::size_t j = 0; j < n; ++j) in[j] = first + i + j;
                auto put = queue.put_many(std::span<const uint64_t>(in.data(), n));
                if (!put) return;
                i += n;
            }
        }));
    }
    const auto began = steady_clock::now();
    start.set();
    for (auto& producer : producer_processes) producer.join();
    queue.shutdown();
    for (auto& consumer : consumer_processes) consumer.join();
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

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle: batches (put_many / get_many) against single put / get"};
    int rounds = 5;
    uint64_t items = 4'000'000;
    std::size_t batch = 64;
    app.add_option("--rounds", rounds, "interleaved single/batch pairs per shape")
        ->check(CLI::Range(1, 1000));
    app.add_option("--items", items, "8-byte items per measurement");
    app.add_option("--batch", batch, "items per put_many / get_many")->check(CLI::Range(2, 1024));
    CLI11_PARSE(app, argc, argv);
    fmt::print(
        "Queue<uint64_t>, capacity 1024, {} items per measurement, batches of {}, {} "
        "interleaved pairs per shape (ratio: batch / single)\n",
        items, batch, rounds);
    fmt::print(
        "| shape | single put/get (M items/s) | batches of {} (M items/s) | ratio "
        "(median, min .. max) |\n|---|---:|---:|---:|\n",
        batch);
    for (const auto& [producers, consumers] : {std::pair{1, 1}, std::pair{8, 8}}) {
        std::vector<double> single, batched, ratios;
        for (int round = 0; round < rounds; ++round) {
            const bool single_first = round % 2 == 0;  // drift hits both alike
            const double a = measure(producers, consumers, items, single_first ? 1 : batch);
            const double b = measure(producers, consumers, items, single_first ? batch : 1);
            const double s = single_first ? a : b, m = single_first ? b : a;
            if (s == 0 || m == 0) {
                fmt::print("{}x{}: round {} failed its count or checksum\n", producers, consumers,
                           round);
                return 1;
            }
            single.push_back(s);
            batched.push_back(m);
            ratios.push_back(m / s);
        }
        fmt::print("| {}x{} | {:.1f} | {:.1f} | {:.2f} ({:.2f} .. {:.2f}) |\n", producers,
                   consumers, median(single) / 1e6, median(batched) / 1e6, median(ratios),
                   *std::min_element(ratios.begin(), ratios.end()),
                   *std::max_element(ratios.begin(), ratios.end()));
    }
    return 0;
}
