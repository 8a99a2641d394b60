#include "harness.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "shuttle/wait.hpp"

namespace shuttle::bench {

using namespace std::chrono_literals;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

namespace {
double ticks_per_ns = 0;  // 0: ticks() is now_ns()
}

std::uint64_t ticks() {
#if defined(__x86_64__)
    if (ticks_per_ns > 0) return __rdtsc();
#endif
    return static_cast<std::uint64_t>(now_ns());
}

void calibrate_ticks() {
#if defined(__x86_64__)
    if (ticks_per_ns > 0) return;
    auto t0 = now_ns();
    auto c0 = __rdtsc();
    std::this_thread::sleep_for(20ms);
    auto t1 = now_ns();
    auto c1 = __rdtsc();
    if (c1 > c0 && t1 > t0) ticks_per_ns = double(c1 - c0) / double(t1 - t0);
#endif
}

std::int64_t ticks_to_now_ns(std::uint64_t then) {
    auto now_ticks = ticks();
    auto now = now_ns();
    if (ticks_per_ns <= 0) return static_cast<std::int64_t>(then);
    return now - static_cast<std::int64_t>(double(now_ticks - then) / ticks_per_ns);
}

void arrive_and_wait(Control& control) {
    control.arrived.fetch_add(1);
    wake_all(control.arrived);
    while (control.go.load(std::memory_order_acquire) == 0) {
        wait_on(control.go, 0, deadline_after(100ms));
    }
}

void record_error(WorkerSlot& slot, const std::string& message) {
    std::snprintf(slot.error, sizeof slot.error, "%s", message.c_str());
}

Workers::~Workers() {
    kill();
    for (auto& thread : thread_handles_) {
        if (thread.joinable()) thread.detach();  // a hung in-process worker: nothing safe to do
    }
}

void Workers::start(std::function<void()> body, WorkerSlot& slot) {
    slots_.push_back(&slot);
    auto guarded = [body = std::move(body), &slot]() -> int {
        try {
            body();
            return 0;
        } catch (const std::exception& error) {
            record_error(slot, error.what());
            return 1;
        }
    };
    if (threads_) {
        thread_handles_.emplace_back([guarded, finished = threads_finished_]() mutable {
            guarded();
            finished->fetch_add(1);
        });
    } else {
        processes_.push_back(spawn(guarded, ProcessOptions{.daemon = true}));
    }
}

bool Workers::join_until(std::chrono::steady_clock::time_point deadline) {
    if (threads_) {
        while (threads_finished_->load() < static_cast<int>(thread_handles_.size())) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            std::this_thread::sleep_for(200us);
        }
        for (auto& thread : thread_handles_) thread.join();
        thread_handles_.clear();
    } else {
        for (auto& process : processes_) {
            if (!process.join_until(deadline)) {
                kill();
                return false;
            }
        }
    }
    for (std::size_t i = 0; i < processes_.size(); ++i) {
        auto code = processes_[i].exitcode();
        if (code && *code != 0 && failure_.empty()) {
            failure_ = slots_[i]->error[0] ? std::string(slots_[i]->error)
                                           : fmt::format("a worker exited with {}", *code);
        }
    }
    for (auto* slot : slots_) {
        if (slot->error[0] && failure_.empty()) failure_ = slot->error;
    }
    return true;
}

void Workers::kill() {
    for (auto& process : processes_) {
        if (process.pid() != 0 && !process.exitcode()) {
            process.kill();
            process.join();
        }
    }
}

std::string Workers::failure() const {
    return failure_;
}

