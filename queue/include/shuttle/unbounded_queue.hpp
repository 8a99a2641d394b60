// shuttle::UnboundedQueue<T>, UnboundedByteQueue (and their Joinable forms): MPMC queues with no
// fixed capacity (Python's Queue() / JoinableQueue() with no maxsize). put() never blocks; memory
// grows by one chunk at a time while items pile up and shrinks back as consumers drain them.
//
//     auto queue = shuttle::UnboundedQueue<Job>::create("jobs");   // or ::anonymous()
//     queue.put(job);                                              // never blocks
//     while (auto job = queue.get()) run(*job);                    // ends once shut down + drained
//
// How (docs/design.md §5b): a chain of chunks, each an ordinary bounded queue segment of
// QueueOptions::chunk_capacity items named `<name>.<n>` (reserved with fallocate when created:
// no SIGBUS later), found through the head segment `<name>`, which holds the index of the chunk
// producers fill and of the oldest chunk consumers drain. A producer that finds its chunk full
// creates the next one, seals the full one (shuts that chunk down) and moves on; consumers
// drain a chunk until it reports shut down and drained, move on, and the first to move past a
// chunk unlinks its name. Items of one producer stay in order (a producer only moves forward;
// consumers drain chunk n before n + 1). While consumers keep up, chunk 0 is reused as a ring and
// nothing is created. Crash recovery inside a chunk is the bounded queue's (docs/recovery.md);
// the head holds only monotonic counters and a flag, so a process killed between any two steps
// of moving on leaves nothing to repair: the next participant repeats the step.
//
// UnboundedJoinableQueue<T> / UnboundedJoinableByteQueue add task_done() and join(): each chunk
// is a JoinableQueue counting its own tasks, with its crash rules (a consumer killed holding
// tasks has them settled, docs/recovery.md); a drained chunk keeps its name until its tasks are
// all done, and join() joins the chunks oldest first. Not (yet): redelivery (get_task) on an
// unbounded queue. An anonymous unbounded queue's head is a memfd but its chunks are named segments
// (`shuttle-anon-<pid>-<n>-<random>.<k>`): the creating handle, when destroyed, unlinks those
// left, so destroy it after the children that use the queue are done.
//
// Thread- and process-safe: every member may be called from any thread of any process holding
// a handle (threads of one handle share its two cached chunks, each behind a short mutex).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string_view>
#include <type_traits>

#include "shuttle/detail/named_object.hpp"
#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_chain.hpp"
#include "shuttle/error.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {
namespace detail {

/// What every unbounded queue handle has: the head, the two cached chunks, close/shutdown,
/// the chain walk and (Joinable) task accounting over the chunks. `Chunk` is the bounded queue
/// form each chunk is (Queue<T>, ByteQueue, or their Joinable forms).
template <class Chunk, bool Joinable>
class ChainHandle : public JoinTriad<ChainHandle<Chunk, Joinable>, Joinable> {
  public:
    ChainHandle(ChainHandle&&) noexcept = default;
    ChainHandle& operator=(ChainHandle&&) noexcept = default;
    ~ChainHandle() {
        if (sides_ && remover_pid_ != 0 && remover_pid_ == current_pid()) {
            chain_.remove_all_chunks();
        }
    }

    /// Closes this handle only (Python's Queue.close()): its later puts and gets return
    /// errc::closed and its own blocked gets wake with closed; other handles and processes are
    /// unaffected. Non-blocking, idempotent, thread-safe.
    void close() noexcept {
        sides_->closed.store(true, std::memory_order_release);
        std::scoped_lock lock(sides_->put.mutex, sides_->get.mutex);
        if (sides_->get.chunk) sides_->get.chunk->close();  // wakes our blocked gets
        if (sides_->put.chunk) sides_->put.chunk->close();
    }
    bool closed() const noexcept { return sides_->closed.load(std::memory_order_acquire); }

