#include "shuttle/registry.hpp"

#include "shuttle/detail/os.hpp"

namespace shuttle {

result<Registry::Claim> Registry::claim() noexcept {
    const detail::ProcessIdentity self = detail::current_process_identity();
    const uint64_t pid_namespace = detail::current_pid_namespace();
    // First pass: a free entry. Second pass: one whose holder is dead.
    for (int pass = 0; pass < 2; ++pass) {
        for (uint32_t index = 0; index < capacity_; ++index) {
            RegistryEntry& entry = entries_[index];
            uint64_t holder = entry.identity.load(std::memory_order_acquire);
            if (pass == 0 && holder != 0) continue;
            if (pass == 1 &&
                (holder == 0 || detail::process_liveness(
                                    holder, entry.pid_namespace.load(std::memory_order_relaxed)) !=
                                    detail::Liveness::dead)) {
                continue;
            }
            // The namespace word is written after the identity, so between the two a reader
            // sees the new identity with the entry's previous namespace word. That word never
            // misleads: a free entry holds unknown_pid_namespace (release() writes it before
            // the identity; the CAS acquires that store), judged "unknown"; a reclaimed one
            // holds the dead holder's namespace, which is ours, or we could not have judged
            // the holder dead.
            if (entry.identity.compare_exchange_strong(holder, self, std::memory_order_acq_rel)) {
                SHUTTLE_KILL_POINT("registry.claim.before_namespace");
                entry.pid_namespace.store(pid_namespace, std::memory_order_release);
                return Claim{index, holder};
            }
        }
    }
    return errc::registry_full;
}

void Registry::release(uint32_t index) noexcept {
    if (index >= capacity_) return;
    // The namespace goes first: the next claimant's identity must never appear next to this
    // holder's namespace (a reader there would judge the claimant by the wrong pids).
    entries_[index].pid_namespace.store(detail::unknown_pid_namespace, std::memory_order_relaxed);
    entries_[index].identity.store(0, std::memory_order_release);
}

detail::Liveness Registry::liveness(uint32_t index) const noexcept {
    if (index >= capacity_) return detail::Liveness::dead;
    const RegistryEntry& entry = entries_[index];
    uint64_t holder = entry.identity.load(std::memory_order_acquire);
    if (holder == 0) return detail::Liveness::dead;
    return detail::process_liveness(holder, entry.pid_namespace.load(std::memory_order_acquire));
}

uint32_t Registry::live_count() const noexcept {
    uint32_t count = 0;
    for (uint32_t index = 0; index < capacity_; ++index) {
        if (liveness(index) != detail::Liveness::dead) ++count;
    }
    return count;
}

Participant& Participant::operator=(Participant&& other) noexcept {
    if (this != &other) {
        release();
        registry_ = other.registry_;
        index_ = other.index_;
        generation_ = other.generation_;
        claimed_ = std::exchange(other.claimed_, false);
    }
    return *this;
}

void Participant::release() noexcept {
    if (claimed()) registry_.release(index_);
    claimed_ = false;
}

result<uint32_t> Participant::claim_slow() noexcept {
    auto claim = registry_.claim();
    if (!claim) return claim.error();
    index_ = claim->index;
    generation_ = detail::fork_generation();
    claimed_ = true;
    return index_;
}

}  // namespace shuttle