double cpu_seconds(bool self) {
    rusage usage{};
    getrusage(self ? RUSAGE_SELF : RUSAGE_CHILDREN, &usage);
    auto seconds = [](timeval t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// ---- the generic runs ----------------------------------------------------------------------

void Channel::stop_consumers(int consumers, std::size_t payload) {
    auto endpoint = attach(Role::producer, -1);
    std::vector<std::byte> message(payload);
    write_header(message.data(), payload, sentinel_header);
    for (int i = 0; i < consumers; ++i) endpoint->put(message.data(), payload);
}

std::optional<std::string> ChannelPeer::skip_reason(const RunSpec& spec) const {
    if (spec.kind == Kind::tickets) return "not a lock";
    if (spec.kind == Kind::idle && in_process()) {
        return "threads in this process: not measured idle";
    }
    return channel_skip_reason(spec);
}

namespace {

std::chrono::steady_clock::time_point deadline_of(const RunSpec& spec) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(spec.timeout_seconds));
}

bool wait_arrivals(Control& control, std::uint32_t count,
                   std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto arrived = control.arrived.load();
        if (arrived >= count) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        wait_on(control.arrived, arrived, deadline_after(10ms));
    }
}

/// Waits until `count` workers arrived at the start barrier, then releases them.
bool release_start(Control& control, std::uint32_t count,
                   std::chrono::steady_clock::time_point deadline) {
    if (!wait_arrivals(control, count, deadline)) return false;
    control.start_ns = now_ns();
    control.go.store(1, std::memory_order_release);
    wake_all(control.go);
    return true;
}

void consume(Channel& channel, Control& control, const RunSpec& spec, int index) {
    auto endpoint = channel.attach(Role::consumer, index);
    WorkerSlot& slot = control.consumers[index];
    const bool joinable = spec.kind == Kind::joinable;
    const bool native = endpoint->native_task_accounting();
    std::vector<std::byte> buffer(spec.payload + 64);
    std::vector<std::uint64_t> next_sequence(spec.producers, 0);
    std::uint64_t count = 0, checksum = 0, errors = 0, last = ticks();
    const bool publish_progress = channel.sentinel_may_overtake();
    const bool ordered = channel.per_producer_order();
    arrive_and_wait(control);
    for (;;) {
        std::size_t size = endpoint->get(buffer.data(), buffer.size());
        std::uint64_t header = size >= 8 ? read_header(buffer.data()) : 0;
        if (header == sentinel_header) {
            if (joinable && native) endpoint->task_done();
            break;
        }
        last = ticks();
        auto producer = header_producer(header);
        auto sequence = header_sequence(header);
        if (size != spec.payload || !trailer_matches(buffer.data(), size) ||
            producer >= static_cast<std::uint64_t>(spec.producers) ||
            (ordered && sequence < next_sequence[producer]) ||
            sequence >= spec.items_per_producer) {
            ++errors;
        } else {
            next_sequence[producer] = sequence + 1;
        }
        ++count;
        checksum += mix(header);
        if (publish_progress) slot.progress.store(count, std::memory_order_relaxed);
        if (joinable) {
            if (native) {
                endpoint->task_done();
            } else if (control.unfinished.fetch_sub(1) == 1 && control.joiners.load() != 0) {
                wake_all(control.unfinished);
            }
        }
    }
    slot.count = count;
    slot.checksum = checksum;
    slot.errors = errors;
    slot.last_ns = ticks_to_now_ns(last);
}

void produce(Channel& channel, Control& control, const RunSpec& spec, int index) {
    auto endpoint = channel.attach(Role::producer, index);
    WorkerSlot& slot = control.producers[index];
    const bool joinable = spec.kind == Kind::joinable;
    const bool native = endpoint->native_task_accounting();
    std::vector<std::byte> message(spec.payload);
    arrive_and_wait(control);
    std::uint64_t sent = 0;
    for (; sent < spec.items_per_producer; ++sent) {
        // A relaxed load of a line written once: the time budget costs no more than this.
        if (control.stop.load(std::memory_order_relaxed) != 0) break;
        write_header(message.data(), spec.payload, make_header(index, sent));
        if (joinable && !native) control.unfinished.fetch_add(1);
        endpoint->put(message.data(), spec.payload);
    }
    slot.count = sent;
    control.producers_done.fetch_add(1);
    wake_all(control.producers_done);
    if (joinable) {
        if (native) {
            endpoint->join();
        } else {
            control.joiners.store(1);
            for (;;) {
                auto unfinished = control.unfinished.load();
                if (unfinished == 0) break;
                wait_on(control.unfinished, unfinished, deadline_after(10ms));
            }
        }
    }
    slot.last_ns = now_ns();
}

