// shuttle::Pool's engine: workers, queues, the result thread (docs/pool.md).
#include <cxxabi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/pool_core.hpp"

namespace shuttle::detail {
namespace {

using namespace std::chrono_literals;

/// How often the result thread looks for dead workers while results flow (it also looks
/// whenever the result queue has been idle this long).
constexpr auto supervision_period = 10ms;
/// Worker slots beyond the pool size: a dead worker's slot stays reserved until another worker
/// has taken over its task (so a task's death count survives), while its replacement needs one.
constexpr std::size_t spare_slots = 64;
/// Each thread using a queue takes one of its 32 registry entries: workers, plus the parent's
/// result thread and submitting threads.
constexpr std::size_t max_processes = 24;

std::size_t checked_processes(std::size_t processes) {
    if (processes == 0) {
        processes = std::max<std::size_t>(1, std::thread::hardware_concurrency());
        processes = std::min(processes, max_processes);
    }
    if (processes > max_processes) {
        throw Error(errc::invalid_argument,
                    "shuttle::Pool: at most " + std::to_string(max_processes) +
                        " worker processes (each queue has 32 participant entries)");
    }
    return processes;
}

const PoolOptions& checked_options(const PoolOptions& options) {
    if (options.max_message_size < sizeof(TaskHeader) + 64 || options.queue_capacity == 0) {
        throw Error(errc::invalid_argument,
                    "shuttle::Pool: max_message_size must be at least 88 bytes and "
                    "queue_capacity at least 1");
    }
    return options;
}

std::string_view read_text(Reader& in, bool& ok) {
    std::size_t length = 0;
    if (!in.read_count(length, 1)) {
        ok = false;
        return {};
    }
    const std::byte* text = in.take(length);
    return {reinterpret_cast<const char*>(text), length};
}

}  // namespace

std::string demangled_name(const std::type_info& type) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
    return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

// ---- ResultWriter (worker side) -------------------------------------------------------------

void ResultWriter::record(ItemStatus status, std::string_view first, std::string_view second) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        Writer writer(room());
        writer.write(status);
        writer.write_varint(first.size());
        writer.write_bytes(first.data(), first.size());
        writer.write_varint(second.size());
        writer.write_bytes(second.data(), second.size());
        if (writer.fits()) return commit(writer.size());
        if (header_.count == 0) {  // cut an over-long message down to what fits
            const std::size_t spare = room().size() > 32 ? room().size() - 32 : 0;
            first = first.substr(0, std::min(first.size(), spare / 2));
            second = second.substr(0, std::min(second.size(), spare / 2));
            continue;
        }
        flush();
    }
    if (header_.count != 0) flush();
    Writer writer(room());
    writer.write(status);
    writer.write_varint(0);
    writer.write_varint(0);
    commit(writer.size());
}

void ResultWriter::raised(const std::exception* error) {
    if (error == nullptr) return record(ItemStatus::raised, "unknown exception", "");
    record(ItemStatus::raised, demangled_name(typeid(*error)), error->what());
}

void ResultWriter::too_large(std::size_t size) {
    record(ItemStatus::too_large, "result of " + std::to_string(size) + " bytes", "");
}

void ResultWriter::flush() {
    if (header_.count == 0 && published_) return;
    std::memcpy(buffer_.data(), &header_, sizeof header_);
    publish_(context_, buffer_.first(sizeof header_ + used_));
    published_ = true;
    header_.first += header_.count;
    header_.count = 0;
    used_ = 0;
}

void ResultWriter::worker_died() {
    if (header_.count != 0) flush();
    ResultHeader died = header_;
    died.died = 1;
    std::memcpy(buffer_.data(), &died, sizeof died);
    publish_(context_, buffer_.first(sizeof died));
    published_ = true;
}

std::exception_ptr read_failure(ItemStatus status, Reader& in) {
    bool ok = true;
    const std::string_view first = read_text(in, ok);
    const std::string_view second = read_text(in, ok);
    if (!ok) return std::make_exception_ptr(Error(errc::bad_message, "pool result record"));
    if (status == ItemStatus::too_large) {
        return std::make_exception_ptr(Error(
            errc::too_large,
            "shuttle::Pool: the " + std::string(first) + " exceeds PoolOptions::max_message_size"));
    }
    return std::make_exception_ptr(TaskError(std::string(first), std::string(second)));
}

