// Uncontended costs, one process, every object in shared memory: shuttle's robust Lock against
// Boost.Interprocess interprocess_mutex and pthread process-shared mutexes (robust and not).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/mman.h>

#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <new>

#include "shuttle/sync.hpp"

namespace {

void* shared_region(std::size_t size) {
    void* region = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) std::abort();
    return region;
}

pthread_mutex_t* pthread_mutex(bool robust) {
    auto* mutex = static_cast<pthread_mutex_t*>(shared_region(sizeof(pthread_mutex_t)));
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (robust) pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return mutex;
}

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
    pthread_mutex_t* mutex = pthread_mutex(true);
    for (auto _ : state) {
        pthread_mutex_lock(mutex);
        pthread_mutex_unlock(mutex);
    }
}
BENCHMARK(PthreadRobustSharedMutex);

void PthreadSharedMutex(benchmark::State& state) {
    pthread_mutex_t* mutex = pthread_mutex(false);
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
