// notes-1x1: one producer puts N items into Queue(10), then one sentinel; one consumer stops on
// it. The Python original:
//     q = Queue(10); Process(target=producer, args=(q,)).start(); ...; q.put(None)
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

int main(int argc, char** argv) {
    CLI::App app{"notes-1x1: one producer, one consumer, a sentinel to stop"};
    int64_t items = 10;
    app.add_option("-n,--items", items, "items to produce")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    constexpr int64_t sentinel = -1;  // Python's None
    auto queue = shuttle::Queue<int64_t>::anonymous(10);  // made before fork(): inherited

    shuttle::Process consumer([&] {
        int64_t received = 0, sum = 0;
        for (;;) {
            int64_t item = *queue.get();  // blocks while empty
            if (item == sentinel) break;
            ++received;
            sum += item;
            if (items <= 20) fmt::print("consumer got {}\n", item);
        }
        fmt::print("consumer: {} items, sum {}\n", received, sum);
        return received == items ? 0 : 1;
    });
    consumer.start();

    shuttle::Process producer([&] {
        for (int64_t i = 0; i < items; ++i) queue.put(i).value();  // blocks while full
        queue.put(sentinel).value();
    });
    producer.start();

    producer.join();
    consumer.join();
    return consumer.exitcode() == 0 && producer.exitcode() == 0 ? 0 : 1;
}