/// For transports whose sentinel can overtake data (ZeroMQ fair-queues between connections):
/// wait until the consumers have every item, or until 2 s pass without progress (then the
/// sentinels go anyway and the count check reports what was lost).
void wait_until_received(Control& control, const RunSpec& spec) {
    std::uint64_t expected = 0;
    for (int p = 0; p < spec.producers; ++p) expected += control.producers[p].count;
    std::uint64_t seen = 0;
    auto stalled_since = std::chrono::steady_clock::now();
    for (;;) {
        std::uint64_t received = 0;
        for (int i = 0; i < spec.consumers; ++i) {
            received += control.consumers[i].progress.load(std::memory_order_relaxed);
        }
        if (received >= expected) return;
        auto now = std::chrono::steady_clock::now();
        if (received != seen) {
            seen = received;
            stalled_since = now;
        } else if (now - stalled_since > 2s) {
            return;
        }
        std::this_thread::sleep_for(100us);
    }
}

Measurement run_throughput(ChannelPeer& peer, const RunSpec& spec) {
    Measurement measurement;
    if (spec.producers > max_participants || spec.consumers > max_participants) {
        measurement.error = "too many participants";
        return measurement;
    }
    const bool threads = peer.in_process();
    auto deadline = deadline_of(spec);
    Shared<Control> control;
    auto channel = peer.create(spec);
    double cpu_before = cpu_seconds(threads);
    Workers consumers(threads), producers(threads), stopper(threads);
    for (int i = 0; i < spec.consumers; ++i) {
        consumers.start([&, i] { consume(*channel, *control, spec, i); }, control->consumers[i]);
    }
    // Consumers first, attached and waiting, before any producer attaches (ZeroMQ's PUSH
    // sockets connect to endpoints the consumers bind).
    if (!wait_arrivals(*control, spec.consumers, deadline)) {
        measurement.error = "consumers did not reach the start barrier in time";
        return measurement;
    }
    for (int i = 0; i < spec.producers; ++i) {
        producers.start([&, i] { produce(*channel, *control, spec, i); }, control->producers[i]);
    }
    if (!release_start(*control, spec.consumers + spec.producers, deadline)) {
        measurement.error = "workers did not reach the start barrier in time";
        return measurement;
    }
    channel->started();
    if (spec.budget_seconds > 0) {
        // Producers stop early once the budget is spent (a slow peer then moves fewer items);
        // the checks below expect exactly what each producer sent.
        auto budget_end = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(spec.budget_seconds));
        for (;;) {
            auto done = control->producers_done.load();
            if (done >= static_cast<std::uint32_t>(spec.producers)) break;
            auto now = std::chrono::steady_clock::now();
            if (now >= budget_end) {
                control->stop.store(1);
                break;
            }
            wait_on(control->producers_done, done,
                    deadline_after(std::min<std::chrono::steady_clock::duration>(
                        budget_end - now, std::chrono::milliseconds(20))));
        }
    }
    bool in_time = producers.join_until(deadline);
    if (in_time) {
        // The sentinels go from their own process, so a stuck put cannot hang the runner.
        stopper.start(
            [&] {
                if (channel->sentinel_may_overtake()) wait_until_received(*control, spec);
                channel->stop_consumers(spec.consumers, spec.payload);
            },
            control->stopper);
        in_time = stopper.join_until(deadline) && consumers.join_until(deadline);
    }
    if (!in_time) {
        producers.kill();
        consumers.kill();
        stopper.kill();
        measurement.error = fmt::format("timed out after {:.0f} s", spec.timeout_seconds);
        return measurement;
    }
    measurement.cpu_seconds = cpu_seconds(threads) - cpu_before;
    for (auto* workers : {&producers, &consumers, &stopper}) {
        if (!workers->failure().empty()) {
            measurement.error = workers->failure();
            return measurement;
        }
    }
    std::uint64_t received = 0, checksum = 0, errors = 0, expected_checksum = 0;
    std::int64_t end = control->start_ns;
    for (int i = 0; i < spec.consumers; ++i) {
        received += control->consumers[i].count;
        checksum += control->consumers[i].checksum;
        errors += control->consumers[i].errors;
        end = std::max(end, control->consumers[i].last_ns);
    }
    if (spec.kind == Kind::joinable) {
        for (int i = 0; i < spec.producers; ++i) end = std::max(end, control->producers[i].last_ns);
    }
    std::uint64_t expected = 0;
    for (int p = 0; p < spec.producers; ++p) {
        const std::uint64_t sent = control->producers[p].count;
        expected += sent;
        for (std::uint64_t s = 0; s < sent; ++s) expected_checksum += mix(make_header(p, s));
    }
    if (received != expected) {
        measurement.error = fmt::format("received {} of {} items", received, expected);
    } else if (checksum != expected_checksum) {
        measurement.error = "checksum mismatch";
    } else if (errors != 0) {
        measurement.error = fmt::format("{} malformed or out-of-order items", errors);
    } else {
        measurement.ok = true;
    }
    measurement.items = received;
    measurement.seconds = double(end - control->start_ns) / 1e9;
    if (measurement.ok && measurement.seconds <= 0) {
        measurement.ok = false;
        measurement.error = "no time elapsed";
    }
    return measurement;
}

