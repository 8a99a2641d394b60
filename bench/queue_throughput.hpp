// The MxN queue throughput across processes that the queue benchmarks measure (robustness,
// unbounded), for any queue with put(uint64_t), get() and shutdown().
#pragma once

#include <cstdint>
#include <vector>

#include "bench_support.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/sync.hpp"

namespace shuttle::bench {

/// Items/s for `producers` x `consumers` processes moving `items` 8-byte items through `queue`
/// (any queue with put(uint64_t), get() and shutdown()); 0 on a failed count or checksum.
/// Timed from a common start signal to the last consumer's exit.
template <class Q>
double throughput(Q& queue, int producers, int consumers, uint64_t items) {
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
    const auto began = std::chrono::steady_clock::now();
    start.set();
    for (auto& producer : producer_processes) producer.join();
    queue.shutdown();
    for (auto& consumer : children) consumer.join();
    const double seconds = seconds_since(began);
    uint64_t sum = 0, count = 0;
    for (int c = 0; c < consumers; ++c) {
        sum += *results.get();
        count += *results.get();
    }
    const uint64_t total = per_producer * producers;
    if (count != total || sum != total * (total - 1) / 2) return 0;
    return static_cast<double>(total) / seconds;
}

}  // namespace shuttle::bench
