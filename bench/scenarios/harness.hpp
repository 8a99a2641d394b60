// The harness: shared control block, start barrier, workers (processes or threads), timing.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "shuttle/process.hpp"
#include "transport.hpp"

namespace shuttle::bench {

inline constexpr int max_participants = 64;

/// Nanoseconds on steady_clock (CLOCK_MONOTONIC: the same clock in every process).
std::int64_t now_ns();
/// A cheap per-item time stamp (rdtsc on x86-64), converted to now_ns() time by
/// ticks_to_ns_ago(). Calibrated once in the parent, inherited by every child.
std::uint64_t ticks();
void calibrate_ticks();
/// The now_ns() time at which `then` (a ticks() value taken in this process) was taken.
std::int64_t ticks_to_now_ns(std::uint64_t then);

/// Memory shared with every child forked after it was made (an anonymous shared mapping).
template <class T>
class Shared {
  public:
    explicit Shared(std::size_t count = 1) : count_(count) {
        void* address =
            mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (address == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<T*>(address);
        for (std::size_t i = 0; i < count_; ++i) new (data_ + i) T();
    }
    ~Shared() { munmap(data_, bytes()); }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    T* operator->() { return data_; }
    T& operator*() { return *data_; }
    T& operator[](std::size_t i) { return data_[i]; }
    T* get() { return data_; }

  private:
    std::size_t bytes() const { return sizeof(T) * count_; }
    T* data_ = nullptr;
    std::size_t count_;
};

struct alignas(64) WorkerSlot {
    std::uint64_t count = 0;     // items received / tickets sold
    std::uint64_t checksum = 0;  // sum of mix(header)
    std::uint64_t errors = 0;    // wrong size, torn message, unknown producer, out of order
    std::int64_t last_ns = 0;    // when its last item arrived (or its join() returned)
    std::atomic<std::uint64_t> progress{0};  // items so far, where the channel needs it
    char error[200] = {};                    // an exception's message, if the worker failed
};

/// Everything the children of one run share with the parent.
struct Control {
    alignas(64) std::atomic<std::uint32_t> arrived{0};
    alignas(64) std::atomic<std::uint32_t> go{0};
    alignas(64) std::atomic<std::uint32_t> stop{0};  // the time budget ran out: producers stop
    alignas(64) std::atomic<std::uint32_t> producers_done{0};
    alignas(64) std::atomic<std::uint32_t> unfinished{0};  // emulated task accounting
    std::atomic<std::uint32_t> joiners{0};
    alignas(64) std::atomic<std::uint64_t> tickets{0};  // notes-tickets stock (under the lock)
    alignas(64) std::int64_t start_ns = 0;
    WorkerSlot producers[max_participants];
    WorkerSlot consumers[max_participants];
    WorkerSlot stopper;
};

/// Children arrive here, then wait until the parent releases all of them at once.
void arrive_and_wait(Control& control);

/// Runs bodies as daemon processes (or threads) and joins them before a deadline.
class Workers {
  public:
    explicit Workers(bool threads) : threads_(threads) {}
    ~Workers();
    void start(std::function<void()> body, WorkerSlot& slot);
    /// Joins every worker; false if the deadline passed (processes are then killed).
    bool join_until(std::chrono::steady_clock::time_point deadline);
    void kill();
    /// The pid of the i-th worker process started (0 for threads).
    pid_t pid(std::size_t i) const { return i < processes_.size() ? processes_[i].pid() : 0; }
    /// A worker that exited abnormally, or "" if all exited 0.
    std::string failure() const;

  private:
    bool threads_;
    std::vector<Process> processes_;
    std::vector<std::thread> thread_handles_;
    std::vector<WorkerSlot*> slots_;
    std::shared_ptr<std::atomic<int>> threads_finished_ = std::make_shared<std::atomic<int>>(0);
    std::string failure_;
};

/// CPU seconds (user + system) of reaped children, or of this process (in-process peers).
double cpu_seconds(bool self);

/// Writes an exception's message into a worker slot.
void record_error(WorkerSlot& slot, const std::string& message);

}  // namespace shuttle::bench