Measurement run_ping_pong(ChannelPeer& peer, const RunSpec& spec) {
    Measurement measurement;
    const bool threads = peer.in_process();
    auto deadline = deadline_of(spec);
    const std::uint64_t warm_up = std::min<std::uint64_t>(100, spec.items_per_producer);
    const std::uint64_t rounds = spec.items_per_producer + warm_up;
    Shared<Control> control;
    Shared<std::int64_t> samples(rounds);
    RunSpec one = spec;
    one.producers = one.consumers = 1;
    auto request = peer.create(one);
    auto reply = peer.create(one);
    double cpu_before = cpu_seconds(threads);
    Workers workers(threads);
    workers.start(
        [&] {  // ponger
            auto in = request->attach(Role::consumer, 0);
            auto out = reply->attach(Role::producer, 0);
            std::vector<std::byte> buffer(spec.payload + 64);
            arrive_and_wait(*control);
            for (;;) {
                auto size = in->get(buffer.data(), buffer.size());
                if (read_header(buffer.data()) == sentinel_header) break;
                out->put(buffer.data(), size);
            }
        },
        control->consumers[0]);
    workers.start(
        [&] {  // pinger
            auto out = request->attach(Role::producer, 0);
            auto in = reply->attach(Role::consumer, 0);
            std::vector<std::byte> message(spec.payload), buffer(spec.payload + 64);
            arrive_and_wait(*control);
            const std::int64_t budget_end =
                spec.budget_seconds > 0
                    ? now_ns() + static_cast<std::int64_t>(spec.budget_seconds * 1e9)
                    : std::numeric_limits<std::int64_t>::max();
            std::uint64_t i = 0;
            for (; i < rounds; ++i) {
                write_header(message.data(), spec.payload, make_header(0, i));
                auto t0 = now_ns();
                if (i > warm_up && t0 > budget_end) break;
                out->put(message.data(), spec.payload);
                auto size = in->get(buffer.data(), buffer.size());
                samples[i] = now_ns() - t0;
                if (size != spec.payload || read_header(buffer.data()) != make_header(0, i)) {
                    throw std::runtime_error("ping-pong: wrong reply");
                }
            }
            control->producers[0].count = i;
            write_header(message.data(), spec.payload, sentinel_header);
            out->put(message.data(), spec.payload);
        },
        control->producers[0]);
    if (!release_start(*control, 2, deadline)) {
        measurement.error = "workers did not reach the start barrier in time";
        return measurement;
    }
    if (!workers.join_until(deadline)) {
        measurement.error = fmt::format("timed out after {:.0f} s", spec.timeout_seconds);
        return measurement;
    }
    measurement.cpu_seconds = cpu_seconds(threads) - cpu_before;
    if (!workers.failure().empty()) {
        measurement.error = workers.failure();
        return measurement;
    }
    const std::uint64_t done = std::min<std::uint64_t>(control->producers[0].count, rounds);
    std::vector<std::int64_t> measured(samples.get() + std::min(warm_up, done),
                                       samples.get() + done);
    std::sort(measured.begin(), measured.end());
    std::int64_t total = 0;
    for (auto sample : measured) total += sample;
    measurement.ok = !measured.empty();
    measurement.items = measured.size();
    measurement.seconds = double(total) / 1e9;
    if (measurement.ok) {
        measurement.p50_us = double(measured[measured.size() / 2]) / 1e3;
        measurement.p99_us = double(measured[measured.size() * 99 / 100]) / 1e3;
    }
    return measurement;
}

