// The robust owner word: who holds a shared place (a registry entry, a lock, a waiter slot), and
// how another process judges whether that holder still runs. Two 64-bit words in shared memory,
// wherever the place's own layout keeps them (each layout is a protocol: OwnerWord is a view):
//
//   identity       the holder's ProcessIdentity (pid + start time); 0 when free. One CAS
//                  claims it: from 0, or from a holder proven dead (a takeover).
//   pid_namespace  the holder's pid namespace, written right AFTER the claim and cleared
//                  (unknown_pid_namespace) right BEFORE the release: a new holder's identity is
//                  never seen next to the previous holder's namespace.
//
// A holder is judged by process_liveness(identity, namespace); only "dead" lets another process
// take over. A namespace not written yet means the holder is alive mid-claim or was killed right
// after its CAS, and a holder in another namespace cannot be judged at all: both are "unknown"
// (the place stays taken). A lock cannot stay taken forever, so a lock judges with an
// UnnamedHolderWatch: the same holder still without a namespace after a grace period is judged
// as a process of the judge's namespace (a holder in another namespace then risks being judged
// dead wrongly). A registry entry judges without one (a lost entry, never a live one stolen).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shuttle/detail/os.hpp"

namespace shuttle::detail {

/// Remembers a holder seen without its namespace, and since when (steady_clock).
class UnnamedHolderWatch {
  public:
    explicit UnnamedHolderWatch(steady_clock::duration grace) noexcept : grace_(grace.count()) {}

    /// Whether `holder`, seen now without its namespace, has been seen so for the whole grace
    /// period. The first sighting of a holder (or of another holder) starts the clock.
    /// Thread-safe (one watch may serve every thread of a handle). Non-blocking.
    bool overdue(uint64_t holder) noexcept {
        const int64_t now = steady_clock::now().time_since_epoch().count();
        if (holder_.exchange(holder, std::memory_order_relaxed) != holder) {
            since_.store(now, std::memory_order_relaxed);
            return false;
        }
        return now - since_.load(std::memory_order_relaxed) >= grace_;
    }

  private:
    int64_t grace_;  // steady_clock ticks
    std::atomic<uint64_t> holder_{0};
    std::atomic<int64_t> since_{0};  // steady_clock ticks
};

/// How a holder was judged, and by which namespace word (a takeover goes ahead only if the word
/// still holds it: otherwise the place changed hands meanwhile).
struct OwnerJudgement {
    Liveness liveness = Liveness::unknown;
    uint64_t pid_namespace = unknown_pid_namespace;
};

/// A view of one owner word pair. Every member is thread- and process-safe and non-blocking
/// (judging reads /proc: slow paths only).
class OwnerWord {
  public:
    OwnerWord(std::atomic<uint64_t>& identity, std::atomic<uint64_t>& pid_namespace) noexcept
        : identity_(identity), pid_namespace_(pid_namespace) {}

    /// The holder now (0: free).
    uint64_t holder() const noexcept { return identity_.load(std::memory_order_acquire); }

    /// Claims the place for `self` if its holder is `expected` (0: free), then writes our
    /// namespace. On failure `expected` receives the holder seen. `kill_point`, if not nullptr,
    /// is the crash point between the CAS and the namespace store (pass
    /// SHUTTLE_KILL_POINT_NAME("..."): nullptr unless kill points are compiled in).
    bool claim(uint64_t& expected, ProcessIdentity self,
               const char* kill_point = nullptr) noexcept {
        // acq_rel: acquires what the previous holder released (its namespace store included).
        if (!identity_.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) {
            return false;
        }
        if (kill_point != nullptr) kill_point_hit(kill_point);
        pid_namespace_.store(current_pid_namespace(), std::memory_order_release);
        return true;
    }

    /// Judges `holder` (read from this word) by the namespace word now. An unnamed holder is
    /// "unknown", unless `watch` says it has been unnamed for its grace period: then it is
    /// judged as a process of our namespace.
    OwnerJudgement judge(uint64_t holder, UnnamedHolderWatch* watch = nullptr) const noexcept {
        OwnerJudgement judgement;
        judgement.pid_namespace = pid_namespace_.load(std::memory_order_acquire);
        uint64_t judged_by = judgement.pid_namespace;
        if (judged_by == unknown_pid_namespace && watch != nullptr && watch->overdue(holder)) {
            judged_by = current_pid_namespace();
        }
        judgement.liveness = process_liveness(holder, judged_by);
        return judgement;
    }

    /// Takes the place over from `dead_holder`, judged dead by `judgement`, unless the place
    /// changed hands since (its namespace word differs from the one judged by, or its holder is
    /// no longer `dead_holder`). Then as claim().
    bool take_over(uint64_t dead_holder, const OwnerJudgement& judgement, ProcessIdentity self,
                   const char* kill_point = nullptr) noexcept {
        if (judgement.liveness != Liveness::dead ||
            pid_namespace_.load(std::memory_order_acquire) != judgement.pid_namespace) {
            return false;
        }
        return claim(dead_holder, self, kill_point);
    }

    /// Frees the place (its holder only): the namespace first, then the identity (release).
    void release() noexcept {
        pid_namespace_.store(unknown_pid_namespace, std::memory_order_relaxed);
        identity_.store(0, std::memory_order_release);
    }

    /// Whether whoever holds the place now runs (a free place: dead). No grace.
    Liveness liveness() const noexcept {
        const uint64_t holder = identity_.load(std::memory_order_acquire);
        if (holder == 0) return Liveness::dead;
        return process_liveness(holder, pid_namespace_.load(std::memory_order_acquire));
    }

    /// For a place whose ownership another word decides (the Condition's waiter slots): writes
    /// `self` and our namespace before that word is claimed (announce before claim), so the two
    /// are complete from the moment anybody can see the place taken.
    void announce(ProcessIdentity self) noexcept {
        identity_.store(self, std::memory_order_relaxed);
        pid_namespace_.store(current_pid_namespace(), std::memory_order_relaxed);
    }

  private:
    std::atomic<uint64_t>& identity_;
    std::atomic<uint64_t>& pid_namespace_;
};

}  // namespace shuttle::detail
