// Crash recovery for the queue ring: the bodies of detail/queue_recovery.hpp (which explains
// what is repaired and why it is safe; docs/recovery.md has the proof sketch).
#include "shuttle/detail/queue_recovery.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_ring.hpp"
#include "shuttle/detail/queue_waiting.hpp"

namespace shuttle::detail {

static_assert(queue_recovery,
              "the queue library is always built with recovery (SHUTTLE_QUEUE_UNPROTECTED "
              "belongs to the inline hot paths of one program, never to this library)");

bool QueueRecovery::recover() noexcept {
    RegistryEntry* me = nullptr;  // where a redelivery announces its put
    if (ring_.redelivery && participants_ != nullptr) {
        // Before the lock: a first use claims an entry, and adopting it takes the lock.
        auto index = participants_->current();
        if (index) me = &entry(*index);
    }
    if (!try_lock()) return false;
    fix_up();
    const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
    const uint64_t tail = ring_.put_tickets();
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        const uint64_t announced = entry(index).announced.load(std::memory_order_acquire);
        if (!any_stuck(index, announced, head, tail)) continue;
        if (registry_.liveness(index) != Liveness::dead) continue;
        // Each ticket of a batch's run on its own: the run's finished slots are left alone.
        for (uint64_t j = 0, run = run_of(index, announced); j < run; ++j) {
            const uint64_t ticket = nth_of_run(announced, j);
            if (classify(ticket, head, tail) == Stuck::none) continue;
            if (announced_by_live_other(ticket, index)) continue;
            repair(index, ticket, head, tail);
        }
    }
    if (ring_.redelivery) recover_leases(me);
    if (ring_.joinable) {
        // Tasks taken by killed processes and never task_done()'d.
        for (uint32_t index = 0; index < registry_.capacity(); ++index) {
            RegistryEntry& candidate = entry(index);
            const uint64_t identity = candidate.identity.load(std::memory_order_acquire);
            if (identity == 0 || outstanding(candidate) == 0) continue;
            if (registry_.liveness(index) != Liveness::dead) continue;
            settle(identity, registry_.capacity());
        }
    }
    unlock();
    return true;
}

bool QueueRecovery::adopt(uint32_t index, ProcessIdentity previous, bool may_wait) noexcept {
    // Bounded: a live announcer of the same ticket withdraws within instructions; one that
    // never does (a scribbled announcement word) must not hold a first use forever.
    const uint32_t max_waits = may_wait ? max_adopt_waits : max_adopt_waits_without_blocking;
    for (uint32_t waits = 0;; ++waits) {
        if (may_wait) {
            lock();
        } else if (!lock_unless_stopped()) {
            return false;
        }
        fix_up();
        RegistryEntry& adopted = entry(index);
        const uint64_t announced = adopted.announced.load(std::memory_order_acquire);
        const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
        const uint64_t tail = ring_.put_tickets();
        const uint64_t run = run_of(index, announced);
        // A live process announced the same ticket: it owns the slot (and will finish it), or
        // it is about to withdraw a failed claim. Wait until we can tell: the announcement is
        // all that says the slot may be stuck.
        bool contested = false;
        for (uint64_t j = 0; j < run && !contested; ++j) {
            const uint64_t ticket = nth_of_run(announced, j);
            contested = classify(ticket, head, tail) != Stuck::none &&
                        announced_by_live_other(ticket, index);
        }
        if (contested && waits < max_waits) {
            unlock();
            yield_processor();
            continue;
        }
        if (contested && !may_wait) {
            unlock();
            return false;
        }
        for (uint64_t j = 0; j < run; ++j) {
            // A contested slot left to recover(): stuck until its announcer is gone.
            const uint64_t ticket = nth_of_run(announced, j);
            if (classify(ticket, head, tail) == Stuck::none) continue;
            if (!announced_by_live_other(ticket, index)) repair(index, ticket, head, tail);
        }
        if (ring_.redelivery) {
            // Its last holder is gone (dead, or its handle destroyed): nobody will
            // acknowledge its task. Orphaned, it is redelivered (or taken over by us).
            orphan_held_lease(index);
        }
        if (previous != 0) {
            settle(previous, index);
        } else {
            reset_entry(index, false);
        }
        unlock();
        return true;
    }
}