/// CPU time (user + system, ns resolution) of another process, from its CPU-time clock.
std::optional<double> process_cpu_seconds(pid_t pid) {
    clockid_t clock{};
    if (clock_getcpuclockid(pid, &clock) != 0) return std::nullopt;
    timespec time{};
    if (clock_gettime(clock, &time) != 0) return std::nullopt;
    return double(time.tv_sec) + double(time.tv_nsec) / 1e9;
}

/// idle-cpu: a consumer blocks in get() on an empty channel for spec.budget_seconds while a
/// producer holds its end open and sends nothing; then the producer sends the stop (a
/// sentinel, or EOF as it exits). The figure is the consumer's CPU time over the window,
/// read from its CPU-time clock (the whole window, spin and yield phases included).
Measurement run_idle(ChannelPeer& peer, const RunSpec& spec) {
    Measurement measurement;
    if (peer.in_process()) {
        measurement.error = "in-process peers are not measured idle";
        return measurement;
    }
    auto deadline = deadline_of(spec);
    Shared<Control> control;
    auto channel = peer.create(spec);
    Workers consumer(false), producer(false);
    consumer.start(
        [&] {
            auto endpoint = channel->attach(Role::consumer, 0);
            std::vector<std::byte> buffer(spec.payload + 64);
            arrive_and_wait(*control);
            auto size = endpoint->get(buffer.data(), buffer.size());
            if (size < 8 || read_header(buffer.data()) != sentinel_header) {
                throw std::runtime_error("idle consumer got an item from an empty channel");
            }
        },
        control->consumers[0]);
    if (!wait_arrivals(*control, 1, deadline)) {
        measurement.error = "the consumer did not reach the start barrier in time";
        return measurement;
    }
    producer.start(
        [&] {
            auto endpoint = channel->attach(Role::producer, 0);
            arrive_and_wait(*control);
            while (control->stop.load() == 0) wait_on(control->stop, 0, deadline_after(1s));
            std::vector<std::byte> message(spec.payload);
            write_header(message.data(), spec.payload, sentinel_header);
            endpoint->put(message.data(), spec.payload);
        },
        control->producers[0]);
    channel->started();
    if (!release_start(*control, 2, deadline)) {
        measurement.error = "workers did not reach the start barrier in time";
        return measurement;
    }
    const pid_t pid = consumer.pid(0);
    auto before = process_cpu_seconds(pid);
    auto t0 = now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(spec.budget_seconds));
    auto after = process_cpu_seconds(pid);
    auto t1 = now_ns();
    control->stop.store(1);
    wake_all(control->stop);
    if (!producer.join_until(deadline) || !consumer.join_until(deadline)) {
        measurement.error = fmt::format("timed out after {:.0f} s", spec.timeout_seconds);
        return measurement;
    }
    for (auto* workers : {&producer, &consumer}) {
        if (!workers->failure().empty()) {
            measurement.error = workers->failure();
            return measurement;
        }
    }
    if (!before || !after) {
        measurement.error = "could not read the consumer's CPU clock";
        return measurement;
    }
    measurement.ok = true;
    measurement.items = 1;
    measurement.seconds = double(t1 - t0) / 1e9;
    measurement.cpu_seconds = *after - *before;
    return measurement;
}

}  // namespace

