// shuttle::Pool against Python's multiprocessing.Pool (python3, same run, interleaved: shuttle,
// Python, shuttle, ...; medians) and against a Boost.Asio thread_pool (threads in one process:
// the in-process ceiling) running the same tasks. docs/pool.md has the figures.
//
//   map        1e6 tasks x + 1, default chunksize: items/s, ratio to Python's Pool.map
//   async      submit 1e5 apply_async(x + 1), then get() them all: tasks/s, ratio to Python's
//   roundtrip  apply(x + 1) one after another, warm workers: p50 / p99 µs, against Python's p50
//   speedup    2e4 tasks of ~100 µs CPU on as many workers as cores: speed-up over one thread
//              in this process, as a share of the ideal; and the same tasks on a Boost.Asio
//              thread_pool of as many threads (pool time / asio time)
//   kills      the speed-up tasks with a worker SIGKILLed every 100 ms (retry): every task
//              accounted (done or failed), none lost
#include <fmt/core.h>
#include <signal.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "shuttle/pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using shuttle::bench::median;
using shuttle::bench::seconds_since;

int64_t plus_one(int64_t x) {
    return x + 1;
}

/// About `iterations` steps of CPU work (calibrated to ~100 µs by the caller).
uint64_t spin(uint64_t iterations, uint64_t seed) {
    uint64_t value = seed | 1;
    for (uint64_t i = 0; i < iterations; ++i)
        value = value * 6364136223846793005ULL + 1442695040888963407ULL;
    return value;
}

double python(const std::string& mode, long count, std::size_t workers) {
    return shuttle::bench::read_figure(
        fmt::format("python3 {} {} {} {}", SHUTTLE_POOL_PYTHON_PEER, mode, count, workers));
}

double shuttle_map(shuttle::Pool& pool, long count) {
    std::vector<int64_t> inputs(static_cast<std::size_t>(count));
    std::iota(inputs.begin(), inputs.end(), 0);
    const auto start = Clock::now();
    auto results = pool.map(plus_one, inputs);
    const double elapsed = seconds_since(start);
    if (results.back() != count) std::abort();
    return static_cast<double>(count) / elapsed;
}

double shuttle_async(shuttle::Pool& pool, long count) {
    std::vector<shuttle::AsyncResult<int64_t>> results;
    results.reserve(static_cast<std::size_t>(count));
    const auto start = Clock::now();
    for (long i = 0; i < count; ++i) results.push_back(pool.apply_async(plus_one, int64_t{i}));
    int64_t total = 0;
    for (auto& result : results) total += result.get();
    const double elapsed = seconds_since(start);
    if (total != count * (count + 1) / 2) std::abort();
    return static_cast<double>(count) / elapsed;
}