bool QueueRecovery::thread_ended(uint32_t index, std::optional<uint32_t> kept) noexcept {
    if (ring_.redelivery && ring_.lease_at(index).state.load(std::memory_order_acquire) != 0) {
        lock();
        orphan_held_lease(index);
        unlock();
    }
    if (!ring_.joinable) return false;
    RegistryEntry& ending = entry(index);
    if (outstanding(ending) == 0) return false;
    if (!kept) return true;
    // Only ending threads write a kept entry, one at a time (the handles' exit hook mutex).
    // A process killed between the two moves settles this task twice at worst, and settling
    // is bounded by the unfinished tasks.
    RegistryEntry& keeper = entry(*kept);
    for (const std::size_t word : {entry_taken, entry_done}) {
        keeper.words[word].fetch_add(ending.words[word].load(std::memory_order_relaxed),
                                     std::memory_order_relaxed);
        ending.words[word].store(0, std::memory_order_relaxed);
    }
    return false;
}

std::vector<Stall> QueueRecovery::stalls() const {
    std::vector<Stall> found;
    const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
    const uint64_t tail = ring_.put_tickets();
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        const uint64_t announced = entry(index).announced.load(std::memory_order_acquire);
        // The first unfinished ticket of its run (or its one ticket).
        uint64_t ticket = announce_none;
        Stuck stuck = Stuck::none;
        for (uint64_t j = 0, run = run_of(index, announced); j < run && stuck == Stuck::none; ++j) {
            ticket = nth_of_run(announced, j);
            stuck = classify(ticket, head, tail);
        }
        if (stuck == Stuck::none || registry_.liveness(index) == Liveness::dead) continue;
        const ProcessIdentity identity = entry(index).identity.load(std::memory_order_acquire);
        found.push_back(Stall{identity_pid(identity), ticket & announce_ticket_mask,
                              stuck == Stuck::put, process_stopped(identity_pid(identity))});
    }
    return found;
}

std::string QueueRecovery::describe() const {
    const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
    const uint64_t tail = ring_.put_tickets();
    std::string text =
        "head " + std::to_string(head) + " tail " + std::to_string(tail) + " head-turn " +
        std::to_string(ring_.slot_at(head).turn.load(std::memory_order_acquire)) + " lock " +
        std::to_string(identity_pid(ring_.control->recovery.holder.load())) + " entries:";
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        const RegistryEntry& holder = entry(index);
        const uint64_t announced = holder.announced.load(std::memory_order_acquire);
        const Liveness liveness = registry_.liveness(index);
        text += " [" + std::to_string(identity_pid(holder.identity.load())) +
                (liveness == Liveness::dead    ? " dead"
                 : liveness == Liveness::alive ? " alive"
                                               : " unknown") +
                (announced == announce_none
                     ? std::string(" -")
                     : std::string(announced & announce_get ? " get " : " put ") +
                           std::to_string(announced & announce_ticket_mask) +
                           ((announced & announce_batch)
                                ? "+" + std::to_string(run_of(index, announced))
                                : std::string())) +
                (any_stuck(index, announced, head, tail) ? " STUCK" : "") + lease_text(index) + "]";
    }
    if (ring_.redelivery) {
        text += " redelivered " + std::to_string(redelivered_count()) +
                (orphans_pending() ? " (orphans pending)" : "");
    }
    return text;
}

std::optional<uint64_t> QueueRecovery::take_orphan(uint32_t index) noexcept {
    lock();
    fix_up();
    LeaseHeader& lease = ring_.lease_at(index);
    uint64_t state = lease.state.load(std::memory_order_acquire);
    std::optional<uint64_t> ticket;
    if ((state & lease_kind_mask) == lease_orphan) {
        lease.state.store(lease_held | (state & lease_ticket_mask), std::memory_order_release);
        ring_.control->recovery.redelivered.fetch_add(1, std::memory_order_acq_rel);
        ticket = state & lease_ticket_mask;
    }
    unlock();
    return ticket;
}

