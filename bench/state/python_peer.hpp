// Runs a Python peer program through python3 in the same run and reads the rate it prints, and
// with bench_support.hpp (the median of repetitions, ...): what the state benchmarks share.
#pragma once

#include <fmt/format.h>

#include <string>

#include "bench_support.hpp"  // median, read_figure

namespace shuttle::bench {

/// Runs `program` (Python source) with `arguments`; returns the number it prints, or 0 if it
/// failed (a wrong total asserts in the program).
inline double python_rate(const char* program, const std::string& arguments) {
    return read_figure(fmt::format("python3 -c \"$(cat <<'PY'\n{}PY\n)\" {}", program, arguments));
}

}  // namespace shuttle::bench
