// notes-mixed-queue: Python's queue carries any object; the notes put an int, a string and a
// list in one queue and a child prints what it gets:
//
//     def consumer(q):
//         for _ in range(3):
//             print(q.get())
//
//     q = Queue()
//     p = Process(target=consumer, args=(q,)); p.start()
//     q.put(1); q.put('abc'); q.put([4, 5, 6])
//     p.join()
//
// In shuttle the queue's item type says what may travel: a std::variant of the three. Items
// that are not trivially copyable travel as encodings (shuttle/codec.hpp) of at most the size
// given at creation (256 bytes here); a larger one is refused with errc::too_large.
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

using Item = std::variant<int, std::string, std::vector<int>>;

int main() {
    auto queue = shuttle::Queue<Item>::anonymous(16, 256);  // Queue(), before the fork()

    shuttle::Process consumer([&] {
        for (int received = 0; received < 3; ++received) {
            shuttle::result<Item> item = queue.get();
            if (!item) return 1;
            std::visit([](const auto& value) { fmt::print("{}\n", value); }, *item);
            std::fflush(stdout);
        }
        return 0;
    });
    consumer.start();

    queue.put(1).value();  // .value(): throws if the put failed (too_large, closed)
    queue.put(std::string("abc")).value();
    queue.put(std::vector<int>{4, 5, 6}).value();
    consumer.join();
    return consumer.exitcode() == 0 ? 0 : 1;
}
