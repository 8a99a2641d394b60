// Semaphore and BoundedSemaphore: a count in a futex word.
#include "shuttle/semaphore.hpp"

#include <fmt/format.h>

#include "wait_for_word.hpp"

namespace shuttle {
namespace detail {
namespace {

// Type tag: a second check, beside the kind and the state's size, that a segment holds what
// the caller expects (bumped if the state's meaning changes without its size changing).
constexpr uint64_t semaphore_tag = 0x53454d410001;  // "SEMA"
constexpr uint64_t semaphore_bounded_flag = 1;

ObjectSpec semaphore_spec(uint32_t initial = 0, bool bounded = false) {
    return {ObjectKind::semaphore,
            sizeof(SemaphoreState),
            alignof(SemaphoreState),
            semaphore_tag,
            0,
            initial,
            bounded ? semaphore_bounded_flag : 0};
}

Segment make_semaphore(std::string_view name, uint32_t initial, bool bounded,
                       const CreateOptions& options) {
    if (initial > semaphore_max_value || (bounded && initial == 0)) {
        throw Error(errc::invalid_argument,
                    fmt::format("semaphore value {} out of range ({} .. {})", initial,
                                bounded ? 1 : 0, semaphore_max_value));
    }
    return create_object(
        name, semaphore_spec(initial, bounded),
        [=](Segment& segment) {
            auto& state = *reinterpret_cast<SemaphoreState*>(segment.body());
            state.count.store(initial, std::memory_order_relaxed);
            state.bound = bounded ? initial : 0;
        },
        options);
}

bool try_take(std::atomic<uint32_t>& count) noexcept {
    uint32_t value = count.load(std::memory_order_relaxed);
    while (value > 0) {
        if (count.compare_exchange_weak(value, value - 1, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
            return true;
        }
    }
    return false;
}

}  // namespace

status semaphore_acquire(SemaphoreState& state, steady_clock::time_point deadline,
                         const std::stop_token& stop) {
    // `ready` takes the unit itself: only a successful take ends the wait.
    return wait_for_word(state.count, state.waiters, deadline, stop,
                         [&](uint32_t) { return try_take(state.count); });
}

bool semaphore_try_acquire(SemaphoreState& state) noexcept {
    return try_take(state.count);
}

void semaphore_release(SemaphoreState& state, uint32_t count) {
    const uint32_t limit = state.bound != 0 ? state.bound : semaphore_max_value;
    if (count == 0) throw Error(errc::invalid_argument, "Semaphore::release(0)");
    uint32_t value = state.count.load(std::memory_order_relaxed);
    do {
        if (count > limit || value > limit - count) {
            throw Error(
                errc::invalid_argument,
                state.bound != 0
                    ? fmt::format("BoundedSemaphore released too many times (value {} "
                                  "+ {} would exceed its bound {})",
                                  value, count, limit)
                    : fmt::format("Semaphore value {} + {} would exceed {}", value, count, limit));
        }
    } while (!state.count.compare_exchange_weak(value, value + count, std::memory_order_seq_cst,
                                                std::memory_order_relaxed));
    if (state.waiters.load(std::memory_order_seq_cst) > 0) {
        wake(state.count, static_cast<int>(count));
    }
}

}  // namespace detail

using detail::named;

Semaphore Semaphore::create(std::string_view name, uint32_t initial, const CreateOptions& options) {
    return Semaphore(detail::make_semaphore(named(name), initial, false, options));
}
Semaphore Semaphore::open(std::string_view name) {
    return Semaphore(detail::open_object(name, detail::semaphore_spec()));
}
Semaphore Semaphore::open_or_create(std::string_view name, uint32_t initial,
                                    const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, initial, options); },
                                         [&] { return open(name); });
}
Semaphore Semaphore::anonymous(uint32_t initial) {
    return Semaphore(detail::make_semaphore({}, initial, false, {}));
}

BoundedSemaphore BoundedSemaphore::create(std::string_view name, uint32_t initial,
                                          const CreateOptions& options) {
    return BoundedSemaphore(detail::make_semaphore(named(name), initial, true, options));
}
BoundedSemaphore BoundedSemaphore::open(std::string_view name) {
    Segment segment = detail::open_object(name, detail::semaphore_spec());
    if ((segment.info().flags & detail::semaphore_bounded_flag) == 0) {
        throw Error(errc::kind_mismatch,
                    fmt::format("'{}' is a Semaphore, not a BoundedSemaphore", name));
    }
    return BoundedSemaphore(std::move(segment));
}
BoundedSemaphore BoundedSemaphore::open_or_create(std::string_view name, uint32_t initial,
                                                  const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, initial, options); },
                                         [&] { return open(name); });
}
BoundedSemaphore BoundedSemaphore::anonymous(uint32_t initial) {
    return BoundedSemaphore(detail::make_semaphore({}, initial, true, {}));
}

}  // namespace shuttle