    /// Shuts the queue down for everyone (Python 3.13's Queue.shutdown()): later puts return
    /// errc::shut_down everywhere; gets drain what is left, then return errc::shut_down. Wakes
    /// every blocked get. `immediate` also discards what is queued and returns how many. Not
    /// undone; idempotent; works through a closed handle. Non-blocking unless immediate (then
    /// it waits for puts in progress, as the bounded queue's).
    std::size_t shutdown(bool immediate = false) {
        chain_.set_shut_down();
        // Seal the chunk producers fill. A producer moving on at this moment sees the flag
        // after its move and seals the new chunk itself (both sides seq_cst).
        if (auto chunk = open_chunk(chain_.put_index())) chunk->shutdown();
        if (!immediate) return 0;
        std::size_t discarded = 0;
        Side& side = sides_->get;
        std::lock_guard lock(side.mutex);
        for (int round = 0; round < max_rounds; ++round) {
            if (!side.chunk && follow_get() != errc::ok) break;
            discarded += side.chunk->shutdown(true);
            if (move_get_on(side.index) != errc::ok) break;
        }
        return discarded;
    }
    /// Whether the queue was shut down (by any handle in any process). Non-blocking.
    bool is_shutdown() const noexcept { return chain_.shut_down(); }

    /// Items queued, summed over the live chunks (approximate while others put or get; opens
    /// the chunks it counts). Non-blocking.
    std::size_t size() const {
        const uint64_t first = chain_.get_index();
        const uint64_t last = std::max(chain_.put_index(), first);
        std::size_t total = 0;
        for (uint64_t index = first; index <= last; ++index) {
            if (auto chunk = open_chunk(index)) total += chunk->size();
        }
        return total;
    }
    bool empty() const { return size() == 0; }
    /// Threads, in any process, blocked in get() on the chunk consumers drain now. Diagnostic.
    std::size_t waiting_getters() const {
        auto chunk = open_chunk(chain_.get_index());
        return chunk ? chunk->waiting_getters() : 0;
    }
    /// Items in the first chunk, and in every chunk made while consumers keep up: the step by
    /// which memory grows and shrinks (chunks made behind a backlog double, up to
    /// max_chunk_growth times this).
    std::size_t chunk_capacity() const noexcept { return chain_.chunk_capacity(); }
    /// How many times chunk_capacity() a chunk made behind a growing backlog may hold.
    static constexpr uint64_t max_chunk_growth = 64;
    /// Chunks that exist now (from the oldest undrained one to the one producers fill).
    std::size_t chunks() const noexcept {
        const uint64_t first = chain_.get_index();
        return static_cast<std::size_t>(std::max(chain_.put_index(), first) - first + 1);
    }
    // ---- UnboundedJoinableQueue only ----------------------------------------------------------
    // Each chunk is a JoinableQueue counting its own tasks (docs/recovery.md's accounting and
    // crash rules, per chunk); a drained chunk keeps its name until its tasks are all done.

    /// Marks one item taken by get() as processed. This handle remembers which chunk each of
    /// its gets came from and marks the oldest (any thread of the process may call it, as the
    /// bounded queue's); a handle that took none marks one in the oldest chunk with unfinished
    /// tasks. errc::task_done_overflow (nothing changes) if no task is unfinished.
    /// Non-blocking (opens chunks); thread- and process-safe.
    status task_done() requires Joinable {
        std::shared_ptr<Chunk> chunk;
        {
            std::lock_guard lock(sides_->taken_mutex);
            if (!sides_->taken.empty()) {
                chunk = std::move(sides_->taken.front());
                sides_->taken.pop_front();
            }
        }
        if (chunk) {
            const status done = chunk->task_done();
            if (done.error() != errc::task_done_overflow) {
                finish_chunks();
                return done;
            }
        }
        // Taken by another handle, or marked by another's task_done() meanwhile.
        const uint64_t last = chain_.put_index();
        for (uint64_t index = chain_.finished_index(); index <= last; ++index) {
            auto other = open_chunk(index);
            if (other && other->task_done()) {
                finish_chunks();
                return errc::ok;
            }
        }
        return errc::task_done_overflow;
    }
    /// Waits until every item put (through any handle, in any process) has been task_done()'d
    /// or settled (its consumer was killed holding it), at most until `deadline`; join() blocks
    /// and join_for() waits a timeout (detail/triads.hpp). ok, timeout or cancelled. Joins the
    /// chunks oldest first, each as a bounded JoinableQueue's join() (which settles what killed
    /// consumers held); a joiner killed while waiting leaves nothing behind.
    status join_until(steady_clock::time_point deadline,
                      const std::stop_token& stop = {}) requires Joinable {
        // Bounded: each round joins every chunk up to the put chunk, and ends unless producers
        // moved to a newer chunk meanwhile.
        for (int round = 0; round < max_rounds; ++round) {
            const uint64_t last = chain_.put_index();
            for (uint64_t index = chain_.finished_index(); index <= last; ++index) {
                auto chunk = open_chunk(index);
                if (!chunk) continue;  // finished meanwhile
                if (status joined = chunk->join_until(deadline, stop); !joined) return joined;
            }
            finish_chunks();
            // Chunks before `last` are sealed (their counts only fall): all were 0 at once.
            if (chain_.put_index() == last) return errc::ok;
        }
        return errc::timeout;
    }
    /// Items put but not yet task_done()'d nor settled, summed over the chunks (approximate
    /// while others put or get; opens the chunks it counts). Non-blocking.
    std::size_t unfinished_tasks() const requires Joinable {
        return sum_over_unfinished([](const Chunk& chunk) { return chunk.unfinished_tasks(); });
    }
    /// Tasks settled because their consumer was killed, in the chunks not yet finished.
    std::uint64_t settled_tasks() const requires Joinable {
        return sum_over_unfinished([](const Chunk& chunk) { return chunk.settled_tasks(); });
    }

