#include "shuttle/registry.hpp"

#include "shuttle/detail/owner_word.hpp"

namespace shuttle {

namespace {

detail::OwnerWord owner_word(RegistryEntry& entry) noexcept {
    return {entry.identity, entry.pid_namespace};
}

const char* const claim_kill_point = SHUTTLE_KILL_POINT_NAME("registry.claim.before_namespace");

}  // namespace

result<Registry::Claim> Registry::claim() noexcept {
    const detail::ProcessIdentity self = detail::current_process_identity();
    // First pass: a free entry. Second pass: one whose holder is dead. Entries are judged
    // without grace (detail/owner_word.hpp): between a claimant's CAS and its namespace store,
    // a reader sees the new identity with the entry's previous namespace word, and that word
    // never misleads: a free entry holds unknown_pid_namespace ("unknown"), a reclaimed one the
    // dead holder's namespace, which is ours, or we could not have judged the holder dead.
    for (int pass = 0; pass < 2; ++pass) {
        for (uint32_t index = 0; index < capacity_; ++index) {
            detail::OwnerWord word = owner_word(entries_[index]);
            uint64_t holder = word.holder();
            if (pass == 0) {
                if (holder == 0 && word.claim(holder, self, claim_kill_point)) {
                    return Claim{index, 0};
                }
            } else if (holder != 0 &&
                       word.take_over(holder, word.judge(holder), self, claim_kill_point)) {
                return Claim{index, holder};
            }
        }
    }
    return errc::registry_full;
}

void Registry::release(uint32_t index) noexcept {
    if (index < capacity_) owner_word(entries_[index]).release();
}

void Registry::give_back(uint32_t index, detail::ProcessIdentity previous) noexcept {
    if (index >= capacity_) return;
    // The namespace word stays: the dead holder was judged in it, so it is ours too.
    uint64_t self = detail::current_process_identity();
    entries_[index].identity.compare_exchange_strong(self, previous, std::memory_order_acq_rel);
}

detail::Liveness Registry::liveness(uint32_t index) const noexcept {
    if (index >= capacity_) return detail::Liveness::dead;
    return owner_word(entries_[index]).liveness();
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
