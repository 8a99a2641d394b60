// Lock and RLock: a robust, process-shared pthread mutex in shared memory. The one file of sync/
// that talks to pthreads' mutexes (and gettid) directly.
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <fmt/format.h>

#include "shuttle/detail/sync_state.hpp"

namespace shuttle::detail {
namespace {

/// The calling thread's kernel id, cached per thread and refreshed after fork().
int32_t current_thread() noexcept {
    thread_local int32_t cached = 0;
    thread_local uint64_t generation = 0;
    const uint64_t now = fork_generation();
    if (cached == 0 || generation != now) {
        cached = static_cast<int32_t>(::syscall(SYS_gettid));
        generation = now;
    }
    return cached;
}

timespec monotonic_timespec(steady_clock::time_point deadline) {
    static_assert(std::chrono::steady_clock::is_steady);  // libstdc++: CLOCK_MONOTONIC
    auto since_epoch = deadline.time_since_epoch();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds);
    return timespec{static_cast<time_t>(seconds.count()), static_cast<long>(nanos.count())};
}

void check(int rc, const char* call) {
    if (rc != 0) throw_system_error(rc, call);
}

/// Book-keeping once pthread said the calling thread holds the mutex.
bool acquired(LockState& state, int rc, const char* what) {
    const int32_t self = current_thread();
    switch (rc) {
        case 0:
            if (state.recursive && state.depth.load(std::memory_order_relaxed) > 0 &&
                state.owner_thread.load(std::memory_order_relaxed) == self) {
                state.depth.fetch_add(1, std::memory_order_relaxed);  // re-entry
                return true;
            }
            break;
        case EOWNERDEAD:
            // Recover at once: the mutex never becomes ENOTRECOVERABLE. If we die before this
            // line, the kernel marks the owner dead again and the next acquirer recovers.
            check(pthread_mutex_consistent(&state.mutex), "pthread_mutex_consistent");
            state.owner_died.store(1, std::memory_order_relaxed);
            break;
        case EBUSY:
        case ETIMEDOUT:
            return false;
        case EDEADLK:
            throw Error(errc::invalid_argument,
                        fmt::format("{}: already held by this thread (it would deadlock; use an "
                                    "RLock to re-enter)",
                                    what));
        default:
            throw_system_error(rc, fmt::format("{}: pthread mutex", what));
    }
    state.owner_thread.store(self, std::memory_order_relaxed);
    state.depth.store(1, std::memory_order_relaxed);
    return true;
}

}  // namespace

void lock_init(LockState& state, bool recursive) {
    pthread_mutexattr_t attributes;
    check(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init");
    check(pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED),
          "pthread_mutexattr_setpshared");
    check(pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST),
          "pthread_mutexattr_setrobust");
    check(pthread_mutexattr_settype(&attributes,
                                    recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK),
          "pthread_mutexattr_settype");
    int rc = pthread_mutex_init(&state.mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    check(rc, "pthread_mutex_init");
    state.owner_died.store(0, std::memory_order_relaxed);
    state.owner_thread.store(0, std::memory_order_relaxed);
    state.depth.store(0, std::memory_order_relaxed);
    state.recursive = recursive ? 1 : 0;
}

bool lock_acquire(LockState& state, steady_clock::time_point deadline, const char* what) {
    if (deadline == no_deadline) return acquired(state, pthread_mutex_lock(&state.mutex), what);
    if (deadline <= steady_clock::now()) {
        int rc = pthread_mutex_trylock(&state.mutex);
        if (rc == EBUSY && !state.recursive &&
            state.owner_thread.load(std::memory_order_relaxed) == current_thread()) {
            rc = EDEADLK;  // a timed lock of a lock we hold: misuse, as for the blocking form
        }
        return acquired(state, rc, what);
    }
    // pthread_mutex_clocklock never returns EINTR and takes a CLOCK_MONOTONIC deadline.
    timespec absolute = monotonic_timespec(deadline);
    return acquired(state, pthread_mutex_clocklock(&state.mutex, CLOCK_MONOTONIC, &absolute), what);
}

bool lock_try_acquire(LockState& state) {
    int rc = pthread_mutex_trylock(&state.mutex);
    if (rc == EDEADLK) return false;  // held by the calling thread (non-recursive)
    return acquired(state, rc, "try_lock");
}

bool lock_held_by_caller(const LockState& state) noexcept {
    return state.depth.load(std::memory_order_relaxed) > 0 &&
           state.owner_thread.load(std::memory_order_relaxed) == current_thread();
}

void require_holder(const LockState& state, const char* what) {
    if (!lock_held_by_caller(state)) {
        throw Error(errc::not_owner,
                    fmt::format("{}: the calling thread does not hold the lock", what));
    }
}

void lock_release(LockState& state, const char* what) {
    require_holder(state, what);
    const uint32_t depth = state.depth.load(std::memory_order_relaxed);
    if (depth > 1) {
        state.depth.store(depth - 1, std::memory_order_relaxed);
    } else {
        state.owner_thread.store(0, std::memory_order_relaxed);
        state.depth.store(0, std::memory_order_relaxed);
    }
    int rc = pthread_mutex_unlock(&state.mutex);
    if (rc == EPERM) {
        throw Error(errc::not_owner,
                    fmt::format("{}: the calling thread does not hold the lock", what));
    }
    check(rc, "pthread_mutex_unlock");
}

}  // namespace shuttle::detail
