// Barrier: a generation counter under a robust lock, a futex word waiters park on, and the
// registry to notice a party that died while waiting.
#include <fmt/format.h>

#include <algorithm>

#include "shuttle/barrier.hpp"

namespace shuttle {
namespace {

constexpr uint64_t barrier_tag = 0x424152520001;  // "BARR"
constexpr uint32_t max_parties = 4000;
constexpr uint32_t spare_registry_entries = 32;

SegmentInfo barrier_segment(uint32_t parties = 0) {
    SegmentInfo info =
        detail::state_segment<detail::BarrierState>(ObjectKind::barrier, barrier_tag);
    info.capacity = parties;
    info.registry_capacity = std::min(parties + spare_registry_entries, max_registry_capacity);
    return info;
}

uint64_t history_bit(uint32_t generation) {
    return uint64_t{1} << (generation % 64);
}

}  // namespace

Barrier::Barrier(Segment segment)
    : NamedObject(std::move(segment)), participant_(Registry(segment_)) {
    // Read once and check: the copy, not the shared word, steers the barrier from here on.
    const uint64_t parties = segment_.info().capacity;
    if (parties == 0 || parties > max_parties || shared().parties != parties) {
        throw Error(errc::corrupt,
                    fmt::format("barrier segment: parties {} out of range", parties));
    }
    parties_ = static_cast<uint32_t>(parties);
}

void Barrier::check_parameters(uint32_t parties) {
    if (parties == 0 || parties > max_parties) {
        throw Error(errc::invalid_argument,
                    fmt::format("Barrier parties {} out of range (1 .. {})", parties, max_parties));
    }
}
Segment Barrier::make_segment(std::string_view name, uint32_t parties,
                              const CreateOptions& options) {
    return detail::create_object(
        name, barrier_segment(parties),
        [parties](Segment& segment) {
            auto& state = *reinterpret_cast<detail::BarrierState*>(segment.body());
            detail::lock_init(state.lock, false);
            state.parties = parties;
        },
        options);
}
SegmentExpectation Barrier::expectation() {
    return detail::expectation_for(barrier_segment());
}

bool Barrier::enter(steady_clock::time_point deadline) {
    if (!detail::lock_acquire(shared().lock, deadline, "Barrier")) return false;
    if (shared().lock.owner_died.load(std::memory_order_relaxed) != 0) {
        // A process died inside a barrier operation: the counts may be half-updated.
        break_locked();
        shared().lock.owner_died.store(0, std::memory_order_relaxed);
    }
    return true;
}

void Barrier::break_locked() {
    shared().broken.store(1, std::memory_order_release);
    shared().phase.fetch_add(1, std::memory_order_release);
    wake_all(shared().phase);
}

void Barrier::abort() {
    enter(no_deadline);
    break_locked();
    detail::lock_release(shared().lock, "Barrier");
}

void Barrier::reset() {
    enter(no_deadline);
    const uint32_t generation = shared().generation.load(std::memory_order_relaxed);
    // The current generation ends without tripping: its waiters see "broken".
    shared().trip_history.fetch_and(~history_bit(generation), std::memory_order_relaxed);
    shared().count.store(0, std::memory_order_relaxed);
    shared().broken.store(0, std::memory_order_relaxed);
    shared().generation.store(generation + 1, std::memory_order_release);
    shared().phase.fetch_add(1, std::memory_order_release);
    wake_all(shared().phase);
    detail::lock_release(shared().lock, "Barrier");
}

result<uint32_t> Barrier::outcome(uint32_t generation, uint32_t index) const {
    if (shared().generation.load(std::memory_order_acquire) != generation) {
        // Our generation ended: tripped (we passed) or reset (we did not).
        return (shared().trip_history.load(std::memory_order_acquire) & history_bit(generation))
                   ? result<uint32_t>(index)
                   : result<uint32_t>(errc::broken);
    }
    return errc::broken;
}

bool Barrier::arrived_party_died(uint32_t generation) const {
    Registry registry(segment_);
    for (uint32_t index = 0; index < registry.capacity(); ++index) {
        RegistryEntry& entry = registry.entry(index);
        if (entry.words[0].load(std::memory_order_acquire) != uint64_t{generation} + 1) continue;
        if (registry.liveness(index) == detail::Liveness::dead &&
            entry.identity.load(std::memory_order_acquire) != 0) {
            return true;
        }
    }
    return false;
}

result<uint32_t> Barrier::wait_steady(steady_clock::time_point deadline) {
    // The deadline bounds taking the internal lock too: a party stopped inside it must not
    // stretch a timed wait. Not arrived yet, a timed-out party has nothing to undo.
    if (!enter(deadline)) return errc::timeout;
    if (shared().broken.load(std::memory_order_relaxed)) {
        detail::lock_release(shared().lock, "Barrier");
        return errc::broken;
    }
    const uint32_t generation = shared().generation.load(std::memory_order_relaxed);
    const uint32_t index = shared().count.load(std::memory_order_relaxed);
    if (index >= parties_) {  // a scribbled count: impossible, so the barrier is broken
        break_locked();
        detail::lock_release(shared().lock, "Barrier");
        return errc::broken;
    }
    if (index + 1 >= parties_) {  // the last party: run the action, then release everybody
        if (action_) {
            try {
                action_();
            } catch (...) {
                break_locked();
                detail::lock_release(shared().lock, "Barrier");
                throw;
            }
        }
        if (shared().broken.load(std::memory_order_acquire)) {
            // A party timed out meanwhile and broke it without the lock: nobody passes.
            detail::lock_release(shared().lock, "Barrier");
            return errc::broken;
        }
        shared().trip_history.fetch_or(history_bit(generation), std::memory_order_relaxed);
        shared().count.store(0, std::memory_order_relaxed);
        shared().generation.store(generation + 1, std::memory_order_release);
        shared().phase.fetch_add(1, std::memory_order_release);
        wake_all(shared().phase);
        detail::lock_release(shared().lock, "Barrier");
        return index;
    }
    // Announce before counting (docs/design.md §6): our registry entry names this generation before
    // n_waiting() counts us, so from the moment anybody can see us waiting, our death is
    // provable (a dead entry holding this generation) rather than an uncounted gap.
    if (auto entry = participant_.ensure()) {
        Registry(segment_).entry(*entry).words[0].store(uint64_t{generation} + 1,
                                                        std::memory_order_release);
    }
    SHUTTLE_KILL_POINT("barrier.wait.registered");  // dies holding the lock: next enter() breaks
    shared().count.store(index + 1, std::memory_order_release);
    detail::lock_release(shared().lock, "Barrier");
    SHUTTLE_KILL_POINT("barrier.wait.counted");  // dies waiting: the registry proves it

    auto released = [&] {
        return shared().generation.load(std::memory_order_acquire) != generation ||
               shared().broken.load(std::memory_order_acquire) != 0;
    };
    Backoff backoff;
    while (!released() && backoff.step()) {
        if (deadline != no_deadline && steady_clock::now() >= deadline) break;
    }
    for (;;) {
        const uint32_t phase = shared().phase.load(std::memory_order_acquire);
        if (released()) return outcome(generation, index);
        if (deadline != no_deadline && steady_clock::now() >= deadline) {
            // As in Python, a party that gives up breaks the barrier for the others. The lock is
            // only tried (its holder may be stopped); breaking needs only the flag and a wake, so
            // without it the barrier is broken all the same. Racing a trip, that may leave the
            // next round broken (a timed-out party breaks it in Python too); reset() repairs it.
            if (!enter(steady_clock::now())) {
                break_locked();
                result<uint32_t> tripped = outcome(generation, index);  // before we broke it?
                return tripped ? tripped : result<uint32_t>(errc::timeout);
            }
            const bool still_waiting = !released();
            if (still_waiting) break_locked();
            detail::lock_release(shared().lock, "Barrier");
            if (still_waiting) return errc::timeout;
            return outcome(generation, index);
        }
        if (wait_on(shared().phase, phase, detail::backstop_deadline(deadline)) ==
                wake_reason::timeout &&
            !released() && arrived_party_died(generation)) {
            enter(no_deadline);
            if (!released()) break_locked();
            detail::lock_release(shared().lock, "Barrier");
        }
    }
}

}  // namespace shuttle
