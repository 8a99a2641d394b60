// Gives each thread that uses a shared object its own registry entry, found in a thread-local
// cache on the fast path. The handle owns the entries it handed out and releases them when it is
// destroyed (in the process that claimed them; a fork()ed child claims its own).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "shuttle/registry.hpp"

namespace shuttle::detail {

class ThreadParticipants {
  public:
    /// `on_claim(index, previous)` runs after an entry is claimed, before first use: the owner
    /// clears what a previous (dead) holder left behind.
    using ClaimHook = std::function<void(uint32_t index, ProcessIdentity previous)>;

    ThreadParticipants(Registry registry, ClaimHook on_claim)
        : registry_(registry), on_claim_(std::move(on_claim)), id_(next_id()) {}
    ThreadParticipants(const ThreadParticipants&) = delete;
    ThreadParticipants& operator=(const ThreadParticipants&) = delete;

    ~ThreadParticipants() {
        const uint64_t generation = fork_generation();
        for (const Held& held : held_) {
            if (held.generation == generation) registry_.release(held.index);
        }
    }

    /// The calling thread's entry index; claims one on first use. errc::registry_full if every
    /// entry is taken. Thread-safe; non-blocking.
    result<uint32_t> current() {
        const CacheEntry& last = last_used();
        if (last.owner == id_ && last.generation == fork_generation()) return last.index;
        return current_slow();
    }

    const Registry& registry() const noexcept { return registry_; }

    /// Releases the calling thread's entry now (e.g. a thread about to exit).
    void release_current();

  private:
    struct CacheEntry {
        uint64_t owner = 0;
        uint64_t generation = 0;
        uint32_t index = 0;
    };
    struct Held {
        uint32_t index;
        uint64_t generation;
    };

    static uint64_t next_id() {
        static std::atomic<uint64_t> counter{1};
        return counter.fetch_add(1, std::memory_order_relaxed);
    }
    /// The entry this thread used last (a constant-initialised thread_local: no guard on the
    /// fast path), backed by the list of every entry this thread holds.
    static CacheEntry& last_used() {
        thread_local constinit CacheEntry last{};
        return last;
    }
    static std::vector<CacheEntry>& cache() {
        thread_local std::vector<CacheEntry> entries;
        return entries;
    }

    result<uint32_t> current_slow() {
        std::vector<CacheEntry>& entries = cache();
        const uint64_t generation = fork_generation();
        for (const CacheEntry& entry : entries) {
            if (entry.owner == id_ && entry.generation == generation) {
                last_used() = entry;
                return entry.index;
            }
        }
        auto claim = registry_.claim();
        if (!claim) return claim.error();
        on_claim_(claim->index, claim->previous);
        {
            std::lock_guard lock(mutex_);
            if (!held_.empty() && held_.front().generation != generation) held_.clear();
            held_.push_back({claim->index, generation});
        }
        entries.push_back(CacheEntry{id_, generation, claim->index});
        last_used() = entries.back();
        return claim->index;
    }

    Registry registry_;
    ClaimHook on_claim_;
    uint64_t id_;
    std::mutex mutex_;
    std::vector<Held> held_;
};

inline void ThreadParticipants::release_current() {
    std::vector<CacheEntry>& entries = cache();
    const uint64_t generation = fork_generation();
    for (CacheEntry& entry : entries) {
        if (entry.owner == id_ && entry.generation == generation) {
            registry_.release(entry.index);
            std::lock_guard lock(mutex_);
            std::erase_if(held_, [&](const Held& held) { return held.index == entry.index; });
            entry = CacheEntry{};
            if (last_used().owner == id_) last_used() = CacheEntry{};
            return;
        }
    }
}

}  // namespace shuttle::detail
