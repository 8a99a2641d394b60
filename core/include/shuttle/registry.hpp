// The participant registry: a fixed array of entries in a segment, one per participant (a
// process, or one thread of it), each claimed with one CAS of the process identity (pid + start
// time). Crash recovery asks it whether the holder of an entry is still alive.
#pragma once

#include <cstdint>

#include "shuttle/detail/os.hpp"
#include "shuttle/error.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {

class Registry {
  public:
    Registry() = default;
    Registry(RegistryEntry* entries, uint32_t capacity) noexcept
        : entries_(entries), capacity_(capacity) {}
    explicit Registry(const Segment& segment) noexcept
        : Registry(segment.registry(), segment.info().registry_capacity) {}

    struct Claim {
        uint32_t index = 0;
        /// The identity that held the entry before, if it was reclaimed from a dead process
        /// (0 if the entry was free). The entry's words still hold what that process left.
        detail::ProcessIdentity previous = 0;
    };

    /// Claims a free entry, or else one whose process is dead, for the calling process.
    /// Non-blocking; thread- and process-safe (one CAS decides). errc::registry_full if every
    /// entry belongs to a live (or unknowable, other-namespace) process.
    result<Claim> claim() noexcept;

    /// Frees an entry this process holds. Thread- and process-safe. Writes the entry's
    /// namespace word to unknown_pid_namespace, then its identity to 0 (docs/layout.md). A
    /// process killed between the two stores, or between claim()'s CAS and its namespace
    /// store, leaves an entry judged "unknown" (never reclaimed): a lost entry, never a live
    /// participant judged dead.
    void release(uint32_t index) noexcept;

    /// Returns an entry this process claimed from dead holder `previous` and never used to
    /// that holder (what it left is found under its identity again, by whoever claims or
    /// recovers it next). Thread- and process-safe.
    void give_back(uint32_t index, detail::ProcessIdentity previous) noexcept;

    /// Whether the holder of entry `index` runs (free entries are "dead").
    detail::Liveness liveness(uint32_t index) const noexcept;

    RegistryEntry& entry(uint32_t index) const noexcept { return entries_[index]; }
    uint32_t capacity() const noexcept { return capacity_; }
    /// Number of entries whose holder is not known to be dead (reads /proc: slow path only).
    uint32_t live_count() const noexcept;

  private:
    RegistryEntry* entries_ = nullptr;
    uint32_t capacity_ = 0;
};

/// One registry entry held by this process; re-claimed automatically in a fork()ed child
/// (the child is a different process and must not share its parent's entry). Movable.
class Participant {
  public:
    Participant() = default;
    explicit Participant(Registry registry) : registry_(registry) {}
    Participant(Participant&& other) noexcept { *this = std::move(other); }
    Participant& operator=(Participant&& other) noexcept;
    Participant(const Participant&) = delete;
    Participant& operator=(const Participant&) = delete;
    ~Participant() { release(); }

    /// The entry index for the calling process, claiming one first if needed (first use, or
    /// first use after fork()). errc::registry_full if none is free.
    result<uint32_t> ensure() noexcept {
        if (claimed_ && generation_ == detail::fork_generation()) return index_;
        return claim_slow();
    }
    /// Releases the entry if this process claimed it (not if it was inherited).
    void release() noexcept;
    bool claimed() const noexcept { return claimed_ && generation_ == detail::fork_generation(); }
    uint32_t index() const noexcept { return index_; }

  private:
    result<uint32_t> claim_slow() noexcept;

    Registry registry_;
    uint32_t index_ = 0;
    uint64_t generation_ = 0;
    bool claimed_ = false;
};

}  // namespace shuttle
