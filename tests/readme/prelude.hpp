// What README.md's ```cpp fragments may assume (tests/readme/snippets.cmake compiles them): every
// public shuttle header, {fmt} (which comes with shuttle), std::chrono_literals, and stand-ins
// for the user's own code the fragments call. A block with its own main() gets none of this.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <shuttle/codec.hpp>
#include <shuttle/error.hpp>
#include <shuttle/pipe.hpp>
#include <shuttle/process.hpp>
#include <shuttle/queue.hpp>
#include <shuttle/sync.hpp>
#include <shuttle/version.hpp>
#include <span>
#include <string>
#include <vector>

using namespace std::chrono_literals;

// The user's code, as the fragments name it.
struct Job {
    int id;
    double payload;
};
template <class... Anything>
void use(Anything&&...) {}
inline void work() {}
inline void run(const Job&) {}
inline void repair_tickets() {}
inline void sell_one() {}
