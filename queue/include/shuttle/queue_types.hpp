// The queue's public value types: the options every queue form takes, the task handles of
// at-least-once delivery, and what crash recovery reports (lost items, stalls). Plain values:
// copyable, no pointers into shared memory.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shuttle/wait.hpp"

namespace shuttle {

/// Creation/attach options shared by every queue form.
struct QueueOptions {
    /// Threads (in any process) that may use the queue at once; at most 32.
    uint32_t max_participants = 32;
    /// Permission bits of a new named queue.
    unsigned mode = 0600;
    /// Part of the element fingerprint checked on open (with size and alignment).
    uint64_t type_tag = 0;
    /// Whether destroying the creating handle (in the creating process) removes the name.
    bool remove_on_destroy = false;
    /// JoinableQueue only: at-least-once redelivery (get_task(); docs/recovery.md). Fixed at
    /// creation; open() must ask for the same (else kind_mismatch). A plain queue refuses it
    /// (invalid_argument).
    bool redelivery = false;
    /// open() / open_or_create(): join a queue owned by a user other than the caller and root
    /// (refused with errc::permission otherwise: it may have been planted under this name).
    bool allow_foreign_owner = false;
};

/// A task got with get_task() from a queue with redelivery: which queue, which get, which
/// registry entry holds its lease. Opaque; valid until its task_done(task).
struct TaskId {
    uint64_t queue = 0;   // the queue's lease key
    uint64_t ticket = 0;  // the ticket of the get that leased it
    uint32_t holder = 0;  // the registry entry (and lease) that holds it
};

/// A task from JoinableQueue<T>::get_task(): the item and the handle task_done(task) takes.
template <class T>
struct Task {
    T item;
    TaskId id;
    const T& operator*() const noexcept { return item; }
    const T* operator->() const noexcept { return &item; }
};

/// A task from JoinableByteQueue::get_task(buffer): the message's length in the caller's
/// buffer, and the handle task_done(task) takes.
struct ByteTask {
    std::size_t length = 0;
    TaskId id;
};

/// Which half of an operation a killed process left unfinished (the journal's values).
enum class LostOperation : uint32_t {
    put = 1,  // the producer was killed after claiming its slot, before publishing the item
    get = 2,  // the consumer was killed after claiming the item, before releasing its slot
};

/// An item lost because the process putting or getting it was killed mid-operation.
struct LostItem {
    uint64_t ticket = 0;  // its position in the queue's order of puts
    LostOperation operation = LostOperation::put;
    pid_t pid = 0;  // the killed process
    uint64_t length = 0;
    /// Its first bytes, when they were still in the queue (a lost get; at most 192 bytes).
    std::vector<std::byte> contents;
    steady_clock::time_point repaired_at{};
};

/// A slot a live process holds mid-operation (what a stuck survivor is waiting on: a stopped
/// process cannot be told from a slow one).
struct Stall {
    pid_t pid = 0;
    uint64_t ticket = 0;
    bool putting = false;  // true: claimed for a put, not yet published; false: a get
    bool stopped = false;  // the process is stopped (SIGSTOP) or traced
};

}  // namespace shuttle