    /// Name of a named queue's head ("" when anonymous); chunk n is `<name>.<n>`.
    const std::string& name() const noexcept { return chain_.head().name(); }
    /// The head's descriptor (an exec'd program attaches with open_fd()).
    int fd() const noexcept { return chain_.head().fd(); }

  protected:
    explicit ChainHandle(Segment head)
        : chain_(std::move(head)), sides_(std::make_unique<Sides>()) {
        // The creating process of an anonymous queue (or of a named one created with
        // remove_on_destroy) unlinks the chunks when its handle is destroyed.
        if (chain_.removes_chunks_here()) remover_pid_ = current_pid();
    }

    /// One put attempt through `attempt(Chunk&) -> status` (the chunk's try_put): moves on to a
    /// new chunk when the current one is full. Never blocks.
    template <class Attempt>
    status put_with(Attempt&& attempt) noexcept {
        if (closed()) return errc::closed;
        Side& side = sides_->put;
        std::lock_guard lock(side.mutex);
        // Bounded: each round puts, or moves to a newer chunk (other producers filled ours).
        for (int round = 0; round < max_rounds; ++round) {
            if (!side.chunk) {
                const errc rc = follow(side, chain_.put_index());
                if (rc == errc::empty) continue;  // retired as we looked: look again
                if (rc != errc::ok) return rc;
            }
            const status rc = attempt(*side.chunk);
            if (rc.error() != errc::full && rc.error() != errc::shut_down) return rc;
            const errc moved = move_put_on();
            if (moved != errc::ok && moved != errc::empty) return moved;  // empty: look again
        }
        return errc::full;  // others filled max_rounds chunks while we tried: try again
    }

    /// One get: `try_attempt(Chunk&) -> result<R>` (the chunk's try_get) under the get mutex,
    /// then, if `may_wait` and the chunk is empty, `wait_attempt(Chunk&, deadline, stop)` (its
    /// get_until) without the mutex. Moves on past drained chunks.
    template <class R, class Try, class Wait>
    result<R> get_with(Try&& try_attempt, Wait&& wait_attempt, bool may_wait,
                       steady_clock::time_point deadline, const std::stop_token& stop) {
        Side& side = sides_->get;
        // Bounded: each round gets, fails, or moves past a drained chunk.
        for (int round = 0; round < max_rounds; ++round) {
            if (closed()) return errc::closed;
            std::shared_ptr<Chunk> waiting_on;  // keeps the chunk mapped while we block on it
            uint64_t index = 0;
            {
                std::lock_guard lock(side.mutex);
                if (!side.chunk) {
                    if (errc rc = follow_get(); rc != errc::ok) return rc;
                }
                result<R> item = try_attempt(*side.chunk);
                if (item) note_taken(side.chunk);
                if (item || (item.error() != errc::empty && item.error() != errc::shut_down)) {
                    return item;
                }
                if (item.error() == errc::shut_down) {
                    if (errc moved = move_get_on(side.index); moved != errc::ok) return moved;
                    continue;
                }
                if (!may_wait) return item;
                waiting_on = side.chunk;
                index = side.index;
            }
            result<R> item = wait_attempt(*waiting_on, deadline, stop);
            if (item) note_taken(waiting_on);
            if (item || item.error() != errc::shut_down) return item;
            std::lock_guard lock(side.mutex);
            if (side.index == index) {
                if (errc moved = move_get_on(index); moved != errc::ok) return moved;
            }
        }
        return errc::empty;  // walked max_rounds drained chunks: try again
    }

