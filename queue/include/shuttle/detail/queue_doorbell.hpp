// A queue handle's descriptor for event loops (docs/event_loop.md): a doorbell slot of one side
// (QueueControl::doorbells) held by this process, and the datagram socket its token names.
//
// Level-triggered contract: the descriptor polls readable whenever the side's operation (a get
// for the consumers' side, a put for the producers') would not block, and sometimes when it
// would (spurious: the caller's try_ then says empty/full, and that re-arms it). How:
//
//   arm():   drain the socket; set our bit in `armed` (seq_cst RMW); read both cursors and the
//            shutdown word (seq_cst). If the operation might not block now (items or a claimed
//            slot, room, shutdown), ring ourselves: a ring we drained is never lost.
//   claims:  a put's tail claim (get's head claim) loads `armed` and rings every armed doorbell,
//            clearing the bits (ring_doorbells, queue_waiting.hpp). Shutdown rings them all.
//
// Either the claimer sees our bit, or our read of the cursors sees its claim (13): no lost
// wake-up. A claimed slot not yet finished counts as "might not block": the caller's try_get
// says empty and arm() rings again (and runs recovery, rate limited) until the slot is finished
// or, its producer killed, repaired. So a producer killed mid-put leaves no loop asleep.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/error.hpp"

namespace shuttle::detail {

class QueueDoorbell {
  public:
    /// Claims a free doorbell slot of `side` (or one whose process died) and binds its socket.
    /// errc::registry_full if all max_queue_doorbells are held by live processes.
    static result<std::unique_ptr<QueueDoorbell>> open(WaitSide& side, DoorbellSlot* slots) {
        const ProcessIdentity me = current_process_identity();
        const uint64_t my_namespace = current_pid_namespace();
        for (uint32_t index = 0; index < max_queue_doorbells; ++index) {
            DoorbellSlot& slot = slots[index];
            uint64_t owner = slot.owner.load(std::memory_order_acquire);
            if (owner != 0 &&
                process_liveness(owner, slot.owner_namespace.load(std::memory_order_acquire)) !=
                    Liveness::dead) {
                continue;
            }
            if (!slot.owner.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) continue;
            slot.owner_namespace.store(my_namespace, std::memory_order_release);
            // A fresh token per holder: a dead holder's socket name is never reused.
            for (int attempt = 0; attempt < 4; ++attempt) {
                const uint64_t token = random_token();
                const int fd = open_doorbell(token);
                if (fd >= 0) {
                    slot.token.store(token, std::memory_order_release);
                    return std::unique_ptr<QueueDoorbell>(
                        new QueueDoorbell(side, slots[index], index, fd));
                }
                if (fd != -EADDRINUSE) break;
            }
            release_slot(slot);
            return errc::system;
        }
        return errc::registry_full;
    }

    QueueDoorbell(const QueueDoorbell&) = delete;
    QueueDoorbell& operator=(const QueueDoorbell&) = delete;
    ~QueueDoorbell() {
        if (generation_ == fork_generation()) {
            side_.armed.fetch_and(~(uint32_t{1} << index_), std::memory_order_acq_rel);
            release_slot(slot_);
        }
        close_fd(fd_);
    }

    int fd() const noexcept { return fd_; }
    /// False in a fork()ed child: the slot and socket name belong to the parent.
    bool ours() const noexcept { return generation_ == fork_generation(); }

    /// Before the caller sleeps on fd(): see the header comment. `maybe_ready()` reads the
    /// cursors (seq_cst) and says whether the operation might not block.
    template <class MaybeReady>
    void arm(MaybeReady&& maybe_ready) noexcept {
        drain_doorbell(fd_);
        side_.armed.fetch_or(uint32_t{1} << index_, std::memory_order_seq_cst);  // (13)
        if (maybe_ready()) ring_doorbell(slot_.token.load(std::memory_order_relaxed));
    }

  private:
    QueueDoorbell(WaitSide& side, DoorbellSlot& slot, uint32_t index, int fd) noexcept
        : side_(side), slot_(slot), index_(index), fd_(fd), generation_(fork_generation()) {}

    static void release_slot(DoorbellSlot& slot) noexcept {
        slot.token.store(0, std::memory_order_relaxed);
        slot.owner_namespace.store(unknown_pid_namespace, std::memory_order_relaxed);
        slot.owner.store(0, std::memory_order_release);
    }

    WaitSide& side_;
    DoorbellSlot& slot_;
    uint32_t index_;
    int fd_;
    uint64_t generation_;
};

}  // namespace shuttle::detail
