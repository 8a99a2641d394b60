// Crash recovery for the queue ring (docs/recovery.md has the contract and its proof sketch).
//
// A process can be killed at any instruction. What it may leave behind:
//   * a put slot claimed but not published (turn 2L with tail past it): consumers would wait
//     for it forever. Repair: journal the loss, then poison the slot (one CAS on its turn);
//     the next consumer discards it.
//   * a get slot claimed but not released (turn 2L+1 with head past it): producers would find
//     the ring full forever. Repair: journal the item (its contents are still there), then
//     release the slot (one CAS).
//   * JoinableQueue tasks it took and never task_done()'d: settled, so join() returns.
//   * with redelivery (QueueOptions::redelivery), a task it got with get_task() and had not
//     acknowledged: its lease is orphaned and put back into the ring (at-least-once), or taken
//     over by the entry's next owner; a get_task() killed before releasing its slot has its
//     item moved into its lease first (nothing is journaled).
//   * waiter bits and registry entries: cleared and reclaimed.
// Repairs happen only on proven death: the slot's ticket was announced (before the claim) by a
// registry entry whose process is dead, and by no live one. One process repairs at a time (the
// recovery lock, taken over from a dead holder); every repair writes its journal record before
// its commit CAS, and the next lock holder finishes a repair or settlement whose recoverer was
// killed half-way (fix_up), so nothing is lost from the accounting or counted twice.
//
// The hot paths (queue_ring.hpp) only announce; everything here runs off them, in
// queue/src/queue_recovery.cpp, and is always compiled with recovery on.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shuttle/detail/owner_word.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/detail/thread_participants.hpp"
#include "shuttle/queue_types.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

class QueueRecovery {
  public:
    QueueRecovery(const Ring& ring, const Registry& registry) : ring_(ring), registry_(registry) {}

    /// The handle's participants: redelivery puts orphaned tasks back from the recovering
    /// thread's own registry entry (without them, a recoverer only orphans leases).
    void set_participants(ThreadParticipants* participants) noexcept {
        participants_ = participants;
    }

    /// Repairs what killed processes left behind. Non-blocking: returns false at once if another
    /// live process is recovering (it will do the work). Thread- and process-safe.
    bool recover() noexcept;