    const QueueChain& chain() const noexcept { return chain_; }

  private:
    static constexpr int max_rounds = 1 << 16;

    struct Side {
        std::mutex mutex;
        uint64_t index = 0;
        std::shared_ptr<Chunk> chunk;  // shared: a blocked get keeps its chunk while others move
    };
    struct Sides {
        Side put;
        Side get;
        std::atomic<bool> closed{false};
        // Joinable: the chunk of each item this handle's gets took and task_done() has not
        // marked yet, oldest first.
        std::mutex taken_mutex;
        std::deque<std::shared_ptr<Chunk>> taken;
    };

    std::shared_ptr<Chunk> open_chunk(uint64_t index) const {
        try {
            return std::make_shared<Chunk>(
                Chunk::open(chain_.chunk_name(index), chain_.chunk_options()));
        } catch (const Error& error) {
            if (error.condition() == errc::not_found) return nullptr;  // retired meanwhile
            throw;
        }
    }
    /// Chunk `index`, created with `capacity` items if it does not exist yet (errc::no_space
    /// when memory is out); an existing one is taken as it is. errc::empty: it existed and was
    /// retired as we looked.
    result<std::shared_ptr<Chunk>> open_or_create_chunk(uint64_t index,
                                                        uint64_t capacity) const noexcept {
        try {
            const std::string name = chain_.chunk_name(index);
            try {
                if constexpr (std::is_same_v<Chunk, BasicByteQueue<Joinable>>) {
                    return std::make_shared<Chunk>(Chunk::create(
                        name, capacity, chain_.max_message_size(), chain_.chunk_options()));
                } else {
                    return std::make_shared<Chunk>(
                        Chunk::create(name, capacity, chain_.chunk_options()));
                }
            } catch (const Error& error) {
                if (error.condition() != errc::already_exists) throw;
            }
            auto chunk = open_chunk(index);  // another producer made it first
            if (!chunk) return errc::empty;
            return chunk;
        } catch (const Error& error) {
            return error.condition();
        } catch (const std::bad_alloc&) {
            return errc::no_space;
        }
    }
    /// The next chunk's size: double the full one's while consumers are a whole chunk or more
    /// behind (a growing backlog: fewer chunk changes, each costs a segment), else the base.
    uint64_t next_capacity(const Side& side) const noexcept {
        const uint64_t base = chain_.chunk_capacity();
        if (chain_.get_index() >= side.index) return base;
        return std::min({side.chunk->capacity() * 2, base * max_chunk_growth, max_queue_capacity});
    }

    /// Joinable: remembers the chunk a get took an item from, for its task_done().
    void note_taken(const std::shared_ptr<Chunk>& chunk) {
        if constexpr (Joinable) {
            std::lock_guard lock(sides_->taken_mutex);
            sides_->taken.push_back(chunk);
        }
    }
    /// Joinable: unlinks drained chunks whose tasks are all done, oldest first.
    void finish_chunks() noexcept {
        // Bounded: each round finishes a chunk or returns.
        for (int round = 0; round < max_rounds; ++round) {
            const uint64_t index = chain_.finished_index();
            if (index >= chain_.get_index()) return;  // not drained yet
            try {
                auto chunk = open_chunk(index);
                if (chunk && chunk->unfinished_tasks() != 0) return;
            } catch (const Error&) {
                return;  // cannot tell now: the next task_done() or join() looks again
            } catch (const std::bad_alloc&) {
                return;
            }
            if (chain_.finish(index)) chain_.remove_chunks(index, index + 1);
        }
    }
    template <class Count>
    std::size_t sum_over_unfinished(Count count) const {
        const uint64_t last = chain_.put_index();
        std::size_t total = 0;
        for (uint64_t index = chain_.finished_index(); index <= last; ++index) {
            if (auto chunk = open_chunk(index)) total += count(*chunk);
        }
        return total;
    }

