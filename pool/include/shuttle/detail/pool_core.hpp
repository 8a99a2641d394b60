// shuttle::Pool's engine (pool/src/pool_core.cpp): the worker processes, the task and result
// queues, the result thread that also supervises the workers, and the wire format of tasks and
// results. The typed front end (shuttle/pool.hpp) encodes tasks and decodes results; this part
// knows only bytes, task ids and result sinks. docs/pool.md describes the design.
#pragma once

#include <sys/types.h>

#include <array>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "shuttle/array.hpp"
#include "shuttle/codec.hpp"
#include "shuttle/error.hpp"
#include "shuttle/process.hpp"
#include "shuttle/queue.hpp"

namespace shuttle {

/// What a Pool does with the task a worker was running when it died (SIGKILL, OOM, a crash in
/// the task): fail it with errc::worker_died, or run it again on another worker, at most
/// `retries` more times (at-least-once: a task may then run more than once).
struct WorkerDeath {
    uint32_t retries = 0;
    static constexpr WorkerDeath fail() noexcept { return {0}; }
    static constexpr WorkerDeath retry(uint32_t count) noexcept { return {count}; }
};

/// Pool construction options.
struct PoolOptions {
    /// Runs once in each worker (and each replacement) when it starts, before its first task.
    /// Workers are fork()ed, so any callable works here (its captures are copied by the fork).
    /// An exception escaping it ends that worker (exit code 1); the pool replaces it.
    std::function<void()> initializer;
    /// A worker exits after this many tasks (0: never) and a fresh one replaces it (Python's
    /// maxtasksperchild). A map chunk counts as one task.
    uint64_t maxtasksperchild = 0;
    /// A task whose worker dies: failed (default) or retried.
    WorkerDeath on_worker_death = WorkerDeath::fail();
    /// The largest task message and result message in bytes (the callable, the encoded
    /// arguments of one task or a chunk of a map, or its results). Bigger single tasks are
    /// refused with Error(too_large); map chunks are cut to fit.
    std::size_t max_message_size = 32 * 1024;
    /// Task and result queue capacity in messages: submitters block while the task queue is full.
    std::size_t queue_capacity = 256;
};

/// The exception a task threw, as get() rethrows it in the parent: errc::task_failed, the
/// exception's type name (demangled) and its what().
class TaskError : public Error {
  public:
    TaskError(std::string type_name, std::string message)
        : Error(errc::task_failed, type_name + ": " + message),
          type_name_(std::move(type_name)),
          message_(std::move(message)) {}
    const std::string& type_name() const noexcept { return type_name_; }
    const std::string& message() const noexcept { return message_; }

  private:
    std::string type_name_;
    std::string message_;
};

namespace detail {

/// What a worker publishes for each item of a task: a result record starts with one of these.
enum class ItemStatus : uint8_t {
    value = 0,      // the encoded result follows
    raised = 1,     // the task threw: type name and what() follow (two strings)
    too_large = 2,  // the result does not fit a result message: its size follows (varint)
};

class ResultWriter;

/// Runs `count` items of one task in a worker: reads the callable's bytes and each item's
/// arguments, writes each item's result record. Instantiated per (callable, arguments) in the
/// program that made the pool; workers are fork()s of it, so the pointer is valid in them.
using Invoker = void (*)(const std::byte* callable, Reader& arguments, uint32_t count,
                         ResultWriter& out);

/// A task message: this header, the callable's bytes, then `count` encoded argument lists.
struct TaskHeader {
    uint64_t id = 0;
    Invoker invoker = nullptr;
    uint32_t count = 0;
    uint32_t callable_size = 0;
};

/// A result message: this header, then `count` item records for items first..first+count-1 of
/// task `id` (none when `died`: every item not yet delivered failed with worker_died).
struct ResultHeader {
    uint64_t id = 0;
    uint32_t first = 0;
    uint32_t count = 0;
    int32_t worker_pid = 0;
    uint32_t died = 0;
};

/// The demangled name of a type, for TaskError.
std::string demangled_name(const std::type_info& type);

/// Collects a worker's item records into result messages, publishing a message whenever the
/// next record does not fit. Worker side; not thread-safe.
class ResultWriter {
  public:
    using Publish = void (*)(void* context, std::span<const std::byte> message);
    ResultWriter(std::span<std::byte> buffer, uint64_t task_id, Publish publish, void* context)
        : buffer_(buffer), publish_(publish), context_(context) {
        header_.id = task_id;
        header_.worker_pid = static_cast<int32_t>(::getpid());
    }

