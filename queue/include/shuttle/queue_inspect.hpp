// What a named queue holds right now, read from outside without using it: the `shuttle inspect`
// command's view, and a monitoring program's. Reading takes no registry entry and changes
// nothing in the queue (no recovery runs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shuttle/inspect.hpp"
#include "shuttle/queue_types.hpp"
#include "shuttle/segment.hpp"

namespace shuttle {

/// A task a consumer got with get_task() and has not acknowledged (redelivery).
struct LeasedTask {
    enum class State {
        held,           // its holder works on it
        acknowledging,  // its task_done(task) is in progress
        orphaned,       // its holder died: recovery puts it back into the queue
    };
    uint32_t holder = 0;  // the registry entry that holds it
    uint64_t ticket = 0;  // the ticket of the get that leased it
    State state = State::held;
};

/// One reading of a queue's shared state. Counters are read one after the other while others
/// may put and get: each is exact when read, together they are a near-instant picture.
struct QueueSnapshot {
    std::string name;
    ObjectKind kind = ObjectKind::queue;  // queue (Queue<T>) or byte_queue (ByteQueue)
    uint64_t capacity = 0;                // items (messages)
    uint64_t element_size = 0;            // Queue<T>: sizeof(T); ByteQueue: 1
    uint64_t max_message_size = 0;        // ByteQueue: the largest message; Queue<T>: 0
    uint32_t max_participants = 0;
    uint64_t size = 0;       // items queued
    uint64_t puts = 0;       // put tickets taken since creation (the tail cursor)
    uint64_t gets = 0;       // get tickets taken since creation (the head cursor)
    bool shut_down = false;  // shutdown() was called (by any process)
    bool joinable = false;
    bool redelivery = false;
    uint64_t unfinished_tasks = 0;     // joinable: items put and not yet task_done()'d
    uint64_t settled_tasks = 0;        // joinable: finished for processes that were killed
    uint64_t redelivered = 0;          // redelivery: tasks delivered again after their holder died
    std::vector<LeasedTask> leases;    // redelivery: tasks held now
    uint32_t waiting_getters = 0;      // threads blocked in get (polling or parked)
    uint32_t waiting_putters = 0;      // threads blocked in put
    uint64_t lost_count = 0;           // items lost with killed processes, ever
    std::vector<LostItem> lost_items;  // the last 32 of them, oldest first
    uint64_t discarded_puts = 0;       // lost puts that consumers skipped
    std::vector<Stall> stalls;         // live processes holding a slot mid-operation
    /// States no sequence of operations (and no killed process) can leave: the segment was
    /// written by something else. One sentence each, naming the words and values; empty for
    /// a sound queue.
    std::vector<std::string> impossible;
};

/// The snapshot of named queue `name` (Queue<T> or ByteQueue, any form). Non-blocking; reads
/// /proc (who has it mapped; liveness of the slots' holders). Thread- and process-safe; the
/// queue's users are not disturbed. Throws Error(not_found) if there is no such
/// segment, Error(kind_mismatch) if it holds no queue, and the errors of Queue<T>::open
/// (version_mismatch, corrupt, ...) for a segment it cannot read.
QueueSnapshot inspect_queue(std::string_view name);

/// The same, for a queue whose summary inspect_segment() has already read (spares reading the
/// header and /proc twice).
QueueSnapshot inspect_queue(const SegmentSummary& summary);

}  // namespace shuttle
