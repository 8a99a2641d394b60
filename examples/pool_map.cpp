// pool-map: the notes' first Pool example. Pool(cpu_count() + 1).map(f, range(N)) against
// starting one Process per task, both timed; the results must agree.
#include <fmt/core.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "shuttle/pool.hpp"
#include "shuttle/process.hpp"
#include "shuttle/value.hpp"

namespace {

long work(long x) {
    long sum = 0;
    for (long i = 0; i < 20000; ++i) sum += (x * i) % 7;  // a little CPU per task
    return sum;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pool-map: Pool.map against one Process per task"};
    long tasks = 100;
    app.add_option("-n,--tasks", tasks, "tasks")->check(CLI::Range(1L, 100000L));
    CLI11_PARSE(app, argc, argv);

    std::vector<long> inputs(static_cast<std::size_t>(tasks));
    std::iota(inputs.begin(), inputs.end(), 0L);

    // The notes: Pool(os.cpu_count() + 1); shuttle caps a pool at 24 workers.
    const std::size_t workers = std::min<std::size_t>(std::thread::hardware_concurrency() + 1, 24);
    auto start = std::chrono::steady_clock::now();
    std::vector<long> pooled;
    {
        shuttle::Pool pool(workers);
        pooled = pool.map(work, inputs);
    }
    const double pool_seconds = seconds_since(start);

    // One Process per task, each writing its result into a shared Array.
    auto results = shuttle::Array<long>::anonymous(inputs.size());
    start = std::chrono::steady_clock::now();
    std::vector<shuttle::Process> processes;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        processes.push_back(shuttle::spawn([&, i] { results.store(i, work(inputs[i])); }));
    }
    for (auto& process : processes) process.join();
    const double process_seconds = seconds_since(start);

    const bool same = results.snapshot() == pooled;
    fmt::print("pool of {} workers: map of {} tasks in {:.3f} s\n", workers, tasks, pool_seconds);
    fmt::print("one process per task: {} tasks in {:.3f} s\n", tasks, process_seconds);
    fmt::print("results {}; the pool was {:.1f}x faster\n", same ? "agree" : "DIFFER",
               process_seconds / pool_seconds);
    return same ? 0 : 1;
}
