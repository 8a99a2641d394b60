// A Semaphore with 3 keys: 8 worker processes each want to enter a room 3 times, but at most
// 3 are ever inside at once. A shared counter of who is inside shows it never exceeds 3.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "shuttle/process.hpp"
#include "shuttle/semaphore.hpp"

int main() {
    const uint32_t keys = 3;
    const int workers = 8;
    const int visits = 3;

    // Shared counters (mapped before fork()): inside the room now, and the most ever inside.
    auto* counters = static_cast<std::atomic<int>*>(mmap(nullptr, 2 * sizeof(std::atomic<int>),
                                                         PROT_READ | PROT_WRITE,
                                                         MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (counters == MAP_FAILED) return 1;
    std::atomic<int>& inside = counters[0];
    std::atomic<int>& most = counters[1];

    shuttle::Semaphore room = shuttle::Semaphore::anonymous(keys);

    std::vector<shuttle::Process> processes;
    for (int worker = 1; worker <= workers; ++worker) {
        processes.push_back(shuttle::spawn([&, worker] {
            for (int visit = 0; visit < visits; ++visit) {
                room.acquire();  // take a key (blocks while all 3 are taken)
                int now = ++inside;
                int seen = most.load();
                while (now > seen && !most.compare_exchange_weak(seen, now)) {
                }
                fmt::print("worker {}: in  ({} inside)\n", worker, now);
                std::fflush(stdout);
                std::this_thread::sleep_for(std::chrono::milliseconds(10));  // work inside
                --inside;
                room.release();  // give the key back
            }
        }));
    }
    for (auto& process : processes) process.join();

    fmt::print("most inside at once: {} (keys: {})\n", most.load(), keys);
    return most.load() <= static_cast<int>(keys) ? 0 : 1;
}