    /// Points `side` at chunk `index` (not_found: it was retired; the caller re-reads).
    errc follow(Side& side, uint64_t index) noexcept {
        try {
            auto chunk = open_chunk(index);
            if (!chunk) return errc::empty;
            if (closed()) chunk->close();
            side.chunk = std::move(chunk);
            side.index = index;
            return errc::ok;
        } catch (const Error& error) {
            return error.condition();
        } catch (const std::bad_alloc&) {
            return errc::no_space;
        }
    }

    /// The put side's chunk is full or sealed: move to the chunk producers fill now, creating
    /// and moving to the next one if it is ours. Holds the put mutex.
    errc move_put_on() noexcept {
        Side& side = sides_->put;
        if (chain_.shut_down()) return errc::shut_down;
        const uint64_t current = chain_.put_index();
        if (current > side.index) return follow(side, current);
        // Ours is the newest chunk: make the next one before sealing this one, so consumers
        // that find this one sealed and drained always find a successor.
        auto next = open_or_create_chunk(side.index + 1, next_capacity(side));
        if (!next) return next.error();
        side.chunk->shutdown();  // seal (a no-op if another producer sealed it)
        chain_.advance_put(side.index);
        const uint64_t now = chain_.put_index();
        if (now != side.index + 1) {
            // Others moved further while we created: the chunk we got may be one already
            // drained and retired that our open_or_create made anew. Such a zombie is never
            // sealed (the real one was, before producers moved past it): unlink it.
            if (now > side.index + 1 && !(*next)->is_shutdown()) {
                chain_.remove_chunks(side.index + 1, side.index + 2);
            }
            return follow(side, now);
        }
        if (chain_.shut_down()) {
            (*next)->shutdown();  // a shutdown raced our move: no put into the new chunk
            return errc::shut_down;
        }
        if (closed()) (*next)->close();
        side.chunk = std::move(*next);
        side.index += 1;
        return errc::ok;
    }

    /// Opens the get side's chunk (first use, or after moving on). shut_down: the queue is done
    /// and its last chunk gone. Holds the get mutex.
    errc follow_get() noexcept {
        Side& side = sides_->get;
        for (int round = 0; !side.chunk && round < max_rounds; ++round) {
            const uint64_t index = std::max(chain_.get_index(), side.index);
            const errc rc = follow(side, index);
            if (rc == errc::empty && chain_.shut_down() && chain_.put_index() <= index) {
                return errc::shut_down;
            }
            if (rc != errc::ok && rc != errc::empty) return rc;
        }
        return side.chunk ? errc::ok : errc::empty;
    }

    /// Chunk `index` (the get side's) reported shut down and drained: the queue is done, or
    /// move past it (and unlink it if we are the first). Holds the get mutex.
    errc move_get_on(uint64_t index) noexcept {
        Side& side = sides_->get;
        if (chain_.put_index() <= index) {
            if (chain_.shut_down()) {
                // The queue is done and drained (a joinable queue's last chunk stays for its
                // joiners: remove() or the creating handle unlinks it).
                if constexpr (!Joinable) chain_.remove_chunks(index, index + 2);
                return errc::shut_down;
            }
            // A producer sealed this chunk and created the next but has not moved yet (or
            // was killed before it could): move for it.
            try {
                if (!open_chunk(index + 1)) return errc::empty;
            } catch (const Error& error) {
                return error.condition();
            }
            chain_.advance_put(index);
        }
        [[maybe_unused]] const auto [first, last] = chain_.retire_through(index);
        if constexpr (Joinable) {
            finish_chunks();  // a drained chunk's name goes once its tasks are done
        } else {
            chain_.remove_chunks(first, last);
        }
        side.chunk.reset();
        side.index = index + 1;
        return follow_get();
    }

    QueueChain chain_;
    std::unique_ptr<Sides> sides_;  // (a mutex does not move)
    pid_t remover_pid_ = 0;         // the process whose handle unlinks the chunks when destroyed
};

}  // namespace detail