std::vector<LostItem> QueueRecovery::lost_items() const {
    std::vector<LostItem> items;
    const uint64_t lost = lost_count();
    for (uint64_t number = lost > journal_capacity ? lost - journal_capacity : 0; number < lost;
         ++number) {
        const LostRecord& record = ring_.journal[number % journal_capacity];
        if (record.sequence.load(std::memory_order_acquire) != number + 1) continue;
        LostItem item;
        item.ticket = record.ticket;
        item.operation = static_cast<LostOperation>(record.operation);
        item.pid = record.pid;
        item.length = record.length;
        const auto kept = std::min<uint64_t>(record.length, LostRecord::contents_capacity);
        if (item.operation == LostOperation::get) {
            item.contents.assign(record.contents, record.contents + kept);
        }
        item.repaired_at =
            steady_clock::time_point(std::chrono::nanoseconds(record.repaired_at_ns));
        // Overwritten while we read (a seqlock): skip it.
        if (record.sequence.load(std::memory_order_seq_cst) != number + 1) continue;
        items.push_back(std::move(item));
    }
    return items;
}

std::string QueueRecovery::lease_text(uint32_t index) const {
    if (index >= ring_.lease_count) return "";
    const uint64_t state = ring_.lease_at(index).state.load(std::memory_order_acquire);
    if (state == 0) return "";
    const uint64_t kind = state & lease_kind_mask;
    return std::string(kind == lease_held     ? " lease held "
                       : kind == lease_acking ? " lease acking "
                                              : " lease ORPHAN ") +
           std::to_string(state & lease_ticket_mask);
}

void QueueRecovery::recover_leases(RegistryEntry* me) noexcept {
    bool left = false;
    for (uint32_t index = 0; index < ring_.lease_count; ++index) {
        LeaseHeader& lease = ring_.lease_at(index);
        uint64_t state = lease.state.load(std::memory_order_acquire);
        if (state == 0) continue;
        if ((state & lease_kind_mask) != lease_orphan) {
            if (registry_.liveness(index) != Liveness::dead) continue;
            if (!orphan(index, state)) continue;
            state = lease.state.load(std::memory_order_acquire);
        }
        if (me == nullptr || !redeliver(index, state, *me)) left = true;
    }
    // Cleared only by a pass that found none left (orphans appear only under the lock).
    if (!left) ring_.control->recovery.orphans.store(0, std::memory_order_relaxed);
}

void QueueRecovery::orphan_held_lease(uint32_t index) noexcept {
    const uint64_t state = ring_.lease_at(index).state.load(std::memory_order_acquire);
    if (state != 0 && (state & lease_kind_mask) != lease_orphan) orphan(index, state);
}

bool QueueRecovery::orphan(uint32_t index, uint64_t state) noexcept {
    LeaseHeader& lease = ring_.lease_at(index);
    if ((state & lease_kind_mask) == lease_acking) {
        const uint64_t target = lease.acks_target.load(std::memory_order_acquire);
        if (lease.acks.load(std::memory_order_acquire) < target) {
            lease.acks.store(target, std::memory_order_seq_cst);
        }
        SHUTTLE_KILL_POINT("queue.lease.acknowledged");
        lease.state.compare_exchange_strong(state, 0, std::memory_order_acq_rel);
        wake_joiners(*ring_.control);
        return false;
    }
    ring_.control->recovery.orphans.store(1, std::memory_order_seq_cst);
    lease.state.store(lease_orphan | (state & lease_ticket_mask), std::memory_order_release);
    SHUTTLE_KILL_POINT("queue.lease.orphaned");
    return true;
}

