// Event: a flag and a count of clear-to-set transitions in one futex word.
#include "shuttle/event.hpp"

#include "wait_for_word.hpp"

namespace shuttle {
namespace detail {
namespace {

// Type tag: a second check, beside the kind and the state's size, that a segment holds what
// the caller expects (bumped if the state's meaning changes without its size changing).
constexpr uint64_t event_tag = 0x4556454e0001;  // "EVEN"

ObjectSpec event_spec() {
    return {ObjectKind::event, sizeof(EventState), alignof(EventState), event_tag};
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

using detail::named;

Event Event::create(std::string_view name, const CreateOptions& options) {
    return Event(detail::create_object(named(name), detail::event_spec(), {}, options));
}
Event Event::open(std::string_view name) {
    return Event(detail::open_object(name, detail::event_spec()));
}
Event Event::open_or_create(std::string_view name, const CreateOptions& options) {
    return detail::open_or_create_object([&] { return create(name, options); },
                                         [&] { return open(name); });
}
Event Event::anonymous() {
    return Event(detail::create_object({}, detail::event_spec(), {}, {}));
}

}  // namespace shuttle
