// Uncontended costs, one process, every object in shared memory: shuttle's robust Lock against
// Boost.Interprocess interprocess_mutex and pthread process-shared mutexes (robust and not).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/mman.h>

#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <new>

#include "bench_support.hpp"
#include "shuttle/sync.hpp"

namespace {

using shuttle::bench::make_pthread_mutex;
using shuttle::bench::shared_region;

void ShuttleLock(benchmark::State& state) {
    shuttle::Lock lock = shuttle::Lock::anonymous();
    for (auto _ : state) {
        lock.lock();
        lock.unlock();
    }
}
BENCHMARK(ShuttleLock);

void ShuttleRLock(benchmark::State& state) {
    shuttle::RLock lock = shuttle::RLock::anonymous();
    for (auto _ : state) {
        lock.lock();
        lock.unlock();
    }
}
BENCHMARK(ShuttleRLock);

void BoostInterprocessMutex(benchmark::State& state) {
    auto* mutex = new (shared_region(sizeof(boost::interprocess::interprocess_mutex)))
        boost::interprocess::interprocess_mutex;
    for (auto _ : state) {
        mutex->lock();
        mutex->unlock();
    }
}
BENCHMARK(BoostInterprocessMutex);

void PthreadRobustSharedMutex(benchmark::State& state) {
    pthread_mutex_t* mutex = make_pthread_mutex(true);
    for (auto _ : state) {
        pthread_mutex_lock(mutex);
        pthread_mutex_unlock(mutex);
    }
}
BENCHMARK(PthreadRobustSharedMutex);

void PthreadSharedMutex(benchmark::State& state) {
    pthread_mutex_t* mutex = make_pthread_mutex(false);
    for (auto _ : state) {
        pthread_mutex_lock(mutex);
        pthread_mutex_unlock(mutex);
    }
}
BENCHMARK(PthreadSharedMutex);

void ShuttleSemaphoreAcquireRelease(benchmark::State& state) {
    shuttle::Semaphore semaphore = shuttle::Semaphore::anonymous(1);
    for (auto _ : state) {
        semaphore.acquire();
        semaphore.release();
    }
}
BENCHMARK(ShuttleSemaphoreAcquireRelease);

void ShuttleEventSetClear(benchmark::State& state) {
    shuttle::Event event = shuttle::Event::anonymous();
    for (auto _ : state) {
        event.set();
        event.clear();
    }
}
BENCHMARK(ShuttleEventSetClear);

}  // namespace

BENCHMARK_MAIN();