uint64_t QueueRecovery::settle_target(uint64_t amount) const noexcept {
    const RecoveryControl& recovery = ring_.control->recovery;
    const uint64_t settled = recovery.settled.load(std::memory_order_acquire);
    const uint64_t accounted = ring_.finished_tasks();
    const uint64_t tickets = ring_.put_tickets();
    return settled + std::min(amount, tickets > accounted ? tickets - accounted : 0);
}

bool QueueRecovery::redeliver(uint32_t index, uint64_t state, RegistryEntry& me) noexcept {
    LeaseHeader& lease = ring_.lease_at(index);
    const uint64_t length =
        std::min<uint64_t>(lease.length.load(std::memory_order_relaxed), ring_.payload_capacity);
    const errc rc = ring_try_put<true>(ring_, registry_, me, [&](void* payload) noexcept {
        if (length != 0) std::memcpy(payload, Ring::payload_of(lease), length);
        return length;
    });
    if (rc != errc::ok) return false;
    SHUTTLE_KILL_POINT("queue.recovery.redelivered");
    // The item is in the ring again under a new put ticket, for the same task: the new
    // ticket's consumer finishes it, and the orphan's ticket is settled.
    RecoveryControl& recovery = ring_.control->recovery;
    release_lease(index, state, settle_target(1),
                  recovery.redelivered.load(std::memory_order_acquire) + 1);
    return true;
}

void QueueRecovery::release_lease(uint32_t index, uint64_t state, uint64_t settled_target,
                                  uint64_t redelivered_target) noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    recovery.releasing_state.store(state, std::memory_order_relaxed);
    recovery.releasing_settled.store(settled_target, std::memory_order_relaxed);
    recovery.releasing_redelivered.store(redelivered_target, std::memory_order_relaxed);
    recovery.releasing_lease.store(index + 1, std::memory_order_release);
    SHUTTLE_KILL_POINT("queue.release.recorded");
    commit_release();
}

void QueueRecovery::commit_release() noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    const uint64_t index = recovery.releasing_lease.load(std::memory_order_acquire) - 1;
    const uint64_t target = recovery.releasing_settled.load(std::memory_order_relaxed);
    if (recovery.settled.load(std::memory_order_acquire) < target) {
        recovery.settled.store(target, std::memory_order_release);
        wake_joiners(*ring_.control);
    }
    SHUTTLE_KILL_POINT("queue.release.settled");
    const uint64_t redelivered = recovery.releasing_redelivered.load(std::memory_order_relaxed);
    if (recovery.redelivered.load(std::memory_order_acquire) < redelivered) {
        recovery.redelivered.store(redelivered, std::memory_order_release);
    }
    if (index < ring_.lease_count) {
        uint64_t expected = recovery.releasing_state.load(std::memory_order_relaxed);
        ring_.lease_at(static_cast<uint32_t>(index))
            .state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
    }
    recovery.releasing_lease.store(0, std::memory_order_release);
}

QueueRecovery::Stuck QueueRecovery::classify(uint64_t announced, uint64_t head,
                                             uint64_t tail) const noexcept {
    if (announced == announce_none) return Stuck::none;
    const uint64_t ticket = announced & announce_ticket_mask;
    const uint64_t lap = ring_.lap_of(ticket);
    const uint64_t turn = ring_.slot_at(ticket).turn.load(std::memory_order_acquire);
    if (announced & announce_get) {
        if (ticket >= head) return Stuck::none;  // never claimed
        if (turn == 2 * lap + 1) return Stuck::get_item;
        if (turn == ((2 * lap + 1) | poison_bit)) return Stuck::get_poison;
        return Stuck::none;
    }
    if (ticket >= tail || turn != 2 * lap) return Stuck::none;
    return Stuck::put;
}

bool QueueRecovery::announced_by_live_other(uint64_t announced, uint32_t self) const noexcept {
    const uint64_t ticket = announced & announce_ticket_mask;
    const uint64_t kind = announced & announce_get;
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        if (index == self) continue;
        const uint64_t other = entry(index).announced.load(std::memory_order_acquire);
        if (other == announce_none || (other & announce_get) != kind) continue;
        const uint64_t first = other & announce_ticket_mask;
        if (ticket < first || ticket - first >= run_of(index, other)) continue;
        if (registry_.liveness(index) != Liveness::dead) return true;
    }
    return false;
}

