// pool-callback: the notes' apply_async(func, args, callback=...). The task returns its
// worker's pid; the callback runs in the parent (on the pool's result thread) and prints both.
#include <fmt/core.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <tuple>
#include <vector>

#include "shuttle/pool.hpp"

namespace {

std::tuple<int, pid_t> cube_and_pid(int x) {
    return {x * x * x, getpid()};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pool-callback: apply_async with a callback run in the parent"};
    int tasks = 4;
    app.add_option("-n,--tasks", tasks, "tasks")->check(CLI::Range(1, 1000));
    CLI11_PARSE(app, argc, argv);

    fmt::print("parent pid {}\n", getpid());
    std::fflush(stdout);
    shuttle::Pool pool(2);
    std::vector<shuttle::AsyncResult<std::tuple<int, pid_t>>> results;
    for (int i = 0; i < tasks; ++i) {
        results.push_back(pool.apply_async(
            cube_and_pid, std::tuple{i},
            [](const std::tuple<int, pid_t>& result) {
                // Runs in the parent, one callback at a time.
                fmt::print("callback in pid {}: cube {} computed by worker pid {}\n", getpid(),
                           std::get<0>(result), std::get<1>(result));
                std::fflush(stdout);
            },
            [](const shuttle::Error& error) { fmt::print("task failed: {}\n", error.what()); }));
    }
    for (auto& result : results) result.wait();  // each callback has run before its result is ready
    pool.close();
    pool.join();
    return 0;
}
