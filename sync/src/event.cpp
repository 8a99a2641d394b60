// Event: a flag and a count of clear-to-set transitions in one futex word.
#include "shuttle/event.hpp"

#include "wait_for_word.hpp"

namespace shuttle {
namespace detail {
namespace {

constexpr uint64_t event_tag = 0x4556454e0001;  // "EVEN"

SegmentInfo event_segment() {
    return state_segment<EventState>(ObjectKind::event, event_tag);
}

}  // namespace

void event_set(EventState& state) noexcept {
    uint32_t value = state.word.load(std::memory_order_relaxed);
    do {
        if (value & 1u) return;  // already set: its setter woke (or the backstop will)
    } while (!state.word.compare_exchange_weak(value, (value + 2u) | 1u, std::memory_order_seq_cst,
                                               std::memory_order_relaxed));
    if (state.waiters.load(std::memory_order_seq_cst) > 0) wake_all(state.word);
}

status event_wait(EventState& state, steady_clock::time_point deadline,
                  const std::stop_token& stop) {
    const uint32_t start = state.word.load(std::memory_order_acquire);
    // Set now, or set (and perhaps cleared again) since we started: the set count moved.
    return wait_for_word(state.word, state.waiters, deadline, stop, [start](uint32_t value) {
        return (value & 1u) != 0 || (value >> 1) != (start >> 1);
    });
}

}  // namespace detail

Segment Event::make_segment(std::string_view name, const CreateOptions& options) {
    return detail::create_object(name, detail::event_segment(), {}, options);
}
SegmentExpectation Event::expectation() {
    return detail::expectation_for(detail::event_segment());
}

}  // namespace shuttle
