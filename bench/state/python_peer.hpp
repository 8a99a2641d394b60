// Runs a Python peer program through python3 in the same run and reads the rate it prints, and
// the median of repetitions: what the state benchmarks share.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace shuttle::bench {

/// Runs `program` (Python source) with `arguments`; returns the number it prints, or 0 if it
/// failed (a wrong total asserts in the program).
inline double python_rate(const char* program, const std::string& arguments) {
    const std::string command =
        fmt::format("python3 -c \"$(cat <<'PY'\n{}PY\n)\" {}", program, arguments);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return 0;
    double rate = 0;
    if (std::fscanf(pipe, "%lf", &rate) != 1) rate = 0;
    return ::pclose(pipe) == 0 ? rate : 0;
}

inline double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values.empty() ? 0 : values[values.size() / 2];
}

}  // namespace shuttle::bench