std::pair<double, double> shuttle_roundtrip(shuttle::Pool& pool, long count) {
    std::vector<double> micros;
    micros.reserve(static_cast<std::size_t>(count));
    for (long i = 0; i < count; ++i) {
        const auto start = Clock::now();
        if (pool.apply(plus_one, int64_t{i}) != i + 1) std::abort();
        micros.push_back(seconds_since(start) * 1e6);
    }
    std::sort(micros.begin(), micros.end());
    return {micros[micros.size() / 2], micros[micros.size() * 99 / 100]};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "shuttle::Pool against Python's multiprocessing.Pool and a Boost.Asio thread_pool"};
    long map_items = 1000000;
    long async_tasks = 100000;
    long python_async_tasks = 20000;
    long roundtrips = 20000;
    long python_roundtrips = 2000;
    long cpu_tasks = 20000;
    int repetitions = 3;
    std::size_t workers = std::max(1u, std::thread::hardware_concurrency());
    bool skip_python = false;
    app.add_option("--map-items", map_items);
    app.add_option("--async-tasks", async_tasks);
    app.add_option("--python-async-tasks", python_async_tasks, "fewer: Python does ~11 k/s");
    app.add_option("--roundtrips", roundtrips);
    app.add_option("--python-roundtrips", python_roundtrips);
    app.add_option("--cpu-tasks", cpu_tasks, "tasks of ~100 us for the speed-up");
    app.add_option("--repetitions", repetitions)->check(CLI::Range(1, 20));
    app.add_option("--workers", workers)->check(CLI::Range(1, 24));
    app.add_flag("--skip-python", skip_python);
    CLI11_PARSE(app, argc, argv);

    fmt::print("workers {}, repetitions {} (medians), load average now: ", workers, repetitions);
    std::fflush(stdout);
    (void)!std::system("cut -d' ' -f1-3 /proc/loadavg");

    shuttle::Pool pool(workers);
    (void)shuttle_map(pool, map_items);  // warm-up: the queues' pages, the workers
    std::vector<double> map_rates, python_map_rates, async_rates, python_async_rates, p50s, p99s,
        python_p50s;
    for (int round = 0; round < repetitions; ++round) {
        map_rates.push_back(shuttle_map(pool, map_items));
        if (!skip_python) python_map_rates.push_back(python("map", map_items, workers));
        async_rates.push_back(shuttle_async(pool, async_tasks));
        if (!skip_python)
            python_async_rates.push_back(python("async", python_async_tasks, workers));
        auto [p50, p99] = shuttle_roundtrip(pool, roundtrips);
        p50s.push_back(p50);
        p99s.push_back(p99);
        if (!skip_python) python_p50s.push_back(python("roundtrip", python_roundtrips, workers));
    }
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    fmt::print(
        "map of {} x+1 (default chunksize): shuttle {:.3g} items/s, Python {:.3g} items/s: "
        "{:.1f}x\n",
        map_items, median(map_rates), median(python_map_rates),
        ratio(median(map_rates), median(python_map_rates)));
    fmt::print(
        "apply_async {} then get all: shuttle {:.3g} tasks/s, Python ({} tasks) {:.3g} tasks/s: "
        "{:.1f}x\n",
        async_tasks, median(async_rates), python_async_tasks, median(python_async_rates),
        ratio(median(async_rates), median(python_async_rates)));
    fmt::print(
        "apply round trip: shuttle p50 {:.2f} us (p99 {:.1f} us), Python p50 {:.1f} us: {:.1f}x\n",
        median(p50s), median(p99s), median(python_p50s), ratio(median(python_p50s), median(p50s)));

    // ---- speed-up of ~100 µs tasks, and the in-process ceiling ----------------------------
    uint64_t iterations = 1000;
    for (int attempt = 0; attempt < 20; ++attempt) {  // calibrate: one task ~ 100 us here
        volatile uint64_t sink = 0;
        const auto start = Clock::now();
        for (int i = 0; i < 20; ++i) sink = sink ^ spin(iterations, static_cast<uint64_t>(i));
        const double micros = seconds_since(start) * 1e6 / 20;
        if (micros >= 90 && micros <= 110) break;
        iterations =
            static_cast<uint64_t>(static_cast<double>(iterations) * 100.0 / std::max(micros, 0.01));
    }
    std::vector<uint64_t> seeds(static_cast<std::size_t>(cpu_tasks));
    std::iota(seeds.begin(), seeds.end(), 1);
    auto task = [iterations](uint64_t seed) { return spin(iterations, seed); };
    std::vector<double> serial_times, pool_times, asio_times;
    for (int round = 0; round < repetitions; ++round) {
        auto start = Clock::now();
        uint64_t serial = 0;
        for (uint64_t seed : seeds) serial ^= task(seed);
        serial_times.push_back(seconds_since(start));

        start = Clock::now();
        auto results = pool.map(task, seeds);
        pool_times.push_back(seconds_since(start));
        uint64_t pooled = 0;
        for (uint64_t value : results) pooled ^= value;
        if (pooled != serial) std::abort();

        start = Clock::now();
        std::atomic<uint64_t> threaded{0};
        {
            boost::asio::thread_pool threads(workers);
            for (uint64_t seed : seeds) {
                boost::asio::post(threads, [&, seed] { threaded.fetch_xor(task(seed)); });
            }
            threads.join();
        }
        asio_times.push_back(seconds_since(start));
        if (threaded.load() != serial) std::abort();
    }
    const double speedup = median(serial_times) / median(pool_times);
    fmt::print(
        "{} tasks of ~100 us on {} workers: one thread {:.3f} s, pool {:.3f} s: speed-up {:.2f} = "
        "{:.0f}% of ideal\n",
        cpu_tasks, workers, median(serial_times), median(pool_times), speedup,
        100 * speedup / static_cast<double>(workers));
    fmt::print(
        "the same on a Boost.Asio thread_pool of {} threads: {:.3f} s; pool / asio = {:.2f}\n",
        workers, median(asio_times), median(pool_times) / median(asio_times));

    // ---- the same tasks with a worker killed every 100 ms ----------------------------------
    {
        shuttle::Pool robust(
            workers, shuttle::PoolOptions{.on_worker_death = shuttle::WorkerDeath::retry(3)});
        std::vector<shuttle::AsyncResult<uint64_t>> results;
        std::atomic<bool> done{false};
        std::atomic<int> kills{0};
        std::thread killer([&] {
            while (!done.load()) {
                std::this_thread::sleep_for(
                    std::chrono::milliseconds(100));  // the bench's kill rate
                auto pids = robust.worker_pids();
                if (!pids.empty() && !done.load()) {
                    ::kill(pids[static_cast<std::size_t>(kills.load()) % pids.size()], SIGKILL);
                    kills.fetch_add(1);
                }
            }
        });
        const auto start = Clock::now();
        for (uint64_t seed : seeds) results.push_back(robust.apply_async(task, seed));
        long ok = 0, died = 0, other = 0;
        for (std::size_t i = 0; i < results.size(); ++i) {
            try {
                if (results[i].get() == task(seeds[i]))
                    ++ok;
                else
                    ++other;
            } catch (const shuttle::Error& error) {
                (error.condition() == shuttle::errc::worker_died ? died : other) += 1;
            }
        }
        done = true;
        killer.join();
        fmt::print(
            "with a worker killed every 100 ms ({} kills, {:.2f} s): {} tasks: {} done, {} failed "
            "(worker_died), {} wrong or lost; replacements {}\n",
            kills.load(), seconds_since(start), cpu_tasks, ok, died, other,
            robust.workers_started() - workers);
        if (ok + died != cpu_tasks) return 1;
    }
    return 0;
}