/// An MPMC queue of trivially copyable T with no fixed capacity (Python's Queue();
/// JoinableQueue() when Joinable: task_done() and join() as JoinableQueue<T>'s). put never
/// blocks; when memory for a new chunk cannot be had, put returns errc::no_space.
template <class T, bool Joinable = false>
class BasicUnboundedQueue
    : public detail::NamedObject<BasicUnboundedQueue<T, Joinable>,
                                 detail::ChainHandle<BasicQueue<T, Joinable>, Joinable>,
                                 QueueOptions>,
      public detail::GetTriad<BasicUnboundedQueue<T, Joinable>> {
    using Chunk = BasicQueue<T, Joinable>;
    using Base = detail::NamedObject<BasicUnboundedQueue, detail::ChainHandle<Chunk, Joinable>,
                                     QueueOptions>;
    friend Base;
    static constexpr detail::QueueForm form{ObjectKind::queue, sizeof(T), alignof(T), Joinable,
                                            false};

  public:
    // The factories (detail::NamedObject): create(name, options), open(name, options),
    // open_or_create(name, options), anonymous(options), open_fd(fd, options). options:
    // chunk_capacity (items per chunk, default 1024), max_participants, mode, type_tag;
    // redelivery is refused (invalid_argument). open() checks the element fingerprint as
    // Queue<T>'s does, and the joinable form (Error(kind_mismatch)). create() throws
    // Error(already_exists) also if chunk `<name>.0` exists.

    /// Unlinks the head `name` and every chunk name (attached handles keep what they have
    /// mapped). False if there was no such name.
    static bool remove(std::string_view name, const QueueOptions& options = {}) {
        return detail::QueueChain::remove(name,
                                          detail::QueueChain::head_expectation(form, options));
    }

    /// Never blocks: ok, shut_down, closed (this handle), or no_space (no memory for a new
    /// chunk; nothing was put). If the caller is killed inside, the queue stays usable.
    status put(const T& item) noexcept {
        return this->put_with([&item](Chunk& chunk) { return chunk.try_put(item); });
    }
    /// The same as put() (which never blocks), for the triad's spelling.
    status try_put(const T& item) noexcept { return put(item); }
    /// Python's put_nowait(): throws ShutDown, Closed or Error(no_space).
    void put_nowait(const T& item) { detail::value_or_throw(put(item)); }

    // The get triad (detail/triads.hpp): get() blocks, get_for() waits a timeout, get_nowait()
    // throws Empty, ShutDown or Closed.

    /// Waits at most until `deadline` while the queue is empty: the item, or timeout, shut_down
    /// (shut down and drained), closed (this handle) or cancelled. A caller killed while blocked
    /// holds nothing.
    result<T> get_until(steady_clock::time_point deadline, const std::stop_token& stop = {}) {
        return take(deadline, stop, true);
    }
    /// Never blocks: the item, empty, shut_down or closed.
    result<T> try_get() { return take(no_deadline, {}, false); }

  private:
    result<T> take(steady_clock::time_point deadline, const std::stop_token& stop, bool may_wait) {
        return this->template get_with<T>(
            [](Chunk& chunk) { return chunk.try_get(); },
            [](Chunk& chunk, steady_clock::time_point until, const std::stop_token& token) {
                return chunk.get_until(until, token);
            },
            may_wait, deadline, stop);
    }
    explicit BasicUnboundedQueue(Segment head) : Base(std::move(head)) {}
    static Segment make_segment(std::string_view name, const QueueOptions& options) {
        return detail::QueueChain::make_head(
            name, form, 0, options,
            [&](const std::string& chunk, const QueueOptions& chunk_options) {
                (void)Chunk::create(chunk, options.chunk_capacity, chunk_options);
            });
    }
    static SegmentExpectation expectation(const QueueOptions& options) {
        return detail::QueueChain::head_expectation(form, options);
    }
    static void check_opened(const Segment& head, const QueueOptions&) {
        detail::QueueChain::check_head_form(head, form);
    }
};

template <class T>
using UnboundedQueue = BasicUnboundedQueue<T>;
template <class T>
using UnboundedJoinableQueue = BasicUnboundedQueue<T, true>;

