// notes-bank: one account, deposits and withdrawals from several processes at once, and the
// final balance exact. Python keeps the balance in a Manager().dict() and guards "read, add,
// write back" with a Lock; here Dict::update is that step, atomic (and all-or-nothing even if a
// process is killed inside it). A withdrawal that would overdraw is refused, not applied.
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "shuttle/dict.hpp"
#include "shuttle/process.hpp"

int main() {
    constexpr int64_t opening = 1000;
    constexpr int depositors = 3;
    constexpr int withdrawers = 2;
    constexpr int operations = 1000;  // each process: 1000 deposits of 5, or withdrawals of 4

    auto bank = shuttle::Dict<std::string, int64_t>::anonymous();  // before the fork()s
    bank.set("balance", opening);
    bank.set("refused", 0);

    std::vector<shuttle::Process> clerks;
    for (int clerk = 0; clerk < depositors + withdrawers; ++clerk) {
        const bool deposits = clerk < depositors;
        clerks.push_back(shuttle::spawn([&, deposits] {
            for (int step = 0; step < operations; ++step) {
                if (deposits) {
                    bank.update("balance",
                                [](const std::optional<int64_t>& cents) { return *cents + 5; });
                    continue;
                }
                bool refused = false;
                bank.update("balance", [&](const std::optional<int64_t>& cents) {
                    refused = *cents < 4;
                    return refused ? *cents : *cents - 4;
                });
                if (refused) bank.update("refused", [](auto count) { return *count + 1; });
            }
        }));
    }
    for (auto& clerk : clerks) clerk.join();

    const int64_t refused = *bank.get("refused");
    const int64_t expected = opening + int64_t{depositors} * operations * 5 -
                             (int64_t{withdrawers} * operations - refused) * 4;
    const int64_t balance = *bank.get("balance");
    fmt::print("{} deposits of 5, {} withdrawals of 4 ({} refused)\n", depositors * operations,
               withdrawers * operations, refused);
    fmt::print("balance: {} (expected {})\n", balance, expected);
    return balance == expected ? 0 : 1;
}
