#include <fmt/core.h>  // find_package(shuttle) and shuttle.pc bring fmt
#include <shuttle/pipe.hpp>
#include <shuttle/process.hpp>
#include <shuttle/queue.hpp>
#include <shuttle/sync.hpp>
#include <shuttle/version.hpp>

static_assert(SHUTTLE_VERSION_MAJOR >= 0 && SHUTTLE_VERSION_MINOR >= 0 &&
              SHUTTLE_VERSION_PATCH >= 0);

int main() {
    auto queue = shuttle::Queue<int>::anonymous(4);
    auto child = shuttle::spawn([&](int answer) { queue.put(answer).value(); }, 42);
    child.join();
    auto item = queue.get();
    fmt::print("installed shuttle {}.{}.{} works: {}\n", SHUTTLE_VERSION_MAJOR,
               SHUTTLE_VERSION_MINOR, SHUTTLE_VERSION_PATCH, *item);
    return item && *item == 42 ? 0 : 1;
}
