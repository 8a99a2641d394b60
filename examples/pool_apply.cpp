// pool-apply: the notes' apply against apply_async. apply() waits for each task in turn;
// apply_async() submits them all, then collects the AsyncResults with get().
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "shuttle/pool.hpp"

namespace {

int slow_square(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // stands for real work
    return x * x;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pool-apply: apply (one at a time) against apply_async (all at once)"};
    int tasks = 8;
    std::size_t workers = 4;
    app.add_option("-n,--tasks", tasks, "tasks")->check(CLI::Range(1, 1000));
    app.add_option("-w,--workers", workers, "pool size")->check(CLI::Range(1, 24));
    CLI11_PARSE(app, argc, argv);

    shuttle::Pool pool(workers);

    auto start = std::chrono::steady_clock::now();
    int sum = 0;
    for (int i = 0; i < tasks; ++i) sum += pool.apply(slow_square, i);  // blocks each time
    const double apply_seconds = seconds_since(start);
    fmt::print("apply:       {} tasks, sum {}, {:.3f} s\n", tasks, sum, apply_seconds);

    start = std::chrono::steady_clock::now();
    std::vector<shuttle::AsyncResult<int>> results;
    for (int i = 0; i < tasks; ++i) results.push_back(pool.apply_async(slow_square, i));
    int async_sum = 0;
    for (auto& result : results) async_sum += result.get();
    const double async_seconds = seconds_since(start);
    fmt::print("apply_async: {} tasks, sum {}, {:.3f} s\n", tasks, async_sum, async_seconds);

    pool.close();
    pool.join();
    return sum == async_sum ? 0 : 1;
}
