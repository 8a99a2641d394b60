// notes-manager-list: a list shared through Manager(), decremented in a child, printed in the
// parent. Python:
//
//     def decrement(numbers):
//         for i in range(len(numbers)):
//             numbers[i] -= 1
//
//     with Manager() as manager:
//         numbers = manager.list([1, 2, 3, 4, 5])
//         p = Process(target=decrement, args=(numbers,))
//         p.start(); p.join()
//         print(numbers)                       # [0, 1, 2, 3, 4]
//
// shuttle's List needs no manager process: the list lives in shared memory, each call is one
// atomic step under its robust lock.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "shuttle/list.hpp"
#include "shuttle/process.hpp"

int main() {
    auto numbers = shuttle::List<int>::anonymous({1, 2, 3, 4, 5});  // before the fork()

    shuttle::Process child([&] {
        for (std::size_t i = 0; i < numbers.size(); ++i) {
            numbers.update(static_cast<int64_t>(i),
                           [](int x) { return x - 1; });  // numbers[i] -= 1
        }
    });
    child.start();
    child.join();

    fmt::print("{}\n", numbers.snapshot());  // print(numbers)
    return numbers.snapshot() == std::vector<int>{0, 1, 2, 3, 4} ? 0 : 1;
}
