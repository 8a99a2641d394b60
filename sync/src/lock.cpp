// Lock and RLock: a robust, process-shared pthread mutex in shared memory.
//
// The one file of core/ and sync/ that calls the C library's threads API rather than
// detail/os.hpp: a robust lock has to be glibc's mutex, because the kernel's robust-futex list
// (how the kernel releases a dead holder's lock) is per thread and glibc already owns it (a
// second list cannot be registered). For the same reason the owner's thread id is read from the
// mutex's own futex word, the word that list protocol defines. docs/sync.md has the rest.
#include "shuttle/lock.hpp"

#include <linux/futex.h>
#include <pthread.h>

#include <cerrno>
#include <ctime>
#include <thread>

#include <fmt/format.h>

namespace shuttle {
namespace detail {
namespace {

constexpr uint64_t lock_tag = 0x4c4f434b0001;  // "LOCK"

SegmentInfo lock_segment(bool recursive) {
    return state_segment<LockState>(recursive ? ObjectKind::rlock : ObjectKind::lock, lock_tag);
}

Segment make_lock(std::string_view name, bool recursive, const CreateOptions& options) {
    return create_object(
        name, lock_segment(recursive),
        [recursive](Segment& segment) {
            lock_init(*reinterpret_cast<LockState*>(segment.body()), recursive);
        },
        options);
}

/// The owner's thread id from the robust futex word (glibc's __lock, the word the kernel's
/// robust-list protocol reads: owner TID | FUTEX_WAITERS | FUTEX_OWNER_DIED).
int32_t owner_thread(const LockState& state) noexcept {
    const int word = __atomic_load_n(&state.mutex.__data.__lock, __ATOMIC_RELAXED);
    return static_cast<int32_t>(static_cast<uint32_t>(word) & FUTEX_TID_MASK);
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

/// Interprets a pthread lock call's result: true if the calling thread now holds the mutex.
bool acquired(LockState& state, int rc, const char* what) {
    switch (rc) {
        case 0: return true;
        case EOWNERDEAD:
            // Recover at once: the mutex never becomes ENOTRECOVERABLE. If we die before this
            // line, the kernel marks the owner dead again and the next acquirer recovers.
            check(pthread_mutex_consistent(&state.mutex), "pthread_mutex_consistent");
            state.owner_died.store(1, std::memory_order_relaxed);
            return true;
        case EBUSY:
        case ETIMEDOUT: return false;
        case EDEADLK:
            throw Error(errc::invalid_argument,
                        fmt::format("{}: already held by this thread (it would deadlock; use an "
                                    "RLock to re-enter)",
                                    what));
        default: throw_system_error(rc, fmt::format("{}: pthread mutex", what));
    }
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
    state.recursive = recursive ? 1 : 0;
}

[[noreturn]] void refuse_timeout_without_blocking(const char* what) {
    throw Error(errc::invalid_argument,
                fmt::format("{}: acquire(blocking=false) takes no timeout", what));
}

bool lock_acquire(LockState& state, steady_clock::time_point deadline, const char* what) {
    if (deadline != no_deadline && !state.recursive && lock_held_by_caller(state)) {
        // Python: a timed acquire of a Lock its caller holds times out; it never succeeds.
        std::this_thread::sleep_until(deadline);
        return false;
    }
    if (deadline == no_deadline) return acquired(state, pthread_mutex_lock(&state.mutex), what);
    // A past deadline tries once (an ERRORCHECK mutex held by this thread reports EDEADLK).
    if (deadline <= steady_clock::now()) {
        return acquired(state, pthread_mutex_trylock(&state.mutex), what);
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
    return owner_thread(state) == current_thread_id();
}

uint32_t lock_depth(const LockState& state) noexcept {
    if (!lock_held_by_caller(state)) return 0;
    return state.recursive ? __atomic_load_n(&state.mutex.__data.__count, __ATOMIC_RELAXED) : 1;
}

void require_holder(const LockState& state, const char* what) {
    if (!lock_held_by_caller(state)) {
        throw Error(errc::not_owner,
                    fmt::format("{}: the calling thread does not hold the lock", what));
    }
}

void lock_release(LockState& state, const char* what) {
    // ERRORCHECK and RECURSIVE mutexes refuse (EPERM) an unlock by a non-owner, changing nothing.
    int rc = pthread_mutex_unlock(&state.mutex);
    if (rc == EPERM) {
        throw Error(errc::not_owner,
                    fmt::format("{}: the calling thread does not hold the lock", what));
    }
    check(rc, "pthread_mutex_unlock");
}

uint32_t lock_release_all(LockState& state, const char* what) {
    const uint32_t depth = lock_depth(state);
    for (uint32_t level = 0; level < depth; ++level) lock_release(state, what);
    return depth;
}

void lock_restore(LockState& state, uint32_t depth, const char* what) {
    for (uint32_t level = 0; level < depth; ++level) lock_acquire(state, no_deadline, what);
}

}  // namespace detail

Segment Lock::make_segment(std::string_view name, const CreateOptions& options) {
    return detail::make_lock(name, false, options);
}
SegmentExpectation Lock::expectation() {
    return detail::expectation_for(detail::lock_segment(false));
}

Segment RLock::make_segment(std::string_view name, const CreateOptions& options) {
    return detail::make_lock(name, true, options);
}
SegmentExpectation RLock::expectation() {
    return detail::expectation_for(detail::lock_segment(true));
}

}  // namespace shuttle
