// The head of an unbounded queue (unbounded_queue.hpp): a small segment that says which chunk
// producers fill and which chunk consumers drain, whether the queue is shut down, and how the
// chunks are named. Each chunk is an ordinary bounded queue segment named `<prefix>.<index>`
// (docs/design.md §5b). Only monotonic counters and a flag live here: no lock, nothing a killed
// process can leave half done (each chunk's own recovery covers puts and gets inside it).
//
//   body:  put_chunk (own line) | get_chunk (own line) | finished_chunk (own line) |
//          shut_down, chunk_participants, prefix_length, prefix[]
//
// A joinable queue's chunks are JoinableQueues, each counting its own tasks; a drained chunk
// keeps its name (joiners and task_done() open it) until its tasks are all done or settled,
// and finished_chunk says which is the oldest that may still have unfinished tasks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "shuttle/queue_types.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::detail {

struct QueueForm;

/// The longest chunk-name prefix: `<prefix>.<index>` stays within a segment name's 200
/// characters for every 64-bit index (20 digits and the dot).
inline constexpr std::size_t chain_prefix_capacity = 179;
/// Segment flag of an unbounded queue's head: its chunks are ByteQueues (variable length).
inline constexpr uint64_t chain_flag_variable_length = 2;
/// Segment flag of an unbounded queue's head: its chunks are JoinableQueues (task accounting).
inline constexpr uint64_t chain_flag_joinable = 4;
/// The head's own layout version (checked on attach, besides the segment's): 2 added
/// finished_chunk (joinable unbounded queues).
inline constexpr uint32_t chain_layout_version = 2;

struct ChainControl {
    alignas(cache_line) std::atomic<uint64_t> put_chunk{0};  // the chunk producers fill
    alignas(cache_line) std::atomic<uint64_t> get_chunk{0};  // the oldest chunk not yet drained
    // Joinable: the oldest chunk whose tasks may be unfinished (its name is kept until then).
    alignas(cache_line) std::atomic<uint64_t> finished_chunk{0};
    alignas(cache_line) std::atomic<uint32_t> shut_down{0};  // shutdown(): set once, never cleared
    uint32_t layout_version = chain_layout_version;
    uint64_t remover = 0;             // ProcessIdentity whose handles unlink the chunks (0: nobody)
    uint32_t chunk_participants = 0;  // QueueOptions::max_participants
    uint32_t chunk_mode = 0;          // permission bits of new chunks
    uint32_t prefix_length = 0;
    char prefix[chain_prefix_capacity + 1] = {};
};

/// One handle's view of a chain head (shared memory). Thread- and process-safe: every member
/// is a single atomic operation on the head, or reads fields fixed at creation.
class QueueChain {
  public:
    explicit QueueChain(Segment head);

    /// A new head: named `name`, or anonymous (a memfd) if empty, whose chunks are named
    /// `<name>.<n>` (anonymous: a generated `shuttle-anon-<pid>-<n>-<random>.<n>`). Throws
    /// Error(invalid_argument) for a chunk capacity, message size or participant count out of
    /// range, invalid_name if the name is too long to prefix chunk names, and what
    /// Segment::create throws.
    /// `create_first_chunk(name, options)` makes chunk 0 before the head appears, so every
    /// opener finds it (and the chunk is unlinked again if the head cannot be made).
    using FirstChunk = std::function<void(const std::string& name, const QueueOptions& options)>;
    static Segment make_head(std::string_view name, const QueueForm& form,
                             uint64_t max_message_size, const QueueOptions& options,
                             const FirstChunk& create_first_chunk);
    /// What open() requires of a head of this form (Error(invalid_argument): redelivery).
    static SegmentExpectation head_expectation(const QueueForm& form, const QueueOptions& options);
    /// Refuses (Error(kind_mismatch)) a head of the other form: joinable or not.
    static void check_head_form(const Segment& head, const QueueForm& form);

    const Segment& head() const noexcept { return head_; }
    uint64_t chunk_capacity() const noexcept { return head_.info().capacity; }
    uint64_t max_message_size() const noexcept { return head_.info().max_message_size; }
    /// Whether the chunks are JoinableQueues.
    bool joinable() const noexcept { return (head_.info().flags & chain_flag_joinable) != 0; }
    /// The options every chunk is created and opened with.
    QueueOptions chunk_options() const noexcept;
    /// Whether handles in this process unlink the chunks when destroyed: the creating process
    /// of an anonymous queue, or of a named one created with remove_on_destroy.
    bool removes_chunks_here() const noexcept;
    /// Unlinks a named queue's head and every chunk name; false if there was no such head.
    static bool remove(std::string_view name, const SegmentExpectation& expected);
    std::string chunk_name(uint64_t index) const;

    uint64_t put_index() const noexcept {
        return control_->put_chunk.load(std::memory_order_seq_cst);
    }
    uint64_t get_index() const noexcept {
        return control_->get_chunk.load(std::memory_order_seq_cst);
    }
    bool shut_down() const noexcept {
        return control_->shut_down.load(std::memory_order_seq_cst) != 0;
    }
    void set_shut_down() noexcept { control_->shut_down.store(1, std::memory_order_seq_cst); }
    /// Joinable: the oldest chunk that may still have unfinished tasks.
    uint64_t finished_index() const noexcept {
        return control_->finished_chunk.load(std::memory_order_seq_cst);
    }
    /// Joinable: chunk `index` (drained) has no unfinished task: finished_chunk moves past it.
    /// True if this call moved it (its name is then this caller's to remove).
    bool finish(uint64_t index) noexcept;
    /// Producers move on from chunk `from` (sealed) to from + 1; no-op if someone did already.
    void advance_put(uint64_t from) noexcept;
    /// Consumers move on past drained chunk `drained`: get_chunk becomes drained + 1 unless it
    /// is there already. Returns the chunks this call retired, [first, drained + 1): their names
    /// are this caller's to remove (empty if another caller moved it).
    std::pair<uint64_t, uint64_t> retire_through(uint64_t drained) noexcept;
    /// Unlinks the names of chunks [first, last) (absent ones are skipped).
    void remove_chunks(uint64_t first, uint64_t last) const noexcept;
    /// Unlinks every chunk name that may exist: the live ones, the last retired one (its
    /// retirer may have died before unlinking it), a joinable queue's unfinished ones, and one
    /// past the put chunk (a producer may have died between creating it and moving on).
    void remove_all_chunks() const noexcept;

  private:
    Segment head_;
    ChainControl* control_ = nullptr;
    std::string prefix_;
};

}  // namespace shuttle::detail