// ---- PoolCore: construction and the worker loop ----------------------------------------------

PoolCore::PoolCore(std::size_t processes, PoolOptions options)
    : processes_(checked_processes(processes)),
      options_(std::move(checked_options(options))),
      tasks_(JoinableByteQueue::anonymous(options_.queue_capacity, options_.max_message_size,
                                          {.redelivery = true})),
      results_(ByteQueue::anonymous(options_.queue_capacity, options_.max_message_size)),
      slots_(Array<uint64_t>::anonymous(2 * (processes_ + spare_slots))),
      slot_taken_(processes_ + spare_slots, false) {
    {
        std::lock_guard lock(mutex_);
        for (std::size_t i = 0; i < processes_; ++i) start_worker();
    }
    result_thread_ = std::thread([this] { result_loop(); });
}

PoolCore::~PoolCore() {
    terminate();
}

void PoolCore::start_worker() {
    const std::size_t slot = free_slot();
    slot_taken_[slot] = true;
    Process process([this, slot] { return worker_main(slot); },
                    ProcessOptions{.daemon = true, .name = "shuttle pool worker"});
    process.start();
    started_.fetch_add(1);
    workers_.push_back(Worker{std::move(process), slot});
}

std::size_t PoolCore::free_slot() {
    for (std::size_t slot = 0; slot < slot_taken_.size(); ++slot) {
        if (!slot_taken_[slot] && slots_.load(2 * slot) == 0) return slot;
    }
    // Every spare slot still records a dead worker's task: give up the oldest record (that
    // task's death count restarts; docs/pool.md).
    for (std::size_t slot = 0; slot < slot_taken_.size(); ++slot) {
        if (!slot_taken_[slot]) {
            slots_.store(2 * slot, 0);
            return slot;
        }
    }
    throw Error(errc::system, "shuttle::Pool: no worker slot free");  // unreachable
}

void PoolCore::publish(void* context, std::span<const std::byte> message) {
    auto* core = static_cast<PoolCore*>(context);
    // Closed: the pool was terminated; the worker is about to be killed anyway.
    if (!core->results_.put(message)) std::_Exit(0);
}

uint64_t PoolCore::adopt(std::size_t slot, uint64_t task_id) {
    // A task another slot records was leased by a worker that died (the queue redelivers only
    // on proven death): take its record over, one more death.
    uint64_t deaths = 0;
    bool redelivered = false;
    const std::size_t slots = slot_taken_.size();
    for (std::size_t other = 0; other < slots; ++other) {
        if (other == slot || slots_.load(2 * other) != task_id) continue;
        deaths = std::max(deaths, slots_.load(2 * other + 1) + 1);
        redelivered = true;
    }
    slots_.store(2 * slot + 1, deaths);
    slots_.store(2 * slot, task_id);
    if (redelivered) {
        for (std::size_t other = 0; other < slots; ++other) {
            uint64_t expected = task_id;
            if (other != slot) slots_.compare_exchange(2 * other, expected, 0);
        }
    }
    return deaths;
}

int PoolCore::worker_main(std::size_t slot) {
    if (options_.initializer) options_.initializer();
    std::vector<std::byte> task(options_.max_message_size);
    std::vector<std::byte> results(options_.max_message_size);
    for (uint64_t done = 0; options_.maxtasksperchild == 0 || done < options_.maxtasksperchild;
         ++done) {
        SHUTTLE_KILL_POINT("pool.worker.idle");
        auto got = tasks_.get_task(task);
        if (!got) return got.error() == errc::closed ? 0 : 2;
        SHUTTLE_KILL_POINT("pool.worker.took");
        TaskHeader header;
        if (got->length < sizeof header) return 3;
        std::memcpy(&header, task.data(), sizeof header);
        const uint64_t deaths = adopt(slot, header.id);
        SHUTTLE_KILL_POINT("pool.worker.adopted");

        ResultWriter out(results, header.id, &PoolCore::publish, this);
        if (deaths > options_.on_worker_death.retries) {
            out.worker_died();
        } else {
            const std::byte* callable = task.data() + sizeof header;
            Reader arguments(std::span<const std::byte>(callable + header.callable_size,
                                                        task.data() + got->length));
            header.invoker(callable, arguments, header.count, out);
            SHUTTLE_KILL_POINT("pool.worker.finished");
            out.flush();
        }
        SHUTTLE_KILL_POINT("pool.worker.published");
        slots_.store(2 * slot, 0);  // before the acknowledgement: see adopt()
        (void)tasks_.task_done(*got);
    }
    return 0;
}

