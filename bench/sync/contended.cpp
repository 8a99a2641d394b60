// Contended lock/unlock across 2, 4, 8 processes — shuttle::Lock (robust) against
// Boost.Interprocess interprocess_mutex and pthread process-shared mutexes (robust and plain) —
// and Event wake-up latency across processes against a Boost interprocess_condition "event".
// Peers run interleaved in the same run; each figure is the median of --repeats runs, and the
// ratios compare figures from this run only (the machine drifts up to 2x between runs).
#include <pthread.h>
#include <sys/mman.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench_support.hpp"
#include "shuttle/process.hpp"
#include "shuttle/sync.hpp"

namespace {

using steady = std::chrono::steady_clock;
namespace bip = boost::interprocess;

using shuttle::bench::make_pthread_mutex;
using shuttle::bench::median;
using shuttle::bench::shared_region;

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
        .count();
}

// ---- contended lock/unlock ---------------------------------------------------------------------

struct alignas(64) Arena {
    alignas(64) std::atomic<int> start;
    alignas(64) std::atomic<int> stop;
    alignas(64) uint64_t counter;  // protected by the lock under test, plain increments
    alignas(64) std::atomic<uint64_t> operations[64];
};

struct Contender {
    std::string name;
    std::function<void()> lock;
    std::function<void()> unlock;
};