    /// A result: its record, in this message or (if it does not fit) the next one.
    template <class R>
    void value(const R& result) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            Writer writer(room());
            writer.write(ItemStatus::value);
            value_codec<R>::encode(writer, result);
            if (writer.fits()) return commit(writer.size());
            if (header_.count == 0) return too_large(writer.size());
            flush();
        }
    }
    /// The exception the item's task threw.
    void raised(const std::exception* error);
    /// Every item not yet published failed: its worker died (published at once).
    void worker_died();
    /// Publishes what is collected (nothing if empty and something was published before).
    void flush();
    /// How many items have records so far.
    uint32_t items() const noexcept { return header_.first + header_.count; }

  private:
    std::span<std::byte> room() noexcept { return buffer_.subspan(sizeof(ResultHeader) + used_); }
    void commit(std::size_t size) noexcept {
        used_ += size;
        ++header_.count;
    }
    void too_large(std::size_t size);
    void record(ItemStatus status, std::string_view first, std::string_view second);

    std::span<std::byte> buffer_;
    Publish publish_;
    void* context_;
    ResultHeader header_;
    std::size_t used_ = 0;
    bool published_ = false;
};

/// Where the result thread delivers a task's item results (the typed front end implements it:
/// one AsyncResult, a map's vector, an imap's stream). Called on the result thread only.
class ResultSink {
  public:
    virtual ~ResultSink() = default;
    /// Decodes item `index`'s result from `in`. `duplicate`: an earlier run already delivered
    /// it (decode to skip, keep the first). False if the bytes are not a result.
    virtual bool deliver(std::size_t index, Reader& in, bool duplicate) = 0;
    /// Item `index` failed with `error` (TaskError, Error(worker_died), Error(closed)).
    virtual void fail(std::size_t index, std::exception_ptr error) = 0;
};

/// Decodes a result record's value part: a T, or its failure as an exception_ptr.
std::exception_ptr read_failure(ItemStatus status, Reader& in);

/// The engine: processes, queues, the result thread. Thread-safe (submit from any thread).
class PoolCore {
  public:
    PoolCore(std::size_t processes, PoolOptions options);
    ~PoolCore();
    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    std::size_t processes() const noexcept { return processes_; }
    std::size_t max_message_size() const noexcept { return options_.max_message_size; }

    /// Registers `sink` for items base..base+count-1 and puts `message` (its TaskHeader's id is
    /// filled in here). Blocks while the task queue is full (non-blocking if `!block`: false
    /// then, nothing registered). Throws Error(closed) after close()/terminate().
    bool submit(std::span<std::byte> message, std::shared_ptr<ResultSink> sink, std::size_t base,
                uint32_t count, bool block = true);

    void close();
    void terminate();
    bool join_until(std::chrono::steady_clock::time_point deadline);
    bool running() const;
    bool on_result_thread() const noexcept {
        return std::this_thread::get_id() == result_thread_.get_id();
    }

    /// Pids of the live workers now (a snapshot). Thread-safe.
    std::vector<pid_t> worker_pids() const;
    /// Workers started since creation (initial ones and replacements).
    uint64_t workers_started() const noexcept { return started_.load(); }
    /// Tasks submitted and not yet settled.
    std::size_t pending() const;

  private:
    struct Pending {
        std::shared_ptr<ResultSink> sink;
        std::size_t base = 0;
        uint32_t count = 0;
        uint32_t delivered = 0;
        std::vector<bool> done;  // per item
    };
    struct Worker {
        Process process;
        std::size_t slot = 0;
    };
    enum class State { running, closed, terminated };

    int worker_main(std::size_t slot);
    uint64_t adopt(std::size_t slot, uint64_t task_id);
    static void publish(void* context, std::span<const std::byte> message);

    void result_loop();
    void handle(std::span<const std::byte> message);
    void supervise();
    void start_worker();
    std::size_t free_slot();
    void fail_everything_pending(const std::exception_ptr& error);

    std::size_t processes_;
    PoolOptions options_;
    JoinableByteQueue tasks_;
    ByteQueue results_;
    /// Per worker slot: [2s] the task id it runs (0: none), [2s+1] how many workers died
    /// running that task before (workers adopt a dead worker's slot entry: docs/pool.md).
    Array<uint64_t> slots_;
    std::vector<bool> slot_taken_;  // by a live worker (result thread / constructor only)

    mutable std::mutex mutex_;  // state_, pending_, workers_
    std::condition_variable finished_changed_;
    State state_ = State::running;
    bool finished_ = false;  // the result thread has ended
    std::unordered_map<uint64_t, Pending> pending_;
    std::vector<Worker> workers_;
    uint64_t next_id_ = 1;
    std::atomic<uint64_t> started_{0};
    std::thread result_thread_;
};

}  // namespace detail
}  // namespace shuttle
