#include <shuttle/pipe.hpp>
#include <shuttle/process.hpp>
#include <shuttle/queue.hpp>
#include <shuttle/sync.hpp>

#include <cstdio>

int main() {
    auto queue = shuttle::Queue<int>::anonymous(4);
    auto child = shuttle::spawn([&] { queue.put(42).value(); });
    child.join();
    auto item = queue.get();
    std::printf("installed shuttle works: %d\n", *item);
    return item && *item == 42 ? 0 : 1;
}