Measurement ChannelPeer::run(const RunSpec& spec) {
    if (spec.kind == Kind::idle) return run_idle(*this, spec);
    if (spec.kind == Kind::ping_pong) return run_ping_pong(*this, spec);
    return run_throughput(*this, spec);
}

// ---- notes-tickets -------------------------------------------------------------------------

std::optional<std::string> LockPeer::skip_reason(const RunSpec& spec) const {
    if (spec.kind != Kind::tickets) return "not a channel";
    return std::nullopt;
}

Measurement LockPeer::run(const RunSpec& spec) {
    Measurement measurement;
    const int buyers = spec.producers;
    auto deadline = deadline_of(spec);
    Shared<Control> control;
    control->tickets.store(spec.items_per_producer);
    auto lock = create_lock();
    double cpu_before = cpu_seconds(false);
    Workers workers(false);
    for (int i = 0; i < buyers; ++i) {
        workers.start(
            [&, i] {
                lock->attach();
                auto& slot = control->producers[i];
                arrive_and_wait(*control);
                std::uint64_t sold = 0;
                for (;;) {
                    lock->lock();
                    auto left = control->tickets.load(std::memory_order_relaxed);
                    if (left == 0) {
                        lock->unlock();
                        break;
                    }
                    control->tickets.store(left - 1, std::memory_order_relaxed);
                    lock->unlock();
                    ++sold;
                }
                slot.count = sold;
                slot.last_ns = now_ns();
            },
            control->producers[i]);
    }
    if (!release_start(*control, buyers, deadline)) {
        measurement.error = "workers did not reach the start barrier in time";
        return measurement;
    }
    if (!workers.join_until(deadline)) {
        measurement.error = fmt::format("timed out after {:.0f} s", spec.timeout_seconds);
        return measurement;
    }
    measurement.cpu_seconds = cpu_seconds(false) - cpu_before;
    if (!workers.failure().empty()) {
        measurement.error = workers.failure();
        return measurement;
    }
    std::uint64_t sold = 0;
    std::int64_t end = control->start_ns;
    for (int i = 0; i < buyers; ++i) {
        sold += control->producers[i].count;
        end = std::max(end, control->producers[i].last_ns);
    }
    measurement.items = sold;
    measurement.seconds = double(end - control->start_ns) / 1e9;
    if (sold != spec.items_per_producer || control->tickets.load() != 0) {
        measurement.error = fmt::format("sold {} of a stock of {}", sold, spec.items_per_producer);
    } else {
        measurement.ok = measurement.seconds > 0;
        if (!measurement.ok) measurement.error = "no time elapsed";
    }
    return measurement;
}

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::queue:
            return "queue";
        case Kind::joinable:
            return "joinable";
        case Kind::pipe:
            return "pipe";
        case Kind::ping_pong:
            return "ping-pong";
        case Kind::tickets:
            return "tickets";
        case Kind::idle:
            return "idle";
    }
    return "?";
}

std::string RunSpec::label() const {
    auto size =
        payload >= 1024 ? fmt::format("{} KiB", payload / 1024) : fmt::format("{} B", payload);
    switch (kind) {
        case Kind::ping_pong:
            return fmt::format("ping-pong {}", size);
        case Kind::tickets:
            return fmt::format("{} buyers, stock {}", producers, items_per_producer);
        case Kind::pipe:
            return fmt::format("1->1 {}", size);
        case Kind::idle:
            return fmt::format("1 consumer blocked {:.1f} s, {}", budget_seconds, size);
        default:
            return fmt::format("{}x{} cap {} {}", producers, consumers, capacity, size);
    }
}

}  // namespace shuttle::bench
