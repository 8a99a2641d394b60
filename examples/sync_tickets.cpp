// notes-tickets: 10 buyer processes share one ticket count; a Lock makes "look, then take"
// one step, so exactly the stock is sold and nobody gets a ticket twice.
#include <sys/mman.h>

#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "shuttle/lock.hpp"
#include "shuttle/process.hpp"

int main() {
    const int buyers = 10;
    const int stock = 6;

    // The data the lock protects: a ticket count and a sold count in memory shared with the
    // children (mapped before fork(), like the Lock itself).
    auto* tickets = static_cast<int*>(
        mmap(nullptr, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (tickets == MAP_FAILED) return 1;
    int& left = tickets[0];
    int& sold = tickets[1];
    left = stock;

    shuttle::Lock lock = shuttle::Lock::anonymous();

    std::vector<shuttle::Process> processes;
    for (int buyer = 1; buyer <= buyers; ++buyer) {
        processes.push_back(shuttle::spawn([&, buyer] {
            std::lock_guard guard(lock);  // one key: one buyer at the counter at a time
            if (lock.previous_owner_died()) {
                // A buyer died at the counter: the counts are still right here (each update
                // is one store), so there is nothing to repair.
                lock.mark_consistent();
            }
            if (left > 0) {
                --left;
                ++sold;
                fmt::print("buyer {:2}: got a ticket ({} left)\n", buyer, left);
            } else {
                fmt::print("buyer {:2}: sold out\n", buyer);
            }
            std::fflush(stdout);
        }));
    }
    for (auto& process : processes) process.join();

    fmt::print("sold {} of {} tickets to {} buyers\n", sold, stock, buyers);
    return sold == stock && left == 0 ? 0 : 1;
}