    /// recover(), unless this handle ran it less than `interval` ago (cheap to call often).
    void recover_at_most_every(steady_clock::duration interval) noexcept {
        const int64_t now = steady_clock::now().time_since_epoch().count();
        int64_t last = last_recovery_.load(std::memory_order_relaxed);
        if (now - last < interval.count()) return;
        if (!last_recovery_.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
        recover();
    }

    /// Runs when this process claims registry entry `index` (free, or taken over from the dead
    /// `previous`), before first use: repairs what the entry's last holder left, settles its
    /// tasks, and clears its words. `may_wait`: waits while another process recovers (at most
    /// lock_patience). Otherwise returns false instead of waiting for a stopped recoverer (at
    /// once) or a running one (after brief_patience): a later call adopts the entry.
    bool adopt(uint32_t index, ProcessIdentity previous, bool may_wait) noexcept;

    /// The thread holding entry `index` ends while its handle lives on. A task it holds from
    /// get_task() is orphaned, then redelivered as if the thread had died (nobody else may
    /// acknowledge it). Tasks it took with get() and did not finish stay the process's
    /// (task_done() from any of its threads counts them): its counts move into `kept`, the
    /// entry kept for the process, or, if there is none yet, true is returned to keep `index`
    /// as that entry. Blocks while another process recovers (at most lock_patience).
    bool thread_ended(uint32_t index, std::optional<uint32_t> kept) noexcept;

    /// Live processes holding a slot mid-operation right now. Non-blocking; reads /proc.
    std::vector<Stall> stalls() const;

    /// A one-line picture of the recovery state, for a hung test's diagnosis.
    std::string describe() const;

    uint64_t lost_count() const noexcept {
        return ring_.control->recovery.lost.load(std::memory_order_acquire);
    }
    uint64_t redelivered_count() const noexcept {
        return ring_.control->recovery.redelivered.load(std::memory_order_acquire);
    }

    /// get_task() found its own lease orphaned (left by the entry's previous holder, not yet
    /// redelivered): takes it over as this thread's task. Returns its ticket, or nullopt if it
    /// was redelivered meanwhile (the lease is free: get from the ring). Blocks while another
    /// live process recovers (briefly).
    std::optional<uint64_t> take_orphan(uint32_t index) noexcept;

    /// Whether a waiting consumer should run recovery: a lease may be orphaned.
    bool orphans_pending() const noexcept {
        return ring_.control->recovery.orphans.load(std::memory_order_relaxed) != 0;
    }
    uint64_t settled_tasks() const noexcept {
        return ring_.control->recovery.settled.load(std::memory_order_acquire);
    }

    /// The journal's records, oldest first (the last journal_capacity losses).
    std::vector<LostItem> lost_items() const;

  private:
    enum class Stuck { none, put, get_item, get_poison };

    std::string lease_text(uint32_t index) const;

    // ---- leases (redelivery) ---------------------------------------------------------------
    /// The leases whose holder is dead: held → orphaned, then put back into the ring (when
    /// there is room and this thread has an entry to announce from; else a later pass does);
    /// a dead holder's acknowledgement in progress is settled. Lock held.
    void recover_leases(RegistryEntry* me) noexcept;

    /// The lease `index` lost its holder. Held: orphaned (true). Acknowledging: the holder had
    /// finished the task; its acknowledgement is finished (acks = acks_target: idempotent, so
    /// exact even if it had got that far, or this recoverer is killed) and the lease freed
    /// (false).
    bool orphan(uint32_t index, uint64_t state) noexcept;
    /// orphan() lease `index` if it is held or acknowledging (its holder is gone). Lock held.
    void orphan_held_lease(uint32_t index) noexcept;

    /// `settled` after settling `amount` more tasks, bounded by the unfinished ones.
    uint64_t settle_target(uint64_t amount) const noexcept;

    /// Puts orphaned lease `index` back into the ring (announced from `me`), then frees it.
    /// False if the ring is full (a later pass retries: recovery never blocks). A recoverer
    /// killed after the put and before the release leaves the lease orphaned: the next one puts
    /// it again (a duplicate, never a loss; the accounting stays right, see docs/recovery.md).
    bool redeliver(uint32_t index, uint64_t state, RegistryEntry& me) noexcept;

    /// Frees lease `index` (in `state`) and commits `settled` / `redelivered` with it: recorded
    /// first, so a recoverer killed half-way is finished (or redone) by the next (fix_up).
    void release_lease(uint32_t index, uint64_t state, uint64_t settled_target,
                       uint64_t redelivered_target) noexcept;

    void commit_release() noexcept;

    RegistryEntry& entry(uint32_t index) const noexcept { return registry_.entry(index); }

    /// What the announced ticket's slot says: claimed by its announcer's kind of operation and
    /// not finished (stuck, if the claimer is dead), or nothing to do.
    Stuck classify(uint64_t announced, uint64_t head, uint64_t tail) const noexcept;

    /// Whether a live (or unknowable) entry other than `self` announced the same ticket and
    /// operation (alone or in a batch's run): it may be the one that claimed it.
    bool announced_by_live_other(uint64_t announced, uint32_t self) const noexcept;

    /// The tickets entry `index`'s announcement covers: a batch's run (at most max_batch_run:
    /// the count word is untrusted), else one.
    uint64_t run_of(uint32_t index, uint64_t announced) const noexcept {
        if (announced == announce_none || !(announced & announce_batch)) return 1;
        return std::clamp<uint64_t>(
            entry(index).words[entry_batch_count].load(std::memory_order_acquire), 1,
            max_batch_run);
    }
    /// The announcement of the j-th ticket of `announced`'s run, with its flags: what
    /// classify(), repair() and counted() take.
    static uint64_t nth_of_run(uint64_t announced, uint64_t j) noexcept {
        return (announced & ~announce_ticket_mask) |
               (((announced & announce_ticket_mask) + j) & announce_ticket_mask);
    }
    /// Whether any ticket of entry `index`'s announcement is stuck.
    bool any_stuck(uint32_t index, uint64_t announced, uint64_t head,
                   uint64_t tail) const noexcept {
        for (uint64_t j = 0, run = run_of(index, announced); j < run; ++j) {
            if (classify(nth_of_run(announced, j), head, tail) != Stuck::none) return true;
        }
        return false;
    }

    /// Whether the consumer that announced get `announced` counted it as taken before dying.
    bool counted(uint32_t index, uint64_t announced) const noexcept;

    static int64_t outstanding(const RegistryEntry& holder) noexcept {
        return static_cast<int64_t>(holder.words[entry_taken].load(std::memory_order_acquire) -
                                    holder.words[entry_done].load(std::memory_order_acquire));
    }

    /// Repairs the slot `announced` names, claimed by the dead holder of entry `index`.
    void repair(uint32_t index, uint64_t announced, uint64_t head, uint64_t tail) noexcept;

    void commit(const LostRecord& record, uint64_t number) noexcept;

    /// Settles the tasks of dead process `identity` (all its entries, plus entry `adopted` that
    /// this process just took over from it), then frees its entries.
    void settle(ProcessIdentity identity, uint32_t adopted) noexcept;

    /// The part of a committed settlement that clears the entries it settled (idempotent),
    /// and frees those the dead process still holds. An entry taken over meanwhile by a
    /// newcomer is cleared too: the newcomer is waiting for this lock before its first use.
    void finish_settlement(ProcessIdentity identity, uint64_t included) noexcept;

    /// Clears an entry's words. `keep_stuck`: an announcement whose slot is still stuck stays
    /// (recovery repairs it later; it is all that says so), as "not counted" (taken becomes 0).
    void reset_entry(uint32_t index, bool keep_stuck) noexcept;

    /// Finishes what a recoverer killed half-way left: a journaled repair whose CAS happened
    /// but was not committed, or a settlement recorded but not finished. Lock held.
    void fix_up() noexcept;

    // ---- the recovery lock: one process at a time, taken over from a dead holder -------------
    OwnerWord lock_word() noexcept;
    bool try_lock() noexcept;
    void lock() noexcept;
    /// try_lock(), retried while the holder runs, for at most brief_patience; false at once
    /// if the holder's process is stopped (SIGSTOP, a debugger).
    bool lock_unless_stopped() noexcept;
    void unlock() noexcept;

    Ring ring_;
    Registry registry_;
    ThreadParticipants* participants_ = nullptr;
    std::atomic<int64_t> last_recovery_{0};  // steady_clock ticks of this handle's last recover()
    // A lock holder seen without its namespace, and since when (try_lock).
    UnnamedHolderWatch unnamed_holder_{std::chrono::milliseconds(2)};
    /// How long lock() waits for a holder it cannot prove dead before stepping over it.
    static constexpr auto lock_patience = std::chrono::seconds(2);
    /// How long a first use that must not block waits for a running recoverer.
    static constexpr auto brief_patience = std::chrono::milliseconds(100);
    /// Passes adopt() waits for a live entry that announced the same ticket to withdraw (fewer
    /// when it must not block).
    static constexpr uint32_t max_adopt_waits = 10000;
    static constexpr uint32_t max_adopt_waits_without_blocking = 64;
};

}  // namespace shuttle::detail
