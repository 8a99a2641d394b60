// notes-tickets on Value: 10 buyer processes share one ticket count, a Value<int> with its own
// lock; "look, then take" is one step under get_lock(), so exactly the stock is sold and
// nobody gets a ticket twice. (The same as sync_tickets.cpp, without hand-made shared memory.)
#include <cstdio>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "shuttle/process.hpp"
#include "shuttle/value.hpp"

int main() {
    const int buyers = 10;
    const int stock = 6;

    auto left = shuttle::Value<int>::anonymous(stock);  // Value('i', 6), before the fork()s
    auto sold = shuttle::Value<int>::anonymous(0);

    std::vector<shuttle::Process> processes;
    for (int buyer = 1; buyer <= buyers; ++buyer) {
        processes.push_back(shuttle::spawn([&, buyer] {
            std::lock_guard guard(left.get_lock());  // with left.get_lock():
            if (left.get_lock().previous_owner_died()) {
                // A buyer died at the counter: each update is one store, nothing to repair.
                left.get_lock().mark_consistent();
            }
            if (left.load() > 0) {
                left.store(left.load() - 1);
                sold.fetch_add(1);  // lock-free: its own atomic counter
                fmt::print("buyer {:2}: got a ticket ({} left)\n", buyer, left.load());
            } else {
                fmt::print("buyer {:2}: sold out\n", buyer);
            }
            std::fflush(stdout);
        }));
    }
    for (auto& process : processes) process.join();

    fmt::print("sold {} of {} tickets to {} buyers\n", sold.load(), stock, buyers);
    return sold.load() == stock && left.load() == 0 ? 0 : 1;
}
