// Objects in queues: Queue<std::string> of 64-character strings, 1 producer process and 1
// consumer process, against Python's multiprocessing.Queue carrying the same str items
// (python3, in the same run), and against shuttle's fixed-slot path for the same 64 bytes
// (Queue<std::array<char, 64>>) to show what encoding costs. The consumer checks every item.
// Interleaved repetitions, median of each.
//
//   shuttle_objects_bench [--repetitions N] [--items N] [--python-items N]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "python_peer.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t length = 64;

/// Python's 1x1 queue of 64-character str: prints items per second, or fails.
constexpr const char* python_program = R"(
import multiprocessing as mp, sys, time
def consume(q, n):
    for i in range(n):
        item = q.get()
        assert len(item) == 64 and item[0] == chr(97 + i % 26), item
n = int(sys.argv[1])
items = [chr(97 + i % 26) * 64 for i in range(26)]
q = mp.Queue(1024)
c = mp.Process(target=consume, args=(q, n))
start = time.perf_counter()
c.start()
for i in range(n): q.put(items[i % 26])
c.join()
elapsed = time.perf_counter() - start
assert c.exitcode == 0
print(n / elapsed)
)";

/// Items per second through `queue` from a producer process to a consumer process.
template <class Queue, class Make, class Check>
double shuttle_rate(Queue& queue, uint64_t items, Make make, Check check) {
    const auto start = Clock::now();
    shuttle::Process consumer([&] {
        typename std::remove_cvref_t<decltype(make(0))> item{};
        for (uint64_t index = 0; index < items; ++index) {
            if constexpr (requires { queue.get(item); }) {
                if (!queue.get(item)) return 1;
            } else {
                auto got = queue.get();
                if (!got) return 1;
                item = *got;
            }
            if (!check(item, index)) return 2;
        }
        return 0;
    });
    consumer.start();
    shuttle::Process producer([&] {
        for (uint64_t index = 0; index < items; ++index) {
            if (!queue.put(make(index))) return 1;
        }
        return 0;
    });
    producer.start();
    producer.join();
    consumer.join();
    if (producer.exitcode() != 0 || consumer.exitcode() != 0) {
        fmt::print(stderr, "a run failed (producer {}, consumer {})\n",
                   producer.exitcode().value_or(-1), consumer.exitcode().value_or(-1));
        std::exit(1);
    }
    return static_cast<double>(items) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("Queue<std::string> of 64-byte strings, 1x1 across processes, against Python");
    int repetitions = 3;
    uint64_t items = 4'000'000;
    uint64_t python_items = 200'000;
    app.add_option("--repetitions", repetitions, "interleaved repetitions (median reported)");
    app.add_option("--items", items, "items per shuttle run");
    app.add_option("--python-items", python_items, "items per Python run");
    CLI11_PARSE(app, argc, argv);

    std::vector<std::string> strings;
    std::vector<std::array<char, length>> arrays(26);
    for (int letter = 0; letter < 26; ++letter) {
        strings.emplace_back(length, static_cast<char>('a' + letter));
        arrays[static_cast<std::size_t>(letter)].fill(static_cast<char>('a' + letter));
    }
    auto text = shuttle::Queue<std::string>::anonymous(1024, 128);
    auto fixed = shuttle::Queue<std::array<char, length>>::anonymous(1024);

    std::vector<double> python, encoded, bytewise;
    for (int repetition = 0; repetition < repetitions; ++repetition) {
        encoded.push_back(shuttle_rate(
            text, items, [&](uint64_t index) -> const std::string& { return strings[index % 26]; },
            [](const std::string& item, uint64_t index) {
                return item.size() == length && item[0] == static_cast<char>('a' + index % 26);
            }));
        python.push_back(shuttle::bench::python_rate(python_program, std::to_string(python_items)));
        bytewise.push_back(shuttle_rate(
            fixed, items,
            [&](uint64_t index) -> const std::array<char, length>& { return arrays[index % 26]; },
            [](const std::array<char, length>& item, uint64_t index) {
                return item[0] == static_cast<char>('a' + index % 26);
            }));
    }
    const double py = shuttle::bench::median(python);
    const double ours = shuttle::bench::median(encoded);
    const double slots = shuttle::bench::median(bytewise);
    fmt::print("{:<44} {:>10.2f} M items/s\n", "python mp.Queue of 64-char str", py / 1e6);
    fmt::print("{:<44} {:>10.2f} M items/s  {:>6.0f}x python\n",
               "shuttle Queue<std::string> (64 chars)", ours / 1e6, py > 0 ? ours / py : 0.0);
    fmt::print("{:<44} {:>10.2f} M items/s  (encoding costs {:.0f}%)\n",
               "shuttle Queue<std::array<char, 64>> (memcpy)", slots / 1e6,
               slots > 0 ? 100.0 * (1 - ours / slots) : 0.0);
    return 0;
}
