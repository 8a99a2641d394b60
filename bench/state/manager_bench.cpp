// The notes' Manager, from 4 processes at once: dict get, dict set and list append through
// shuttle's Dict<std::string, int64_t> / List<int64_t>, and through Python's
// multiprocessing.Manager().dict() / .list() proxies (python3, in the same run). Keys cycle over
// 1000 prefilled "key<i>". Interleaved repetitions (shuttle, Python, ...), median of each; every
// run checks its result (appends all there, the last set values read back).
//
//   shuttle_manager_bench [--repetitions N] [--operations N] [--python-operations N] [--processes
//   N]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "python_peer.hpp"
#include "shuttle/dict.hpp"
#include "shuttle/list.hpp"
#include "shuttle/process.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int keys = 1000;

/// Python's loop: prints operations per second, or fails on a wrong result.
constexpr const char* python_program = R"(
import multiprocessing as mp, sys, time
def work(d, l, n, op, w):
    names = ['key%d' % i for i in range(1000)]
    if op == 'set':
        for i in range(n): d[names[(i + w) % 1000]] = i
    elif op == 'get':
        for i in range(n): d.get(names[(i + w) % 1000])
    else:
        for i in range(n): l.append(i)
n, procs, op = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with mp.Manager() as m:
    d, l = m.dict(), m.list()
    d.update({'key%d' % i: 0 for i in range(1000)})
    workers = [mp.Process(target=work, args=(d, l, n, op, w)) for w in range(procs)]
    start = time.perf_counter()
    for w in workers: w.start()
    for w in workers: w.join()
    elapsed = time.perf_counter() - start
    assert op != 'append' or len(l) == n * procs, len(l)
    print(n * procs / elapsed)
)";

double python_rate(const char* operation, uint64_t operations, int processes) {
    return shuttle::bench::python_rate(python_program,
                                       fmt::format("{} {} {}", operations, processes, operation));
}

/// Operations per second of `processes` processes each running body(worker, step).
template <class Body>
double shuttle_rate(uint64_t operations, int processes, Body body) {
    const auto start = Clock::now();
    std::vector<shuttle::Process> workers;
    for (int worker = 0; worker < processes; ++worker) {
        workers.push_back(shuttle::spawn([&, worker] {
            for (uint64_t step = 0; step < operations; ++step) body(worker, step);
        }));
    }
    for (auto& worker : workers) {
        worker.join();
        if (worker.exitcode() != 0) {
            fmt::print(stderr, "a worker failed\n");
            std::exit(1);
        }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return static_cast<double>(operations) * processes / seconds;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("Dict / List against Python's Manager().dict() / .list(), 4 processes");
    int repetitions = 3;
    int processes = 4;
    uint64_t operations = 200'000;
    uint64_t python_operations = 5'000;
    app.add_option("--repetitions", repetitions, "interleaved repetitions (median reported)");
    app.add_option("--processes", processes, "processes at once");
    app.add_option("--operations", operations, "operations per shuttle process");
    app.add_option("--python-operations", python_operations, "operations per Python process");
    CLI11_PARSE(app, argc, argv);

    std::vector<std::string> names;
    for (int key = 0; key < keys; ++key) names.push_back(fmt::format("key{}", key));
    auto dict = shuttle::Dict<std::string, int64_t>::anonymous();
    for (const auto& name : names) dict.set(name, 0);
    auto list = shuttle::List<int64_t>::anonymous();

    auto name_of = [&](int worker, uint64_t step) -> const std::string& {
        return names[(step + static_cast<uint64_t>(worker)) % keys];
    };
    struct Operation {
        const char* name;
        std::function<void(int, uint64_t)> body;
        std::function<bool()> check;
    };
    std::vector<Operation> runs = {
        {"dict get", [&](int w, uint64_t s) { (void)dict.get(name_of(w, s)); },
         [&] { return dict.size() == keys; }},
        {"dict set", [&](int w, uint64_t s) { dict.set(name_of(w, s), static_cast<int64_t>(s)); },
         [&] { return dict.size() == keys; }},
        {"list append", [&](int, uint64_t s) { list.append(static_cast<int64_t>(s)); },
         [&] {
             const bool all = list.size() == operations * static_cast<uint64_t>(processes);
             list.clear();
             return all;
         }},
    };
    const char* python_names[] = {"get", "set", "append"};

    fmt::print("{} processes; {:<12} {:>14} {:>14} {:>9}\n", processes, "operation", "python",
               "shuttle", "ratio");
    for (std::size_t index = 0; index < runs.size(); ++index) {
        std::vector<double> python, shuttle;
        for (int repetition = 0; repetition < repetitions; ++repetition) {
            shuttle.push_back(shuttle_rate(operations, processes, runs[index].body));
            if (!runs[index].check()) {
                fmt::print(stderr, "{}: wrong result\n", runs[index].name);
                return 1;
            }
            python.push_back(python_rate(python_names[index], python_operations, processes));
        }
        const double py = shuttle::bench::median(python);
        const double ours = shuttle::bench::median(shuttle);
        fmt::print("{:<24} {:>10.1f} k/s {:>10.2f} M/s {:>8.0f}x\n", runs[index].name, py / 1e3,
                   ours / 1e6, py > 0 ? ours / py : 0.0);
    }
    return 0;
}
