// Lock and RLock: shuttle's own owner word on a futex (docs/sync.md, docs/layout.md).
//
// The futex word holds the holder's kernel thread id (0: free) and a "somebody parks" bit; the
// holder's process identity and pid namespace (detail/owner_word.hpp) are written right after
// the word's CAS and cleared right before its release, so a waiter can prove the holder dead
// (the registry's test: /proc, pid + start time) and take the lock over. Nothing in the segment
// is a pointer anybody follows: a process that scribbles on it can make lock answers wrong, never
// make another process write through an address it chose.
#include "shuttle/lock.hpp"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "shuttle/detail/owner_word.hpp"

namespace shuttle {
namespace detail {
namespace {

constexpr uint64_t lock_tag = 0x4c4f434b0002;  // "LOCK", 2: shuttle's owner word, not glibc's

/// The word's bit that says a waiter parks (or is about to): the release must wake one.
constexpr uint32_t parked_bit = 0x80000000u;
constexpr uint32_t thread_mask = ~parked_bit;

/// A holder seen without its identity is mid-acquire, or was killed between the word's CAS and
/// the identity store: the same holder still unnamed after this long is judged by its thread.
constexpr auto unnamed_grace = std::chrono::milliseconds(100);

SegmentInfo lock_segment(bool recursive) {
    return state_segment<LockState>(recursive ? ObjectKind::rlock : ObjectKind::lock, lock_tag);
}

Segment make_lock(std::string_view name, bool recursive, const CreateOptions& options) {
    return create_object(
        name, lock_segment(recursive),
        [recursive](Segment& segment) {
            lock_init(*reinterpret_cast<LockState*>(segment.body()), recursive);
        },
        options);
}

OwnerWord owner_of(LockState& state) noexcept {
    return {state.owner, state.owner_pid_namespace};
}

/// Who the calling thread is, cached per thread for the fast path (no call into core/ per lock);
/// a fork()ed child, whose thread has another id and whose process another identity, refreshes.
struct Caller {
    uint64_t generation = ~uint64_t{0};
    uint64_t identity = 0;
    uint64_t pid_namespace = 0;
    uint32_t thread = 0;
};
// initial-exec: the library is linked into programs (static), so no __tls_get_addr per lock.
[[gnu::tls_model("initial-exec")]] thread_local constinit Caller cached_caller{};

[[gnu::noinline]] void refresh(Caller& caller, uint64_t generation) noexcept {
    caller.thread = static_cast<uint32_t>(current_thread_id()) & thread_mask;
    caller.identity = current_process_identity();
    caller.pid_namespace = current_pid_namespace();
    caller.generation = generation;
}

[[gnu::always_inline]] inline const Caller& caller() noexcept {
    Caller& cached = cached_caller;
    const uint64_t generation = fork_generation();
    if (cached.generation != generation) [[unlikely]]
        refresh(cached, generation);
    return cached;
}

uint32_t self_thread() noexcept {
    return caller().thread;
}

/// After the word's CAS made the calling thread the holder: names it (as OwnerWord::announce
/// does, from the cache), one level deep.
void became_holder(LockState& state) noexcept {
    const Caller& self = caller();
    state.owner.store(self.identity, std::memory_order_relaxed);
    state.owner_pid_namespace.store(self.pid_namespace, std::memory_order_relaxed);
    if (state.recursive) state.depth.store(1, std::memory_order_relaxed);
}

/// Gives the lock up (its holder, every level): the name first, then the word; wakes a parked
/// waiter if there is one.
[[gnu::always_inline]] inline void give_up(LockState& state) noexcept {
    if (state.recursive) state.depth.store(0, std::memory_order_relaxed);
    owner_of(state).release();
    if (state.word.exchange(0, std::memory_order_release) & parked_bit) wake(state.word, 1);
}

/// Whether the holder named by `word` is proven dead: its process gone (detail/owner_word.hpp),
/// or its process alive but its thread ended. A holder not named yet is given `watch`'s grace,
/// then judged by its thread alone.
bool holder_dead(LockState& state, uint32_t word, UnnamedHolderWatch& watch) noexcept {
    const uint32_t thread = word & thread_mask;
    OwnerWord owner = owner_of(state);
    const uint64_t holder = owner.holder();
    if (holder == 0) {
        if (!watch.overdue(word)) return false;
        return thread_liveness(0, static_cast<int32_t>(thread)) == Liveness::dead;
    }
    const OwnerJudgement judgement = owner.judge(holder, &watch);
    if (judgement.liveness != Liveness::alive) return judgement.liveness == Liveness::dead;
    return thread_liveness(identity_pid(holder), static_cast<int32_t>(thread)) == Liveness::dead;
}

/// The cheap look (one tgkill, no /proc), for every park and every failed try_lock: whether the
/// holder's thread, in a process of our namespace, is gone. A holder it cannot judge (unnamed,
/// other namespace, a zombie's threads, a reused pid) waits for holder_dead() at a backstop.
bool holder_thread_gone(const LockState& state, uint32_t word) noexcept {
    const uint64_t holder = state.owner.load(std::memory_order_acquire);
    if (holder == 0 ||
        state.owner_pid_namespace.load(std::memory_order_acquire) != caller().pid_namespace) {
        return false;
    }
    return thread_liveness(identity_pid(holder), static_cast<int32_t>(word & thread_mask)) ==
           Liveness::dead;
}

/// Takes the lock over from the dead holder seen in `word` (one CAS decides between racing
/// survivors), and tells the new owner.
bool take_over(LockState& state, uint32_t word, uint32_t mine) noexcept {
    if (!state.word.compare_exchange_strong(word, mine, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
        return false;
    }
    became_holder(state);
    state.owner_died.store(1, std::memory_order_relaxed);
    return true;
}

/// The slow path: parks on the word at once (as glibc's mutex: critical sections are short, and
/// spinning on 2 vCPUs steals the holder's CPU; measured in bench/sync), with the backstop,
/// looking at the holder before every park. True once the calling thread holds the lock.
bool acquire_contended(LockState& state, uint32_t self, steady_clock::time_point deadline) {
    UnnamedHolderWatch watch(unnamed_grace);
    bool parked = false;            // once we parked, we keep the parked bit (others may park too)
    bool backstop_expired = false;  // then the thorough look at the holder (reads /proc)
    for (;;) {
        uint32_t word = state.word.load(std::memory_order_relaxed);
        if (word == 0) {
            if (state.word.compare_exchange_weak(word, parked ? (self | parked_bit) : self,
                                                 std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
                became_holder(state);
                return true;
            }
            continue;
        }
        if (deadline != no_deadline && steady_clock::now() >= deadline) return false;
        if (backstop_expired ? holder_dead(state, word, watch) : holder_thread_gone(state, word)) {
            // The parked bit stays for the others.
            if (take_over(state, word, self | parked_bit)) return true;
            continue;
        }
        if ((word & parked_bit) == 0 && !state.word.compare_exchange_strong(
                                            word, word | parked_bit, std::memory_order_relaxed)) {
            continue;  // changed meanwhile: look again
        }
        parked = true;
        backstop_expired = wait_on(state.word, word | parked_bit, backstop_deadline(deadline)) ==
                           wake_reason::timeout;
    }
}

/// The fast path: takes a free lock (one CAS), or re-enters an RLock the caller holds. On
/// failure `word` holds the word seen.
[[gnu::always_inline]] inline bool take_or_reenter(LockState& state, uint32_t self,
                                                   uint32_t& word) noexcept {
    word = 0;
    if (state.word.compare_exchange_strong(word, self, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
        became_holder(state);
        return true;
    }
    if (state.recursive && lock_held_by_caller(state)) {
        state.depth.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    return false;
}

[[noreturn]] void throw_not_owner(const char* what) {
    throw Error(errc::not_owner,
                fmt::format("{}: the calling thread does not hold the lock", what));
}

}  // namespace

void lock_init(LockState& state, bool recursive) {
    state.word.store(0, std::memory_order_relaxed);
    state.depth.store(0, std::memory_order_relaxed);
    state.owner.store(0, std::memory_order_relaxed);
    state.owner_pid_namespace.store(unknown_pid_namespace, std::memory_order_relaxed);
    state.owner_died.store(0, std::memory_order_relaxed);
    state.recursive = recursive ? 1 : 0;
}

[[noreturn]] void refuse_timeout_without_blocking(const char* what) {
    throw Error(errc::invalid_argument,
                fmt::format("{}: acquire(blocking=false) takes no timeout", what));
}

/// Everything but the free lock's one CAS: out of line, so the fast path stays small.
[[gnu::noinline]] bool lock_acquire_slow(LockState& state, steady_clock::time_point deadline,
                                         const char* what, uint32_t self) {
    if (lock_held_by_caller(state)) {
        if (deadline == no_deadline) {
            throw Error(errc::invalid_argument,
                        fmt::format("{}: already held by this thread (it would deadlock; use an "
                                    "RLock to re-enter)",
                                    what));
        }
        // Python: a timed acquire of a Lock its caller holds times out; it never succeeds.
        std::this_thread::sleep_until(deadline);
        return false;
    }
    return acquire_contended(state, self, deadline);
}

bool lock_acquire(LockState& state, steady_clock::time_point deadline, const char* what) {
    const uint32_t self = self_thread();
    uint32_t word = 0;
    if (take_or_reenter(state, self, word)) [[likely]]
        return true;
    return lock_acquire_slow(state, deadline, what, self);
}

bool lock_try_acquire(LockState& state) {
    const uint32_t self = self_thread();
    uint32_t word = 0;
    if (take_or_reenter(state, self, word)) return true;
    // Never blocks, but a holder whose thread is gone is stepped over at once (one tgkill).
    return word != 0 && (word & thread_mask) != self && holder_thread_gone(state, word) &&
           take_over(state, word, self | (word & parked_bit));
}

bool lock_held_by_caller(const LockState& state) noexcept {
    const Caller& self = caller();
    return (state.word.load(std::memory_order_relaxed) & thread_mask) == self.thread &&
           state.owner.load(std::memory_order_relaxed) == self.identity;
}

uint32_t lock_depth(const LockState& state) noexcept {
    if (!lock_held_by_caller(state)) return 0;
    return state.recursive ? std::max<uint32_t>(state.depth.load(std::memory_order_relaxed), 1) : 1;
}

void require_holder(const LockState& state, const char* what) {
    if (!lock_held_by_caller(state)) throw_not_owner(what);
}

void lock_release(LockState& state, const char* what) {
    if (!lock_held_by_caller(state)) [[unlikely]]
        throw_not_owner(what);
    if (state.recursive && state.depth.load(std::memory_order_relaxed) > 1) {
        state.depth.fetch_sub(1, std::memory_order_relaxed);
        return;
    }
    give_up(state);
}

uint32_t lock_release_all(LockState& state, const char* what) {
    require_holder(state, what);
    const uint32_t depth = lock_depth(state);
    give_up(state);
    return depth;
}

void lock_restore(LockState& state, uint32_t depth, const char* what) {
    lock_acquire(state, no_deadline, what);
    if (state.recursive) state.depth.store(std::max<uint32_t>(depth, 1), std::memory_order_relaxed);
}

void lock_abandon(LockState& state) noexcept {
    if (!lock_held_by_caller(state)) return;
    // As if the holder died: the next owner is told the protected data may be half-updated.
    state.owner_died.store(1, std::memory_order_relaxed);
    give_up(state);
}

}  // namespace detail

Segment Lock::make_segment(std::string_view name, const CreateOptions& options) {
    return detail::make_lock(name, false, options);
}
SegmentExpectation Lock::expectation() {
    return detail::expectation_for(detail::lock_segment(false));
}

Segment RLock::make_segment(std::string_view name, const CreateOptions& options) {
    return detail::make_lock(name, true, options);
}
SegmentExpectation RLock::expectation() {
    return detail::expectation_for(detail::lock_segment(true));
}

}  // namespace shuttle
