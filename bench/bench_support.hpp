// What the benchmark programs share (one copy instead of one per program): timing, the median
// of repeated runs, a figure read from a child run, process-shared memory for the lock peers.
// (queue_throughput.hpp: the queue throughput the queue benchmarks measure.)
#pragma once

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace shuttle::bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The median of repeated runs (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/// The first number `command` prints (a child run of a variant in a fresh process); 0 if it
/// prints none, cannot be started or fails (exits non-zero).
inline double read_figure(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return 0;
    double figure = 0;
    if (std::fscanf(pipe, "%lf", &figure) != 1) figure = 0;
    return ::pclose(pipe) == 0 ? figure : 0;
}

/// `size` bytes of anonymous memory shared with children fork()ed after it (never unmapped).
inline void* shared_region(std::size_t size) {
    void* region = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::runtime_error("mmap");
    return region;
}

/// A process-shared pthread mutex (robust or not) in a shared region: the lock peers.
inline pthread_mutex_t* make_pthread_mutex(bool robust) {
    auto* mutex = static_cast<pthread_mutex_t*>(shared_region(sizeof(pthread_mutex_t)));
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (robust) pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return mutex;
}

}  // namespace shuttle::bench
