// The notes' counter, `with v.get_lock(): v.value += 1`, from 1 and from 2 processes: shuttle's
// Value<int64_t> under get_lock(), the same with fetch_add, and Python's multiprocessing.Value
// (through python3, in the same run; its lock-guarded loop). Every run checks the exact total.
// Interleaved repetitions (shuttle, Python, shuttle, ...), median of each.
//
//   shuttle_value_bench [--repetitions N] [--increments N] [--python-increments N]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "python_peer.hpp"
#include "shuttle/process.hpp"
#include "shuttle/value.hpp"

namespace {

using Clock = std::chrono::steady_clock;

/// Python's loop: prints increments per second, or fails on a wrong total.
constexpr const char* python_program = R"(
import multiprocessing as mp, sys, time
def work(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1
n, procs = int(sys.argv[1]), int(sys.argv[2])
v = mp.Value('q', 0)
workers = [mp.Process(target=work, args=(v, n)) for _ in range(procs)]
start = time.perf_counter()
for w in workers: w.start()
for w in workers: w.join()
elapsed = time.perf_counter() - start
assert v.value == n * procs, v.value
print(n * procs / elapsed)
)";

double python_rate(uint64_t increments, int processes) {
    return shuttle::bench::python_rate(python_program, fmt::format("{} {}", increments, processes));
}

/// Increments per second of `processes` processes each running `body` `increments` times.
template <class Body>
double shuttle_rate(shuttle::Value<int64_t>& value, uint64_t increments, int processes, Body body) {
    value.store(0);
    const auto start = Clock::now();
    std::vector<shuttle::Process> workers;
    for (int worker = 0; worker < processes; ++worker) {
        workers.push_back(shuttle::spawn([&] {
            for (uint64_t step = 0; step < increments; ++step) body();
        }));
    }
    for (auto& worker : workers) worker.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const uint64_t expected = increments * static_cast<uint64_t>(processes);
    if (static_cast<uint64_t>(value.load()) != expected) {
        fmt::print(stderr, "wrong total: {} instead of {}\n", value.load(), expected);
        std::exit(1);
    }
    return static_cast<double>(expected) / seconds;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app(
        "Value<T>: the notes' lock-guarded counter against Python's multiprocessing.Value");
    int repetitions = 5;
    uint64_t increments = 2'000'000;
    uint64_t python_increments = 200'000;
    app.add_option("--repetitions", repetitions, "interleaved repetitions (median reported)");
    app.add_option("--increments", increments, "increments per shuttle process");
    app.add_option("--python-increments", python_increments, "increments per Python process");
    CLI11_PARSE(app, argc, argv);

    auto value = shuttle::Value<int64_t>::anonymous(0);
    auto locked = [&] {
        std::lock_guard guard(value.get_lock());
        value.store(value.load() + 1);
    };
    auto atomic = [&] { value.fetch_add(1); };

    fmt::print("{:<12} {:>22} {:>22} {:>22} {:>10} {:>10}\n", "processes", "python with get_lock",
               "shuttle with get_lock", "shuttle fetch_add", "lock/py", "add/py");
    for (int processes : {1, 2}) {
        std::vector<double> python, shuttle_locked, shuttle_atomic;
        for (int repetition = 0; repetition < repetitions; ++repetition) {
            shuttle_locked.push_back(shuttle_rate(value, increments, processes, locked));
            python.push_back(python_rate(python_increments, processes));
            shuttle_atomic.push_back(shuttle_rate(value, increments, processes, atomic));
        }
        const double py = shuttle::bench::median(python);
        const double lock_rate = shuttle::bench::median(shuttle_locked);
        const double add_rate = shuttle::bench::median(shuttle_atomic);
        fmt::print("{:<12} {:>18.2f} M/s {:>18.2f} M/s {:>18.2f} M/s {:>9.1f}x {:>9.1f}x\n",
                   processes, py / 1e6, lock_rate / 1e6, add_rate / 1e6,
                   py > 0 ? lock_rate / py : 0.0, py > 0 ? add_rate / py : 0.0);
    }
    return 0;
}
