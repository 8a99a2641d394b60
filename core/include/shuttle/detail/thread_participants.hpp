// Gives each thread that uses a shared object its own registry entry, found in a thread-local
// cache on the fast path. An entry belongs to a live thread: a thread that ends releases the
// entries it holds (a thread-exit hook, the destructor of its thread-local cache), so a service
// whose threads come and go keeps a bounded number of entries. The handle releases what is left
// when it is destroyed (in the process that claimed them; a fork()ed child claims its own).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "shuttle/registry.hpp"

namespace shuttle::detail {

class ThreadParticipants {
  public:
    /// `on_claim(index, previous, may_wait)` runs after an entry is claimed, before first use:
    /// the owner clears what a previous (dead) holder left behind. It returns false if it
    /// could not do so without waiting for another process and `may_wait` is false: the entry
    /// stays claimed, and the next current() runs the hook again.
    using ClaimHook = std::function<bool(uint32_t index, ProcessIdentity previous, bool may_wait)>;
    /// `on_thread_exit(index, kept)` runs in a thread that ends holding entry `index`, before
    /// the entry is released; `kept` is an entry this handle kept for the process earlier (if
    /// any). Returns true to keep `index` for the process (released with the handle) instead.
    using ThreadExitHook = std::function<bool(uint32_t index, std::optional<uint32_t> kept)>;

    ThreadParticipants(Registry registry, ClaimHook on_claim, ThreadExitHook on_thread_exit = {});
    ThreadParticipants(const ThreadParticipants&) = delete;
    ThreadParticipants& operator=(const ThreadParticipants&) = delete;
    ~ThreadParticipants();

    /// The calling thread's entry index; claims one on first use. errc::registry_full if every
    /// entry is taken. Thread-safe. Non-blocking unless `may_wait`: errc::busy if the claim hook
    /// would have to wait for another process (a later call retries it); with `may_wait` the
    /// hook may block (bounded by the hook).
    result<uint32_t> current(bool may_wait = false) {
        const CacheEntry& last = last_used();
        if (last.owner == id_ && last.generation == fork_generation()) return last.index;
        return current_slow(may_wait);
    }

    const Registry& registry() const noexcept { return registry_; }

  private:
    struct CacheEntry {
        uint64_t owner = 0;
        uint64_t generation = 0;
        uint32_t index = 0;
        bool adopted = false;          // the claim hook has run to completion
        ProcessIdentity previous = 0;  // for the claim hook, until then
    };
    struct Held {
        uint32_t index;
        uint64_t generation;
        ProcessIdentity previous;  // the dead holder it was taken from, until adopted
        bool adopted;
        bool kept;  // kept for the process after its thread ended
    };
    /// The entries this thread holds; its destructor (the thread's end) releases them.
    struct ThreadCache {
        std::vector<CacheEntry> entries;
        ThreadCache() = default;
        ThreadCache(const ThreadCache&) = delete;
        ThreadCache& operator=(const ThreadCache&) = delete;
        ~ThreadCache();
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
    static ThreadCache& cache();

    result<uint32_t> current_slow(bool may_wait);
    /// Runs the claim hook for `entry` (not adopted yet); true once it has completed.
    bool adopt(CacheEntry& entry, bool may_wait);
    /// The calling thread, ending, gives up entry `index` (or keeps it for the process).
    void thread_ended(uint32_t index);
    /// Gives `held` up: released, or, never adopted, given back to the dead holder it was
    /// taken from (so what that holder left is still found under its identity). Mutex held.
    void give_up(const Held& held) noexcept;

    Registry registry_;
    ClaimHook on_claim_;
    ThreadExitHook on_thread_exit_;
    uint64_t id_;
    std::mutex mutex_;
    std::vector<Held> held_;
};

}  // namespace shuttle::detail
