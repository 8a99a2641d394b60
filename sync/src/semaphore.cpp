// Semaphore and BoundedSemaphore: a count in a futex word.
#include "shuttle/semaphore.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "wait_for_word.hpp"

namespace shuttle {
namespace detail {
namespace {

constexpr uint64_t semaphore_tag = 0x53454d410002;  // "SEMA", 2: `bounded` (a bound of 0)
constexpr uint64_t semaphore_bounded_flag = 1;

SegmentInfo semaphore_segment(uint32_t initial = 0, bool bounded = false) {
    SegmentInfo info = state_segment<SemaphoreState>(ObjectKind::semaphore, semaphore_tag);
    info.capacity = initial;
    info.flags = bounded ? semaphore_bounded_flag : 0;
    return info;
}

void check_value(uint32_t initial, bool bounded) {
    if (initial > semaphore_max_value) {
        throw Error(errc::invalid_argument, fmt::format("{} value {} out of range (0 .. {})",
                                                        bounded ? "BoundedSemaphore" : "Semaphore",
                                                        initial, semaphore_max_value));
    }
}

Segment make_semaphore(std::string_view name, uint32_t initial, bool bounded,
                       const CreateOptions& options) {
    return create_object(
        name, semaphore_segment(initial, bounded),
        [=](Segment& segment) {
            auto& state = *reinterpret_cast<SemaphoreState*>(segment.body());
            state.count.store(initial, std::memory_order_relaxed);
            state.bound = bounded ? initial : 0;
            state.bounded = bounded ? 1 : 0;
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
    const bool bounded = state.bounded != 0;
    const uint32_t limit =
        bounded ? std::min(state.bound, semaphore_max_value) : semaphore_max_value;
    if (count == 0) throw Error(errc::invalid_argument, "Semaphore::release(0)");
    uint32_t value = state.count.load(std::memory_order_relaxed);
    do {
        if (count > limit || value > limit - count) {
            throw Error(errc::invalid_argument,
                        bounded ? fmt::format("BoundedSemaphore released too many times (value {} "
                                              "+ {} would exceed its bound {})",
                                              value, count, limit)
                                : fmt::format("Semaphore value {} + {} would exceed {}", value,
                                              count, limit));
        }
    } while (!state.count.compare_exchange_weak(value, value + count, std::memory_order_seq_cst,
                                                std::memory_order_relaxed));
    if (state.waiters.load(std::memory_order_seq_cst) > 0) {
        wake(state.count, static_cast<int>(count));
    }
}

}  // namespace detail

void Semaphore::check_parameters(uint32_t initial) {
    detail::check_value(initial, false);
}
Segment Semaphore::make_segment(std::string_view name, uint32_t initial,
                                const CreateOptions& options) {
    return detail::make_semaphore(name, initial, false, options);
}
SegmentExpectation Semaphore::expectation() {
    return detail::expectation_for(detail::semaphore_segment());
}

void BoundedSemaphore::check_parameters(uint32_t initial) {
    detail::check_value(initial, true);
}
Segment BoundedSemaphore::make_segment(std::string_view name, uint32_t initial,
                                       const CreateOptions& options) {
    return detail::make_semaphore(name, initial, true, options);
}
void BoundedSemaphore::check_opened(const Segment& segment) {
    if ((segment.info().flags & detail::semaphore_bounded_flag) == 0) {
        throw Error(errc::kind_mismatch,
                    fmt::format("'{}' is a Semaphore, not a BoundedSemaphore", segment.name()));
    }
}

}  // namespace shuttle