// ---- submission and shutdown (any thread) ----------------------------------------------------

bool PoolCore::submit(std::span<std::byte> message, std::shared_ptr<ResultSink> sink,
                      std::size_t base, uint32_t count, bool block) {
    uint64_t id = 0;
    {
        std::lock_guard lock(mutex_);
        if (state_ != State::running) throw Closed("shuttle::Pool is closed");
        id = next_id_++;
        Pending pending{std::move(sink), base, count, 0, {}};
        if (count > 1) pending.done.assign(count, false);
        pending_.emplace(id, std::move(pending));
    }
    std::memcpy(message.data() + offsetof(TaskHeader, id), &id, sizeof id);
    const status put = block ? tasks_.put(message) : tasks_.try_put(message);
    if (put) return true;
    std::lock_guard lock(mutex_);
    pending_.erase(id);
    if (put == errc::full) return false;
    if (put == errc::too_large) {
        throw Error(errc::too_large, "shuttle::Pool: the task's message of " +
                                         std::to_string(message.size()) +
                                         " bytes exceeds PoolOptions::max_message_size");
    }
    throw Closed("shuttle::Pool is closed");
}

void PoolCore::close() {
    std::lock_guard lock(mutex_);
    if (state_ == State::running) state_ = State::closed;
    tasks_.close();
}

bool PoolCore::running() const {
    std::lock_guard lock(mutex_);
    return state_ == State::running;
}

void PoolCore::terminate() {
    if (on_result_thread()) {
        throw Error(errc::invalid_argument,
                    "shuttle::Pool::terminate() from a callback (the result thread)");
    }
    {
        std::lock_guard lock(mutex_);
        state_ = State::terminated;
    }
    (void)tasks_.shutdown(true);
    results_.close();  // wakes the result thread
    if (result_thread_.joinable()) result_thread_.join();
    std::vector<Worker> workers;
    {
        std::lock_guard lock(mutex_);
        workers.swap(workers_);
    }
    for (Worker& worker : workers) worker.process.kill();
    for (Worker& worker : workers) worker.process.join();
    fail_everything_pending(std::make_exception_ptr(Closed("shuttle::Pool was terminated")));
    std::lock_guard lock(mutex_);
    finished_ = true;
    finished_changed_.notify_all();
}

bool PoolCore::join_until(std::chrono::steady_clock::time_point deadline) {
    {
        std::unique_lock lock(mutex_);
        if (state_ == State::running) {
            throw Error(errc::invalid_argument,
                        "shuttle::Pool::join() before close() or terminate()");
        }
        if (!finished_changed_.wait_until(lock, deadline, [this] { return finished_; })) {
            return false;
        }
    }
    if (result_thread_.joinable() && !on_result_thread()) result_thread_.join();
    return true;
}

std::vector<pid_t> PoolCore::worker_pids() const {
    std::lock_guard lock(mutex_);
    std::vector<pid_t> pids;
    for (const Worker& worker : workers_) pids.push_back(worker.process.pid());
    return pids;
}

std::size_t PoolCore::pending() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
}

void PoolCore::fail_everything_pending(const std::exception_ptr& error) {
    std::unordered_map<uint64_t, Pending> pending;
    {
        std::lock_guard lock(mutex_);
        pending.swap(pending_);
    }
    for (auto& [id, task] : pending) {
        for (uint32_t item = 0; item < task.count; ++item) {
            if (task.count > 1 ? !task.done[item] : task.delivered == 0) {
                task.sink->fail(task.base + item, error);
            }
        }
    }
}

// ---- the result thread -----------------------------------------------------------------------