/// An MPMC queue of byte messages (each at most max_message_size) with no fixed capacity. As
/// UnboundedQueue<T> (UnboundedJoinableQueue<T> when Joinable), with ByteQueue's put/get forms.
template <bool Joinable = false>
class BasicUnboundedByteQueue
    : public detail::NamedObject<BasicUnboundedByteQueue<Joinable>,
                                 detail::ChainHandle<BasicByteQueue<Joinable>, Joinable>,
                                 QueueOptions, std::size_t>,
      public detail::GetTriad<BasicUnboundedByteQueue<Joinable>, std::span<std::byte>> {
    using Chunk = BasicByteQueue<Joinable>;
    using Base = detail::NamedObject<BasicUnboundedByteQueue, detail::ChainHandle<Chunk, Joinable>,
                                     QueueOptions, std::size_t>;
    friend Base;
    static constexpr detail::QueueForm form{ObjectKind::byte_queue, 1, 1, Joinable, true};

  public:
    // The factories, as UnboundedQueue<T>'s with a max_message_size parameter; open() reads it
    // from the queue; open_or_create() throws Error(capacity_mismatch) if it exists with
    // another message size.

    static bool remove(std::string_view name, const QueueOptions& options = {}) {
        return detail::QueueChain::remove(name,
                                          detail::QueueChain::head_expectation(form, options));
    }

    /// The largest message a put accepts (fixed at creation). Non-blocking.
    std::size_t max_message_size() const noexcept { return this->chain().max_message_size(); }

    /// Never blocks: ok, too_large (nothing changes), shut_down, closed or no_space.
    status put(std::span<const std::byte> message) noexcept {
        return this->put_with([message](Chunk& chunk) { return chunk.try_put(message); });
    }
    status put(std::string_view message) noexcept {
        return put(std::as_bytes(std::span(message.data(), message.size())));
    }
    status try_put(std::span<const std::byte> message) noexcept { return put(message); }
    status try_put(std::string_view message) noexcept { return put(message); }
    /// Python's put_nowait(): throws ShutDown, Closed or Error(too_large, no_space).
    void put_nowait(std::span<const std::byte> message) { detail::value_or_throw(put(message)); }
    void put_nowait(std::string_view message) { detail::value_or_throw(put(message)); }

    // The get triad (detail/triads.hpp) into a buffer: get(buffer) blocks, get_for waits a
    // timeout, get_nowait throws Empty, ShutDown, Closed or Error(buffer_too_small).

    /// Takes one message into `buffer`, returning its length; waits at most until `deadline`
    /// while the queue is empty. errc::buffer_too_small if it does not fit (nothing consumed).
    result<std::size_t> get_until(std::span<std::byte> buffer, steady_clock::time_point deadline,
                                  const std::stop_token& stop = {}) {
        return take(buffer, deadline, stop, true);
    }
    /// Never blocks: the length, empty, shut_down, closed or buffer_too_small.
    result<std::size_t> try_get(std::span<std::byte> buffer) {
        return take(buffer, no_deadline, {}, false);
    }

  private:
    result<std::size_t> take(std::span<std::byte> buffer, steady_clock::time_point deadline,
                             const std::stop_token& stop, bool may_wait) {
        return this->template get_with<std::size_t>(
            [buffer](Chunk& chunk) { return chunk.try_get(buffer); },
            [buffer](Chunk& chunk, steady_clock::time_point until, const std::stop_token& token) {
                return chunk.get_until(buffer, until, token);
            },
            may_wait, deadline, stop);
    }
    explicit BasicUnboundedByteQueue(Segment head) : Base(std::move(head)) {}
    static Segment make_segment(std::string_view name, std::size_t max_message_size,
                                const QueueOptions& options) {
        return detail::QueueChain::make_head(
            name, form, max_message_size, options,
            [&](const std::string& chunk, const QueueOptions& chunk_options) {
                (void)Chunk::create(chunk, options.chunk_capacity, max_message_size, chunk_options);
            });
    }
    static SegmentExpectation expectation(const QueueOptions& options) {
        return detail::QueueChain::head_expectation(form, options);
    }
    static void check_opened(const Segment& head, const QueueOptions&) {
        detail::QueueChain::check_head_form(head, form);
    }
    static void check_existing(const BasicUnboundedByteQueue& queue, std::size_t max_message_size) {
        if (queue.max_message_size() != max_message_size) {
            throw Error(errc::capacity_mismatch,
                        "unbounded byte queue exists with another message size");
        }
    }
};

using UnboundedByteQueue = BasicUnboundedByteQueue<false>;
using UnboundedJoinableByteQueue = BasicUnboundedByteQueue<true>;

}  // namespace shuttle