bool QueueRecovery::counted(uint32_t index, uint64_t announced) const noexcept {
    if (!ring_.joinable) return false;
    const uint64_t taken = entry(index).words[entry_taken].load(std::memory_order_acquire);
    if (announced & announce_batch) {
        // A batch get counts its whole run in one store: taken moved past its value before.
        return taken != entry(index).words[entry_batch_taken].load(std::memory_order_acquire);
    }
    return (taken & 1) != ((announced & announce_parity) ? 1u : 0u);
}

void QueueRecovery::repair(uint32_t index, uint64_t announced, uint64_t head,
                           uint64_t tail) noexcept {
    const Stuck stuck = classify(announced, head, tail);
    if (stuck == Stuck::none) return;  // finished since we looked: its owner was alive
    const uint64_t ticket = announced & announce_ticket_mask;
    const uint64_t lap = ring_.lap_of(ticket);
    SlotHeader& slot = ring_.slot_at(ticket);
    RecoveryControl& recovery = ring_.control->recovery;
    const pid_t pid = identity_pid(entry(index).identity.load(std::memory_order_acquire));
    if (stuck == Stuck::get_poison) {  // a lost put its consumer died discarding: just release
        uint64_t expected = (2 * lap + 1) | poison_bit;
        slot.turn.compare_exchange_strong(expected, 2 * lap + 2, std::memory_order_acq_rel);
        wake_one_waiter(ring_.control->producers, registry_);
        return;
    }
    if (ring_.redelivery && (announced & announce_lease) && index < ring_.lease_count) {
        // A get_task() killed before releasing its slot: the item goes to its lease (unless
        // it got there first), which recover_leases() then redelivers. Nothing is lost.
        LeaseHeader& lease = ring_.lease_at(index);
        const uint64_t state = lease.state.load(std::memory_order_acquire);
        const bool written =
            state != 0 && (state & lease_ticket_mask) == ticket;  // held, acking or orphan
        if (written || state == 0) {
            if (!written) {
                const uint64_t length = std::min<uint64_t>(
                    slot.length.load(std::memory_order_relaxed), ring_.payload_capacity);
                std::memcpy(Ring::payload_of(lease), Ring::payload_of(slot), length);
                lease.length.store(length, std::memory_order_relaxed);
                lease.state.store(lease_held | ticket, std::memory_order_release);
            }
            SHUTTLE_KILL_POINT("queue.repair.leased");
            uint64_t expected = 2 * lap + 1;
            slot.turn.compare_exchange_strong(expected, 2 * lap + 2, std::memory_order_acq_rel);
            wake_one_waiter(ring_.control->producers, registry_);
            return;
        }
        // Its lease holds another task (not possible by the protocol): journal as a get.
    }
    const uint64_t number = recovery.lost.load(std::memory_order_acquire);
    LostRecord& record = ring_.journal[number % journal_capacity];
    record.sequence.store(0, std::memory_order_seq_cst);  // readers skip it from here on
    record.ticket = ticket;
    record.pid = pid;
    record.repaired_at_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock::now().time_since_epoch())
            .count();
    uint64_t settles = 0;
    uint64_t expected = 0;
    uint64_t replacement = 0;
    if (stuck == Stuck::put) {
        record.operation = static_cast<uint32_t>(LostOperation::put);
        record.length = 0;
        settles = ring_.joinable ? 1 : 0;  // its put ticket counts as a task nobody will do
        expected = 2 * lap;
        replacement = (2 * lap + 1) | poison_bit;
    } else {
        record.operation = static_cast<uint32_t>(LostOperation::get);
        const uint64_t length =
            std::min<uint64_t>(slot.length.load(std::memory_order_relaxed), ring_.payload_capacity);
        record.length = length;
        std::memcpy(record.contents, Ring::payload_of(slot),
                    std::min<uint64_t>(length, LostRecord::contents_capacity));
        // Did the dead consumer count this task as taken (so settling its entry covers it)?
        settles = ring_.joinable && !counted(index, announced) ? 1 : 0;
        expected = 2 * lap + 1;
        replacement = 2 * lap + 2;
    }
    record.stuck_turn = expected;
    record.settled_target = recovery.settled.load(std::memory_order_acquire) + settles;
    record.sequence.store(number + 1, std::memory_order_release);
    SHUTTLE_KILL_POINT("queue.repair.journaled");
    if (!slot.turn.compare_exchange_strong(expected, replacement, std::memory_order_acq_rel)) {
        record.sequence.store(0, std::memory_order_release);  // nothing to repair after all
        return;
    }
    SHUTTLE_KILL_POINT("queue.repair.committed");
    commit(record, number);
    wake_one_waiter(stuck == Stuck::put ? ring_.control->consumers : ring_.control->producers,
                    registry_);
}