void PoolCore::result_loop() {
    std::vector<std::byte> buffer(options_.max_message_size);
    auto next_check = std::chrono::steady_clock::now() + supervision_period;
    for (;;) {
        auto got = results_.get_for(buffer, supervision_period);
        if (got) {
            handle(std::span<const std::byte>(buffer.data(), *got));
        } else if (got.error() == errc::closed) {
            return;  // terminate()
        }
        if (!got || std::chrono::steady_clock::now() >= next_check) {
            supervise();
            next_check = std::chrono::steady_clock::now() + supervision_period;
            std::lock_guard lock(mutex_);
            if (state_ == State::closed && pending_.empty() && workers_.empty()) {
                finished_ = true;
                finished_changed_.notify_all();
                return;
            }
        }
    }
}

void PoolCore::handle(std::span<const std::byte> message) {
    ResultHeader header;
    if (message.size() < sizeof header) return;
    std::memcpy(&header, message.data(), sizeof header);
    std::shared_ptr<ResultSink> sink;
    std::size_t base = 0;
    std::vector<bool> duplicate(header.died ? 0 : header.count, false);
    std::vector<uint32_t> died;
    {
        std::lock_guard lock(mutex_);
        auto found = pending_.find(header.id);
        if (found == pending_.end()) return;  // settled already: a redelivered task's duplicate
        Pending& task = found->second;
        sink = task.sink;
        base = task.base;
        auto mark = [&task](uint32_t item) {
            const bool seen = task.count > 1 ? task.done[item] : task.delivered != 0;
            if (!seen) {
                if (task.count > 1) task.done[item] = true;
                ++task.delivered;
            }
            return seen;
        };
        if (header.died) {
            for (uint32_t item = header.first; item < task.count; ++item) {
                if (!mark(item)) died.push_back(item);
            }
        } else {
            for (uint32_t k = 0; k < header.count && header.first + k < task.count; ++k) {
                duplicate[k] = mark(header.first + k);
            }
        }
        if (task.delivered == task.count) pending_.erase(found);
    }
    if (header.died) {
        auto error = std::make_exception_ptr(
            Error(errc::worker_died, "shuttle::Pool: the worker running the task died"));
        for (uint32_t item : died) sink->fail(base + item, error);
        return;
    }
    Reader in(message.subspan(sizeof header));
    for (uint32_t k = 0; k < duplicate.size(); ++k) {
        uint8_t status = 0;
        bool ok = in.read(status);
        const std::size_t index = base + header.first + k;
        if (ok && status == static_cast<uint8_t>(ItemStatus::value)) {
            ok = sink->deliver(index, in, duplicate[k]);
        } else if (ok && status <= static_cast<uint8_t>(ItemStatus::too_large)) {
            auto error = read_failure(static_cast<ItemStatus>(status), in);
            if (!duplicate[k]) sink->fail(index, error);
        } else {
            ok = false;
        }
        if (!ok) {  // cannot happen between processes of one program; never crash on it
            std::fprintf(stderr, "shuttle::Pool: a result message did not decode\n");
            return;
        }
    }
}

void PoolCore::supervise() {
    std::lock_guard lock(mutex_);
    std::size_t dead = 0;
    bool abnormal = false;
    for (auto worker = workers_.begin(); worker != workers_.end();) {
        if (worker->process.is_alive()) {
            ++worker;
            continue;
        }
        ++dead;
        abnormal = abnormal || worker->process.exitcode() != 0;
        slot_taken_[worker->slot] = false;
        worker = workers_.erase(worker);
    }
    if (dead == 0 && !(state_ == State::closed && workers_.empty() && !pending_.empty())) return;
    // Redeliver what dead workers held now, not when a survivor next happens to look.
    for (int attempt = 0; attempt < 100 && !tasks_.recover(); ++attempt) std::this_thread::yield();
    if (state_ == State::running) {
        while (workers_.size() < processes_) start_worker();
    } else if (state_ == State::closed && !pending_.empty()) {
        // Closing: replace workers that died abnormally (their tasks come back), and keep one
        // alive while tasks are unsettled.
        const std::size_t wanted = abnormal ? std::min(processes_, workers_.size() + dead) : 1;
        while (workers_.size() < wanted) start_worker();
    }
}

}  // namespace shuttle::detail
