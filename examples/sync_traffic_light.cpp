// The notes' traffic light with an Event: set = green, clear = red. Car processes arrive at
// the light; on red they wait, on green they go. The light process switches every 100 ms until
// every car has passed.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "shuttle/event.hpp"
#include "shuttle/process.hpp"

using namespace std::chrono_literals;

int main() {
    const int cars = 5;

    auto* passed = static_cast<std::atomic<int>*>(mmap(nullptr, sizeof(std::atomic<int>),
                                                       PROT_READ | PROT_WRITE,
                                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (passed == MAP_FAILED) return 1;

    shuttle::Event green = shuttle::Event::anonymous();  // starts clear: red

    shuttle::Process light = shuttle::spawn([&] {
        while (passed->load() < cars) {
            fmt::print("light: RED\n");
            std::fflush(stdout);
            std::this_thread::sleep_for(100ms);
            fmt::print("light: GREEN\n");
            std::fflush(stdout);
            green.set();  // wakes every waiting car, in every process
            std::this_thread::sleep_for(100ms);
            green.clear();
        }
    });

    std::vector<shuttle::Process> traffic;
    for (int car = 1; car <= cars; ++car) {
        traffic.push_back(shuttle::spawn([&, car] {
            std::this_thread::sleep_for(car * 45ms);  // cars arrive one after another
            if (!green.is_set()) {
                fmt::print("car {}: waits at red\n", car);
                std::fflush(stdout);
                green.wait();
            }
            fmt::print("car {}: goes on green\n", car);
            std::fflush(stdout);
            ++*passed;
        }));
    }
    for (auto& car : traffic) car.join();
    light.join();
    fmt::print("{} cars passed\n", passed->load());
    return passed->load() == cars ? 0 : 1;
}