void QueueRecovery::commit(const LostRecord& record, uint64_t number) noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    if (recovery.settled.load(std::memory_order_acquire) < record.settled_target) {
        recovery.settled.store(record.settled_target, std::memory_order_release);
        wake_joiners(*ring_.control);
    }
    recovery.lost.store(number + 1, std::memory_order_release);
}

void QueueRecovery::settle(ProcessIdentity identity, uint32_t adopted) noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    int64_t sum = 0;
    uint64_t included = 0;  // the entries this settlement covers (and will clear)
    const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
    const uint64_t tail = ring_.put_tickets();
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        if (index == adopted || entry(index).identity.load(std::memory_order_acquire) == identity) {
            included |= uint64_t{1} << index;
            sum += outstanding(entry(index));
            // A stuck get it counted is settled by that slot's repair instead (the
            // announcement is kept as "not counted" when the entry is cleared); each of a
            // batch's run.
            const uint64_t announced = entry(index).announced.load(std::memory_order_acquire);
            for (uint64_t j = 0, run = run_of(index, announced); j < run; ++j) {
                const uint64_t ticket = nth_of_run(announced, j);
                if (classify(ticket, head, tail) == Stuck::get_item && counted(index, ticket)) {
                    --sum;
                }
            }
        }
    }
    uint64_t amount = sum > 0 ? static_cast<uint64_t>(sum) : 0;
    const uint64_t settled = recovery.settled.load(std::memory_order_acquire);
    const uint64_t accounted = ring_.finished_tasks();
    const uint64_t tickets = ring_.put_tickets();
    amount = std::min(amount, tickets > accounted ? tickets - accounted : 0);
    recovery.settling_target.store(settled + amount, std::memory_order_relaxed);
    recovery.settling_entries.store(included, std::memory_order_relaxed);
    recovery.settling_identity.store(identity, std::memory_order_release);
    SHUTTLE_KILL_POINT("queue.settle.recorded");
    if (amount != 0) recovery.settled.store(settled + amount, std::memory_order_release);
    finish_settlement(identity, included);
    if (amount != 0) wake_joiners(*ring_.control);
}

void QueueRecovery::finish_settlement(ProcessIdentity identity, uint64_t included) noexcept {
    for (uint32_t index = 0; index < registry_.capacity(); ++index) {
        if (!(included & (uint64_t{1} << index))) continue;
        reset_entry(index, true);
        uint64_t holder = identity;
        entry(index).identity.compare_exchange_strong(holder, 0);
    }
    ring_.control->recovery.settling_identity.store(0, std::memory_order_release);
}

void QueueRecovery::reset_entry(uint32_t index, bool keep_stuck) noexcept {
    RegistryEntry& holder = entry(index);
    const uint64_t announced = holder.announced.load(std::memory_order_acquire);
    const uint64_t head = ring_.control->head.load(std::memory_order_acquire);
    const bool stuck = any_stuck(index, announced, head, ring_.put_tickets());
    holder.announced.store(keep_stuck && stuck ? announced & ~announce_parity : announce_none,
                           std::memory_order_relaxed);
    // taken = the batch's `taken` before = 0: a kept announcement reads "not counted".
    holder.words[entry_taken].store(0, std::memory_order_relaxed);
    holder.words[entry_done].store(0, std::memory_order_relaxed);
    holder.words[entry_batch_taken].store(0, std::memory_order_relaxed);
    forget_waiter(*ring_.control, index);
}

