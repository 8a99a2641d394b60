// shuttle_micro: single-process costs of shuttle's queue, with Google Benchmark.
//   shuttle_micro --benchmark_filter=PutGet   (all of Google Benchmark's flags apply)
// g++ 12 -O2 warns "may be used uninitialized" inside std::optional when try_get() on an empty
// queue is inlined here (a false positive: the storage is only read when an item was copied).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <thread>
#include <vector>

#include "shuttle/queue.hpp"

namespace {

using shuttle::ByteQueue;
using shuttle::JoinableQueue;
using shuttle::Queue;

// Uncontended put + get of one 8-byte item (one thread, queue never full or empty for long).
void BM_PutGetPair(benchmark::State& state) {
    auto queue = Queue<std::uint64_t>::anonymous(1024);
    std::uint64_t value = 0;
    for (auto _ : state) {
        auto put = queue.put(value++);
        auto got = queue.get();
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PutGetPair);

// Batches: put_many of N items then get_many of N (one thread): the per-item cost of a batch,
// against BM_PutGetPair's single put + get (items/s comparable).
void BM_PutGetMany(benchmark::State& state) {
    auto queue = Queue<std::uint64_t>::anonymous(1024);
    std::vector<std::uint64_t> in(static_cast<std::size_t>(state.range(0))), out(in.size());
    std::uint64_t value = 0;
    for (auto _ : state) {
        for (auto& item : in) item = value++;
        auto put = queue.put_many(in);
        auto got = queue.get_many(out);
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PutGetMany)->Arg(8)->Arg(64)->Arg(256);

// The same with JoinableQueue and a task_done() per item: the price of task accounting.
void BM_JoinablePutGetTaskDone(benchmark::State& state) {
    auto queue = JoinableQueue<std::uint64_t>::anonymous(1024);
    std::uint64_t value = 0;
    for (auto _ : state) {
        auto put = queue.put(value++);
        auto got = queue.get();
        auto done = queue.task_done();
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
        benchmark::DoNotOptimize(done);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JoinablePutGetTaskDone);

void BM_TryGetEmpty(benchmark::State& state) {
    auto queue = Queue<std::uint64_t>::anonymous(1024);
    for (auto _ : state) {
        auto got = queue.try_get();
        benchmark::DoNotOptimize(got);
    }
}
BENCHMARK(BM_TryGetEmpty);

void BM_Size(benchmark::State& state) {
    auto queue = Queue<std::uint64_t>::anonymous(1024);
    for (int i = 0; i < 100; ++i) (void)queue.put(i);
    for (auto _ : state) benchmark::DoNotOptimize(queue.size());
}
BENCHMARK(BM_Size);

// put + get pairs from 1-4 threads sharing one queue (contention on the cursors).
std::optional<Queue<std::uint64_t>> shared_queue;
void make_shared_queue(const benchmark::State&) {
    shared_queue.emplace(Queue<std::uint64_t>::anonymous(1024));
}
void drop_shared_queue(const benchmark::State&) {
    shared_queue.reset();
}
void BM_PutGetThreads(benchmark::State& state) {
    std::uint64_t value = 0;
    for (auto _ : state) {
        auto put = shared_queue->put(value++);
        auto got = shared_queue->get();
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PutGetThreads)
    ->Setup(make_shared_queue)
    ->Teardown(drop_shared_queue)
    ->ThreadRange(1, 4)
    ->UseRealTime();

// The variable-length byte queue: put + get of one message of 8 B .. 64 KiB.
void BM_ByteQueuePutGet(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    auto queue = ByteQueue::anonymous(64, 65536);
    std::vector<std::byte> message(size, std::byte{1}), buffer(65536);
    for (auto _ : state) {
        auto put = queue.put(std::span<const std::byte>(message));
        auto got = queue.get(std::span<std::byte>(buffer));
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_ByteQueuePutGet)->RangeMultiplier(8)->Range(8, 65536);

// Fixed-size Queue<T> at the same sizes, for comparison with the byte queue.
template <std::size_t N>
void BM_QueuePutGetSized(benchmark::State& state) {
    using Item = std::array<std::byte, N>;
    auto queue = Queue<Item>::anonymous(64);
    Item item{};
    for (auto _ : state) {
        auto put = queue.put(item);
        auto got = queue.get();
        benchmark::DoNotOptimize(put);
        benchmark::DoNotOptimize(got);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(N));
}
BENCHMARK(BM_QueuePutGetSized<8>);
BENCHMARK(BM_QueuePutGetSized<64>);
BENCHMARK(BM_QueuePutGetSized<1024>);
BENCHMARK(BM_QueuePutGetSized<65536>);

// shutdown() with N threads parked in get(): time from shutdown() until the last waiter
// returned.
void BM_ShutdownWakeup(benchmark::State& state) {
    const auto waiters = static_cast<int>(state.range(0));
    for (auto _ : state) {
        auto queue = Queue<std::uint64_t>::anonymous(16);
        std::atomic<std::int64_t> last_return{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < waiters; ++i) {
            threads.emplace_back([&] {
                auto got = queue.get();
                benchmark::DoNotOptimize(got);
                auto now = std::chrono::steady_clock::now().time_since_epoch().count();
                auto seen = last_return.load();
                while (seen < now && !last_return.compare_exchange_weak(seen, now)) {
                }
            });
        }
        while (queue.waiting_getters() < static_cast<std::size_t>(waiters)) {
            std::this_thread::yield();
        }
        // Past the spin/yield phase (~0.2 ms idle): the waiters are parked on the futex.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        auto start = std::chrono::steady_clock::now().time_since_epoch().count();
        queue.shutdown();
        for (auto& thread : threads) thread.join();
        state.SetIterationTime(double(last_return.load() - start) / 1e9);
    }
}
BENCHMARK(BM_ShutdownWakeup)
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
