// pool-imap-progress: imap lets the caller show progress — results arrive lazily, in order,
// as the workers finish them; a progress line is redrawn after each.
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>
#include <vector>

#include "shuttle/pool.hpp"

namespace {

int slow_double(int x) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // stands for real work
    return 2 * x;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pool-imap-progress: a progress line over imap"};
    int tasks = 50;
    app.add_option("-n,--tasks", tasks, "tasks")->check(CLI::Range(1, 100000));
    CLI11_PARSE(app, argc, argv);

    std::vector<int> inputs(static_cast<std::size_t>(tasks));
    std::iota(inputs.begin(), inputs.end(), 0);
    shuttle::Pool pool(4);
    auto results = pool.imap(slow_double, inputs);
    long total = 0;
    for (int value : results) {
        total += value;
        fmt::print("\rprogress: {}/{} ({:3}%)", results.taken(), results.size(),
                   100 * results.taken() / results.size());
        std::fflush(stdout);
    }
    fmt::print("\ndone: sum {}\n", total);
    return total == static_cast<long>(tasks) * (tasks - 1) ? 0 : 1;
}