/// lock; ++counter; unlock in `processes` processes for `seconds`; returns lock/unlock pairs/s.
double contend(const Contender& contender, int processes, double seconds, Arena& arena) {
    arena.start = 0;
    arena.stop = 0;
    arena.counter = 0;
    std::vector<shuttle::Process> children;
    for (int p = 0; p < processes; ++p) {
        children.push_back(shuttle::spawn([&, p] {
            while (arena.start.load(std::memory_order_acquire) == 0) std::this_thread::yield();
            uint64_t done = 0;
            while (arena.stop.load(std::memory_order_relaxed) == 0) {
                contender.lock();
                ++arena.counter;
                contender.unlock();
                ++done;
            }
            arena.operations[p].store(done);
        }));
    }
    auto begin = steady::now();
    arena.start.store(1, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    arena.stop.store(1);
    for (auto& child : children) child.join();
    double elapsed = std::chrono::duration<double>(steady::now() - begin).count();
    uint64_t total = 0;
    for (int p = 0; p < processes; ++p) total += arena.operations[p].load();
    if (total != arena.counter) {
        throw std::runtime_error(fmt::format("{}: counter {} != operations {} (exclusion broken)",
                                             contender.name, arena.counter, total));
    }
    return static_cast<double>(total) / elapsed;
}

// ---- Event wake-up latency ---------------------------------------------------------------------

/// The usual event made of Boost's process-shared mutex + condition + flag.
struct BoostEvent {
    bip::interprocess_mutex mutex;
    bip::interprocess_condition condition;
    bool flag = false;
    void set() {
        bip::scoped_lock<bip::interprocess_mutex> guard(mutex);
        flag = true;
        condition.notify_all();
    }
    void clear() {
        bip::scoped_lock<bip::interprocess_mutex> guard(mutex);
        flag = false;
    }
    void wait() {
        bip::scoped_lock<bip::interprocess_mutex> guard(mutex);
        while (!flag) condition.wait(guard);
    }
};

struct EventOps {
    std::string name;
    std::function<void(int)> set;  // event 0 or 1
    std::function<void(int)> clear;
    std::function<void(int)> wait;
};

struct alignas(64) LatencyArena {
    alignas(64) std::atomic<int> acknowledged;
    alignas(64) std::atomic<int64_t> set_at;
    alignas(64) std::atomic<int> stop;
    int64_t samples[4096];
};

struct Percentiles {
    double p50_us;
    double p99_us;
};

Percentiles percentiles(std::vector<int64_t> samples) {
    std::sort(samples.begin(), samples.end());
    auto at = [&](double q) {
        return samples[std::min(samples.size() - 1, static_cast<size_t>(q * samples.size()))] /
               1000.0;
    };
    return {at(0.50), at(0.99)};
}

/// The waiter is parked (the setter sleeps 2 ms first); latency = set() to the waiter running.
Percentiles parked_wake(const EventOps& event, int iterations, LatencyArena& arena) {
    arena.acknowledged = 0;
    shuttle::Process waiter = shuttle::spawn([&] {
        for (int i = 0; i < iterations; ++i) {
            event.wait(0);
            arena.samples[i] = now_ns() - arena.set_at.load();
            event.clear(0);
            arena.acknowledged.store(i + 1);
        }
    });
    for (int i = 0; i < iterations; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        arena.set_at.store(now_ns());
        event.set(0);
        while (arena.acknowledged.load() != i + 1) std::this_thread::yield();
    }
    waiter.join();
    return percentiles(std::vector<int64_t>(arena.samples, arena.samples + iterations));
}

/// Ping-pong through two events; one sample = one round trip (two wake-ups).
Percentiles ping_pong(const EventOps& event, int iterations, LatencyArena& arena) {
    arena.stop = 0;
    shuttle::Process peer = shuttle::spawn([&] {
        for (;;) {
            event.wait(0);
            event.clear(0);
            if (arena.stop.load()) return;
            event.set(1);
        }
    });
    std::vector<int64_t> samples;
    for (int i = 0; i < iterations; ++i) {
        int64_t begin = now_ns();
        event.set(0);
        event.wait(1);
        event.clear(1);
        samples.push_back(now_ns() - begin);
    }
    arena.stop = 1;
    event.set(0);
    peer.join();
    return percentiles(samples);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle sync: contended locks and Event wake-up latency, with peers"};
    double seconds = 0.3;
    int repeats = 3;
    int iterations = 300;
    std::vector<int> process_counts{2, 4, 8};
    app.add_option("--seconds", seconds, "duration of one contended run");
    app.add_option("--repeats", repeats, "runs per figure (median reported)");
    app.add_option("--processes", process_counts, "process counts to contend with");
    app.add_option("--iterations", iterations, "wake-ups per latency figure")
        ->check(CLI::Range(10, 4096));
    CLI11_PARSE(app, argc, argv);

    // ---- contended lock/unlock ----
    auto* arena = new (shared_region(sizeof(Arena))) Arena{};
    shuttle::Lock shuttle_lock = shuttle::Lock::anonymous();
    auto* boost_mutex =
        new (shared_region(sizeof(bip::interprocess_mutex))) bip::interprocess_mutex;
    pthread_mutex_t* robust = make_pthread_mutex(true);
    pthread_mutex_t* plain = make_pthread_mutex(false);
    std::vector<Contender> contenders{
        {"shuttle::Lock", [&] { shuttle_lock.lock(); }, [&] { shuttle_lock.unlock(); }},
        {"boost interprocess_mutex", [&] { boost_mutex->lock(); }, [&] { boost_mutex->unlock(); }},
        {"pthread robust pshared", [&] { pthread_mutex_lock(robust); },
         [&] { pthread_mutex_unlock(robust); }},
        {"pthread pshared", [&] { pthread_mutex_lock(plain); },
         [&] { pthread_mutex_unlock(plain); }},
    };
    std::map<std::pair<int, std::string>, std::vector<double>> rates;
    for (int repeat = 0; repeat < repeats; ++repeat) {
        for (int processes : process_counts) {
            for (auto& contender : contenders) {  // interleaved: same conditions for all
                rates[{processes, contender.name}].push_back(
                    contend(contender, processes, seconds, *arena));
            }
        }
    }
    fmt::print(
        "Contended lock/unlock (++counter inside), M pairs/s, median of {} x {:.1f} s "
        "({} vCPUs)\n",
        repeats, seconds, std::thread::hardware_concurrency());
    fmt::print(
        "| processes | shuttle::Lock | boost interprocess_mutex | pthread robust | pthread "
        "| shuttle/boost | shuttle/pthread robust |\n|---|---|---|---|---|---|---|\n");
    for (int processes : process_counts) {
        auto rate = [&](const std::string& name) { return median(rates[{processes, name}]); };
        double ours = rate("shuttle::Lock");
        double boost = rate("boost interprocess_mutex");
        double robust_rate = rate("pthread robust pshared");
        fmt::print("| {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} |\n", processes,
                   ours / 1e6, boost / 1e6, robust_rate / 1e6, rate("pthread pshared") / 1e6,
                   ours / boost, ours / robust_rate);
    }

    // ---- Event wake-up latency ----
    auto* latency = new (shared_region(sizeof(LatencyArena))) LatencyArena{};
    shuttle::Event shuttle_events[2] = {shuttle::Event::anonymous(), shuttle::Event::anonymous()};
    auto* boost_events = new (shared_region(2 * sizeof(BoostEvent))) BoostEvent[2];
    std::vector<EventOps> events{
        {"shuttle::Event", [&](int i) { shuttle_events[i].set(); },
         [&](int i) { shuttle_events[i].clear(); }, [&](int i) { shuttle_events[i].wait(); }},
        {"boost mutex+condition", [&](int i) { boost_events[i].set(); },
         [&](int i) { boost_events[i].clear(); }, [&](int i) { boost_events[i].wait(); }},
    };
    std::map<std::string, std::vector<Percentiles>> parked, round_trips;
    for (int repeat = 0; repeat < repeats; ++repeat) {
        for (auto& event : events) {
            parked[event.name].push_back(parked_wake(event, iterations / 3 + 10, *latency));
            round_trips[event.name].push_back(ping_pong(event, iterations * 10, *latency));
        }
    }
    auto med = [](const std::vector<Percentiles>& runs, bool p99) {
        std::vector<double> values;
        for (auto& run : runs) values.push_back(p99 ? run.p99_us : run.p50_us);
        return median(values);
    };
    fmt::print("\nEvent wake-up across processes, µs (median of {} runs)\n", repeats);
    fmt::print(
        "| event | parked waiter woken by set(): p50 | p99 | ping-pong round trip: p50 "
        "| p99 |\n|---|---|---|---|---|\n");
    for (auto& event : events) {
        fmt::print("| {} | {:.1f} | {:.1f} | {:.2f} | {:.2f} |\n", event.name,
                   med(parked[event.name], false), med(parked[event.name], true),
                   med(round_trips[event.name], false), med(round_trips[event.name], true));
    }
    double ratio_parked =
        med(parked["boost mutex+condition"], false) / med(parked["shuttle::Event"], false);
    double ratio_rtt = med(round_trips["boost mutex+condition"], false) /
                       med(round_trips["shuttle::Event"], false);
    fmt::print("boost/shuttle latency ratio (p50): parked wake {:.2f}, round trip {:.2f}\n",
               ratio_parked, ratio_rtt);
    return 0;
}
