// notes-joinable: JoinableQueue(10). The producer puts N items and join()s; a daemon consumer
// calls task_done() for each. The program ends when the producer's join() returns (the daemon
// consumer, still blocked in get(), dies with its parent).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/core.h>

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

int main(int argc, char** argv) {
    CLI::App app{"notes-joinable: producer join()s, daemon consumer task_done()s"};
    int64_t items = 10;
    app.add_option("-n,--items", items, "items to produce")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    auto queue = shuttle::JoinableQueue<int64_t>::anonymous(10);

    shuttle::Process consumer(
        [&] {
            for (;;) {
                int64_t item = *queue.get();
                if (items <= 20) {
                    fmt::print("consumer processed {}\n", item);
                    std::fflush(stdout);  // a daemon is killed at the end: flush as we go
                }
                queue.task_done().value();
            }
        },
        shuttle::ProcessOptions{.daemon = true});
    consumer.start();

    shuttle::Process producer([&] {
        for (int64_t i = 0; i < items; ++i) queue.put(i).value();
        queue.join().value();  // returns once every item was task_done()
        fmt::print("producer: all {} items processed\n", items);
    });
    producer.start();
    producer.join();
    return producer.exitcode() == 0 ? 0 : 1;  // the daemon consumer is killed on exit
}