void QueueRecovery::fix_up() noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    const uint64_t number = recovery.lost.load(std::memory_order_acquire);
    const LostRecord& record = ring_.journal[number % journal_capacity];
    if (record.sequence.load(std::memory_order_acquire) == number + 1 &&
        ring_.slot_at(record.ticket).turn.load(std::memory_order_acquire) != record.stuck_turn) {
        commit(record, number);
    }
    if (recovery.releasing_lease.load(std::memory_order_acquire) != 0) {
        if (recovery.settled.load(std::memory_order_acquire) >=
            recovery.releasing_settled.load(std::memory_order_relaxed)) {
            commit_release();
        } else {
            // Killed before committing: the lease is still orphaned (put it back again: a
            // duplicate at worst) or acknowledging (settle it again).
            recovery.releasing_lease.store(0, std::memory_order_release);
        }
    }
    const uint64_t identity = recovery.settling_identity.load(std::memory_order_acquire);
    if (identity != 0) {
        if (recovery.settled.load(std::memory_order_acquire) >=
            recovery.settling_target.load(std::memory_order_relaxed)) {
            finish_settlement(identity, recovery.settling_entries.load(std::memory_order_relaxed));
        } else {
            recovery.settling_identity.store(0, std::memory_order_release);  // redo later
        }
    }
}

OwnerWord QueueRecovery::lock_word() noexcept {
    RecoveryControl& recovery = ring_.control->recovery;
    return OwnerWord(recovery.holder, recovery.holder_namespace);
}

bool QueueRecovery::try_lock() noexcept {
    const ProcessIdentity self = current_process_identity();
    const char* const locked = SHUTTLE_KILL_POINT_NAME("queue.recovery.locked");
    OwnerWord word = lock_word();
    uint64_t holder = 0;
    if (word.claim(holder, self, locked)) return true;
    if (holder == self) return false;  // another thread of this process
    // A holder still without its namespace after the grace period (alive mid-acquire, or killed
    // right after its CAS) is judged in our namespace: one in another namespace then risks, at
    // worst, a second recoverer.
    return word.take_over(holder, word.judge(holder, &unnamed_holder_), self, locked);
}

void QueueRecovery::lock() noexcept {
    // Bounded for every caller: a holder that cannot be judged (a process in another pid
    // namespace, or a garbage word) is stepped over after lock_patience, as a dead one would
    // be. A live holder stopped that long risks, at worst, a second recoverer (each repair is
    // one CAS on the slot's turn, so racing repairers are harmless: docs/recovery.md).
    const auto give_up = deadline_after(lock_patience);
    while (!try_lock()) {
        if (steady_clock::now() >= give_up) {
            const ProcessIdentity self = current_process_identity();
            OwnerWord word = lock_word();
            uint64_t holder = word.holder();
            if (holder != self && word.claim(holder, self)) return;
        }
        yield_processor();
    }
}

bool QueueRecovery::lock_unless_stopped() noexcept {
    const auto give_up = steady_clock::now() + brief_patience;
    while (!try_lock()) {
        const uint64_t holder = lock_word().holder();
        if (holder != 0 &&
            (process_stopped(identity_pid(holder)) || steady_clock::now() >= give_up)) {
            return false;
        }
        yield_processor();
    }
    return true;
}

void QueueRecovery::unlock() noexcept {
    // Only if still ours: a holder stepped over (stopped longer than lock_patience) that
    // resumes must not free the lock of the process that stepped over it.
    OwnerWord word = lock_word();
    if (word.holder() == current_process_identity()) word.release();
}

}  // namespace shuttle::detail
