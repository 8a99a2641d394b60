// ThreadParticipants' slow paths and the thread-exit hook (detail/thread_participants.hpp).
#include "shuttle/detail/thread_participants.hpp"

#include <algorithm>
#include <unordered_map>

namespace shuttle::detail {

namespace {

// The handles alive in this process, by id: a thread that ends finds the handles of the
// entries it holds here (one destroyed meanwhile has released them already). Leaked on
// purpose: threads may end while static destructors run.
struct LiveHandles {
    std::mutex mutex;
    std::unordered_map<uint64_t, ThreadParticipants*> by_id;
};
LiveHandles& live_handles() {
    static LiveHandles* handles = new LiveHandles;
    return *handles;
}

}  // namespace

ThreadParticipants::ThreadParticipants(Registry registry, ClaimHook on_claim,
                                       ThreadExitHook on_thread_exit)
    : registry_(registry),
      on_claim_(std::move(on_claim)),
      on_thread_exit_(std::move(on_thread_exit)),
      id_(next_id()) {
    LiveHandles& live = live_handles();
    std::lock_guard lock(live.mutex);
    live.by_id.emplace(id_, this);
}

ThreadParticipants::~ThreadParticipants() {
    {
        // From here on no ending thread calls into this handle.
        LiveHandles& live = live_handles();
        std::lock_guard lock(live.mutex);
        live.by_id.erase(id_);
    }
    const uint64_t generation = fork_generation();
    std::lock_guard lock(mutex_);
    for (const Held& held : held_) {
        if (held.generation == generation) give_up(held);
    }
}

ThreadParticipants::ThreadCache& ThreadParticipants::cache() {
    thread_local ThreadCache entries;
    return entries;
}

ThreadParticipants::ThreadCache::~ThreadCache() {
    const uint64_t generation = fork_generation();
    LiveHandles& live = live_handles();
    std::lock_guard lock(live.mutex);  // the handle stays alive while we use it
    for (const CacheEntry& entry : entries) {
        if (entry.generation != generation) continue;
        const auto handle = live.by_id.find(entry.owner);
        if (handle != live.by_id.end()) handle->second->thread_ended(entry.index);
    }
    entries.clear();
    last_used() = CacheEntry{};
}

result<uint32_t> ThreadParticipants::current_slow(bool may_wait) {
    std::vector<CacheEntry>& entries = cache().entries;
    const uint64_t generation = fork_generation();
    auto mine = std::find_if(entries.begin(), entries.end(), [&](const CacheEntry& entry) {
        return entry.owner == id_ && entry.generation == generation;
    });
    if (mine == entries.end()) {
        auto claim = registry_.claim();
        if (!claim) return claim.error();
        {
            std::lock_guard lock(mutex_);
            if (!held_.empty() && held_.front().generation != generation) held_.clear();
            held_.push_back({claim->index, generation, claim->previous, false, false});
        }
        // Entries a fork()ed parent held are not ours.
        std::erase_if(entries,
                      [&](const CacheEntry& entry) { return entry.generation != generation; });
        entries.push_back(CacheEntry{id_, generation, claim->index, false, claim->previous});
        mine = entries.end() - 1;
    }
    if (!mine->adopted) {
        if (!on_claim_(mine->index, mine->previous, may_wait)) return errc::busy;
        mine->adopted = true;
        std::lock_guard lock(mutex_);
        for (Held& held : held_) {
            if (held.index == mine->index) held.adopted = true;
        }
    }
    last_used() = *mine;
    return mine->index;
}

void ThreadParticipants::thread_ended(uint32_t index) {
    std::optional<uint32_t> kept;
    bool adopted = false;
    {
        std::lock_guard lock(mutex_);
        for (const Held& held : held_) {
            if (held.generation != fork_generation()) continue;
            if (held.kept) kept = held.index;
            if (held.index == index) adopted = held.adopted;
        }
    }
    // The hook runs without our mutex: it may take the object's own locks.
    const bool keep = adopted && on_thread_exit_ && on_thread_exit_(index, kept);
    std::lock_guard lock(mutex_);
    const auto held = std::find_if(held_.begin(), held_.end(),
                                   [&](const Held& candidate) { return candidate.index == index; });
    if (held == held_.end()) return;
    if (keep) {
        held->kept = true;
        return;
    }
    give_up(*held);
    held_.erase(held);
}

void ThreadParticipants::give_up(const Held& held) noexcept {
    if (held.adopted || held.previous == 0) {
        registry_.release(held.index);
    } else {
        registry_.give_back(held.index, held.previous);
    }
}

}  // namespace shuttle::detail
