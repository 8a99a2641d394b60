// The crash torture run (issue: "survive a killed participant"): producer and consumer processes
// on one queue, a killer that SIGKILLs random participants every few milliseconds and starts
// replacements, replacements that kill themselves at a deterministic window of put, get or
// task_done (each window must fire often enough), then a final drain. Shared by the robust
// suite (which must never hang) and the unprotected build's test (which must).
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "queue_support.hpp"
#include "shuttle/detail/os.hpp"

namespace shuttle {
namespace {

/// The windows replacements die in. Each must fire >= required_fires times a run, unless
/// marked optional.
enum class Gets { any, plain, leased };  // which consumers reach the window: get() or get_task()
struct KillWindow {
    const char* point;
    bool producer;  // armed in producers (else consumers)
    bool joinable;  // only meaningful for a JoinableQueue
    bool loses;     // a death here loses the item (journaled; with redelivery: not get.claimed)
    Gets gets = Gets::any;
    bool optional = false;  // reached only now and then (by a consumer running recovery)
    bool batch = false;     // in put_many / get_many: only runs with batches reach it
};
inline constexpr std::array<KillWindow, 20> kill_windows{{
    {"queue.put.announced", true, false, false},
    {"queue.put.claimed", true, false, true},
    {"queue.put.published", true, false, false},
    {"queue.get.announced", false, false, false},
    {"queue.get.claimed", false, false, true},
    {"queue.get.counted", false, true, true, Gets::plain},
    {"queue.get.released", false, false, false, Gets::plain},
    {"queue.task_done.done", false, true, false, Gets::plain},
    // At-least-once redelivery (consumers use get_task() and task_done(task)): nothing lost.
    {"queue.lease.written", false, true, false, Gets::leased},
    {"queue.lease.released", false, true, false, Gets::leased},
    {"queue.task_done.acking", false, true, false, Gets::leased},
    {"queue.task_done.counted", false, true, false, Gets::leased},
    {"queue.recovery.redelivered", false, true, false, Gets::leased, true},
    // Batches (TortureOptions::batches: producers and consumers mix single and batch ops).
    {"queue.put_many.announced", true, false, false, Gets::any, false, true},
    {"queue.put_many.claimed", true, false, true, Gets::any, false, true},
    {"queue.put_many.published", true, false, true, Gets::any, false, true},
    {"queue.get_many.announced", false, false, false, Gets::plain, false, true},
    {"queue.get_many.claimed", false, false, true, Gets::plain, false, true},
    {"queue.get_many.counted", false, true, true, Gets::plain, false, true},
    {"queue.get_many.released", false, false, true, Gets::plain, false, true},
}};
inline constexpr std::size_t task_done_window = 7;  // kill_windows index

struct TortureOptions {
    int producers = 3;
    int consumers = 3;
    int required_fires = 20;                   // per window
    std::chrono::milliseconds minimum{800};    // run at least this long ...
    std::chrono::milliseconds maximum{20000};  // ... and at most this, until every window fired
    std::chrono::milliseconds kill_every{4};
    std::chrono::milliseconds hang_limit{15000};  // the final drain and join must end by then
    bool redelivery = false;  // consumers use get_task() (the queue has QueueOptions::redelivery)
    bool batches = false;     // producers and consumers mix put_many / get_many with single ops
};
/// The largest batch a batch torture run puts or gets.
inline constexpr std::size_t torture_batch = 16;

struct TortureReport {
    bool hung = false;
    uint64_t kills = 0;       // by the killer
    uint64_t self_kills = 0;  // at kill points
    uint64_t accepted = 0;    // puts that returned ok
    uint64_t received = 0;
    uint64_t duplicated = 0;
    uint64_t missing = 0;              // accepted, never received
    uint64_t missing_unexplained = 0;  // ... and not in the journal either
    uint64_t journaled_but_received = 0;
    uint64_t lost = 0;  // the queue's count
    uint64_t order_violations = 0;
    uint64_t consumer_deaths = 0;
    uint64_t task_done_refusals = 0;
    uint64_t task_refused_not_owner = 0;  // must stay 0: a live holder's lease was never taken
    uint64_t redelivered = 0;             // the queue's count (redelivery runs)
    bool joined = true;
    std::string diagnosis;  // what a hung run was stuck on
    std::array<uint64_t, kill_windows.size()> fires{};
    std::vector<double> repair_latency_ms;  // death at a losing window -> its journal record
};

/// Shared memory the participants report through.
struct TortureLedger {
    static constexpr uint32_t max_producers = 8192;
    static constexpr uint32_t max_sequence = 2048;  // items one producer puts, at most
    std::atomic<uint32_t> stop;
    std::atomic<uint64_t> order_violations;
    std::atomic<uint64_t> task_done_refusals;
    std::atomic<uint64_t> task_refused_not_owner;  // task_done(task) said the task is not ours
    std::array<std::atomic<uint64_t>, kill_windows.size()> fires;
    std::array<std::atomic<uint64_t>, max_producers> accepted;  // puts that returned, per id
    std::array<std::atomic<int64_t>, 1 << 16> death_ns;         // by pid % 2^16: kill-point time
    std::atomic<uint8_t> receipts[max_producers][max_sequence];
};

inline TortureLedger* torture_ledger = nullptr;  // in each child: where the hook writes

inline void record_kill_point(const char* point) {
    for (std::size_t i = 0; i < kill_windows.size(); ++i) {
        if (std::strcmp(kill_windows[i].point, point) == 0) {
            torture_ledger->fires[i].fetch_add(1);
        }
    }
    torture_ledger->death_ns[static_cast<uint32_t>(getpid()) & 0xffff].store(
        steady_clock::now().time_since_epoch().count());
}

template <class C>
class Torture {
    using Q = typename C::Queue;

  public:
    Torture(Q& queue, const Shape& shape, const std::string& name, TortureOptions options)
        : queue_(queue), shape_(shape), name_(name), options_(options) {
        ledger_segment_ = Segment::create_anonymous(
            test::counters_info(1),
            [](const SegmentInfo&) { return std::optional<uint64_t>(sizeof(TortureLedger)); }, {});
        ledger_ = reinterpret_cast<TortureLedger*>(ledger_segment_.body());
    }

    /// Whether window `window` applies to this run's queue and consumers.
    bool applies(const KillWindow& window) const {
        if (window.joinable && !C::joinable) return false;
        if (window.gets == Gets::plain && options_.redelivery) return false;
        if (window.gets == Gets::leased && !options_.redelivery) return false;
        if (window.batch && !options_.batches) return false;
        return true;
    }

    TortureReport run() {
        TortureReport report;
        std::mt19937_64 random(12345);
        for (int p = 0; p < options_.producers; ++p)
            producers_.push_back(start_producer(random, false));
        for (int c = 0; c < options_.consumers; ++c)
            consumers_.push_back(start_consumer(random, false));
        const auto started = steady_clock::now();
        auto next_kill = started;
        for (;;) {
            const auto now = steady_clock::now();
            if (now - started >= options_.maximum) break;
            if (now - started >= options_.minimum && every_window_fired()) break;
            if (now >= next_kill) {
                next_kill = now + options_.kill_every;
                auto& group = random() % 2 ? producers_ : consumers_;
                Process& victim = group[random() % group.size()];
                victim.kill();
                ++report.kills;
            }
            replace_the_dead(random, report, true);
            collect_journal();
            std::this_thread::yield();
        }
        // The end: producers stop, consumers (replaced while any die) finish everything.
        ledger_->stop.store(1);
        const auto drain_deadline = steady_clock::now() + options_.hang_limit;
        // Producers may be blocked on a full queue: consumers that die meanwhile (armed ones
        // still reach their kill point) are replaced while we wait, or nobody would drain it.
        for (Process& producer : producers_) {
            while (!report.hung && !producer.join_for(2ms)) {
                replace_the_dead(random, report, false, /*consumers only=*/true);
                collect_journal();
                if (steady_clock::now() > drain_deadline) report.hung = true;
            }
        }
        if constexpr (C::joinable) {
            report.joined = false;
            while (!report.hung) {
                if (queue_.join_for(2ms) == errc::ok) {
                    report.joined = true;
                    break;
                }
                replace_the_dead(random, report, false, /*consumers only=*/true);
                collect_journal();
                if (steady_clock::now() > drain_deadline) report.hung = true;
            }
        }
        while (!report.hung && queue_.size() != 0) {
            replace_the_dead(random, report, false, true);
            collect_journal();
            std::this_thread::yield();
            if (steady_clock::now() > drain_deadline) report.hung = true;
        }
        if (report.hung) {
            std::string diagnosis =
                fmt::format("size {} lost {}", queue_.size(), queue_.lost_count());
            if constexpr (C::joinable) {
                diagnosis += fmt::format(" unfinished {} settled {}", queue_.unfinished_tasks(),
                                         queue_.settled_tasks());
            }
            for (const Stall& stall : queue_.stalls()) {
                diagnosis += fmt::format(" stall(pid {} ticket {} put {})", stall.pid, stall.ticket,
                                         stall.putting);
            }
            report.diagnosis = diagnosis + "; " + queue_.describe_recovery();
        }
        queue_.shutdown();
        for (Process& consumer : consumers_) {
            if (!consumer.join_until(drain_deadline)) report.hung = true;
        }
        for (Process& process : producers_) process.kill();
        for (Process& process : consumers_) process.kill();
        collect_journal();
        tally(report);
        return report;
    }

  private:
    bool every_window_fired() const {
        for (std::size_t i = 0; i < kill_windows.size(); ++i) {
            if (!applies(kill_windows[i]) || kill_windows[i].optional) continue;
            if (ledger_->fires[i].load() < static_cast<uint64_t>(options_.required_fires)) {
                return false;
            }
        }
        return true;
    }

    /// A window for a replacement (or none: half of them run unarmed).
    const KillWindow* choose_window(std::mt19937_64& random, bool producer) {
        if (random() % 2 || std::getenv("SHUTTLE_TORTURE_UNARMED")) return nullptr;
        std::vector<const KillWindow*> choices;
        for (const KillWindow& window : kill_windows) {
            const char* only = std::getenv("SHUTTLE_TORTURE_ONLY");
            if (only && std::strcmp(only, window.point) != 0) continue;
            if (window.producer == producer && applies(window)) {
                choices.push_back(&window);
            }
        }
        if (choices.empty()) return nullptr;
        return choices[random() % choices.size()];
    }

    Process start_producer(std::mt19937_64& random, bool armed) {
        const uint32_t id = next_producer_++;
        const KillWindow* window = armed ? choose_window(random, true) : nullptr;
        const uint64_t skip = random() % 40;
        Process process(
            [this, id, window, skip] {
                if (id >= TortureLedger::max_producers) return 0;
                prepare_child(window, skip);
                std::optional<Q> storage;
                Q& q = C::in_child(shape_, queue_, name_, storage, queue_options());
                for (uint64_t sequence = 0; sequence < TortureLedger::max_sequence;) {
                    if (ledger_->stop.load()) break;
                    // A batch of 1..torture_batch every other time, in a batch run.
                    const std::size_t size =
                        options_.batches && sequence % 2 == 0
                            ? std::min<uint64_t>((sequence * 7 + id) % torture_batch + 1,
                                                 TortureLedger::max_sequence - sequence)
                            : 1;
                    if (size == 1) {
                        if (!put(q, {id, sequence})) return 1;
                    } else {
                        std::vector<Item> items;
                        for (uint64_t i = 0; i < size; ++i) items.push_back({id, sequence + i});
                        auto put = Batch<Q>::put(q, items);
                        if (!put || *put != size) return 1;
                    }
                    sequence += size;
                    ledger_->accepted[id].store(sequence);
                }
                return 0;
            },
            ProcessOptions{.daemon = true});
        process.start();
        return process;
    }

    Process start_consumer(std::mt19937_64& random, bool armed) {
        const KillWindow* window = armed ? choose_window(random, false) : nullptr;
        const uint64_t skip = random() % 40;
        Process process(
            [this, window, skip] {
                prepare_child(window, skip);
                std::optional<Q> storage;
                Q& q = C::in_child(shape_, queue_, name_, storage, queue_options());
                std::map<uint64_t, uint64_t> last;  // per producer: the last sequence received
                std::optional<TaskId> task;         // the task to acknowledge (redelivery)
                auto next = [&]() -> result<Item> {
                    if constexpr (C::joinable) {
                        if (options_.redelivery) {
                            auto got = get_task(q);
                            if (!got) return got.error();
                            task = got->second;
                            return got->first;
                        }
                    }
                    return get(q);
                };
                std::vector<Item> batch;  // what get_many took, not yet handled
                std::size_t handled = 0;
                uint64_t round = 0;
                auto next_of_run = [&]() -> result<Item> {
                    if (handled < batch.size()) return batch[handled++];
                    if (!options_.batches || round++ % 2 == 0) return next();
                    auto got = Batch<Q>::get_until(q, round % torture_batch + 1, no_deadline);
                    if (!got) return got.error();
                    batch = std::move(*got);
                    handled = 1;
                    return batch[0];
                };
                while (auto item = next_of_run()) {
                    if (item->producer >= TortureLedger::max_producers ||
                        item->sequence >= TortureLedger::max_sequence) {
                        ledger_->order_violations.fetch_add(1);
                        return 1;
                    }
                    auto [at, fresh] = last.try_emplace(item->producer, item->sequence);
                    if (!fresh && !options_.redelivery) {  // redelivered items come late
                        if (item->sequence <= at->second) ledger_->order_violations.fetch_add(1);
                        at->second = item->sequence;
                    }
                    ledger_->receipts[item->producer][item->sequence].fetch_add(1);
                    if constexpr (C::joinable) {
                        const status done = task ? q.task_done(*task) : q.task_done();
                        if (!done) ledger_->task_done_refusals.fetch_add(1);
                        if (!done && done.error() != errc::task_done_overflow) {
                            ledger_->task_refused_not_owner.fetch_add(1);
                        }
                    }
                }
                return 0;
            },
            ProcessOptions{.daemon = true});
        process.start();
        return process;
    }

    QueueOptions queue_options() const { return QueueOptions{.redelivery = options_.redelivery}; }

    void prepare_child(const KillWindow* window, uint64_t skip) {
        torture_ledger = ledger_;
        detail::set_kill_point_hook(record_kill_point);
        if (window) detail::arm_kill_point(window->point, skip);
    }

    /// Reaps participants that died (killed, or at their kill point) and starts replacements.
    void replace_the_dead(std::mt19937_64& random, TortureReport& report, bool armed,
                          bool consumers_only = false) {
        if (!consumers_only) {
            for (Process& producer : producers_) {
                if (producer.is_alive()) continue;
                producer.join();
                producer = start_producer(random, armed);
            }
        }
        for (Process& consumer : consumers_) {
            if (consumer.is_alive()) continue;
            consumer.join();
            if (consumer.exitcode() != 0) ++report.consumer_deaths;
            consumer = start_consumer(random, armed);
        }
    }

    /// The journal keeps 32 records: read it often enough to see every one.
    void collect_journal() {
        for (const LostItem& item : queue_.lost_items()) {
            journal_.try_emplace({item.pid, item.ticket}, item);
        }
    }

    void tally(TortureReport& report) {
        report.lost = queue_.lost_count();
        if constexpr (C::joinable) report.redelivered = queue_.redelivered_count();
        report.order_violations = ledger_->order_violations.load();
        report.task_done_refusals = ledger_->task_done_refusals.load();
        report.task_refused_not_owner = ledger_->task_refused_not_owner.load();
        for (std::size_t i = 0; i < kill_windows.size(); ++i) {
            report.fires[i] = ledger_->fires[i].load();
            report.self_kills += report.fires[i];
        }
        for (uint32_t id = 0; id < std::min(next_producer_, TortureLedger::max_producers); ++id) {
            const uint64_t accepted = ledger_->accepted[id].load();
            report.accepted += accepted;
            for (uint64_t sequence = 0; sequence < TortureLedger::max_sequence; ++sequence) {
                const uint8_t count = ledger_->receipts[id][sequence].load();
                report.received += count;
                if (count > 1) ++report.duplicated;
                if (count == 0 && sequence < accepted) ++report.missing;
            }
        }
        std::set<std::pair<uint64_t, uint64_t>> journaled;
        for (const auto& [key, item] : journal_) {
            if (item.operation != detail::LostOperation::get || item.contents.size() < 16) continue;
            Item lost;
            std::memcpy(&lost, item.contents.data(), sizeof lost);
            if (lost.producer >= next_producer_ || lost.sequence >= TortureLedger::max_sequence) {
                continue;
            }
            journaled.insert({lost.producer, lost.sequence});
            if (ledger_->receipts[lost.producer][lost.sequence].load() != 0) {
                ++report.journaled_but_received;
            }
        }
        for (uint32_t id = 0; id < std::min(next_producer_, TortureLedger::max_producers); ++id) {
            const uint64_t accepted = ledger_->accepted[id].load();
            for (uint64_t sequence = 0; sequence < accepted; ++sequence) {
                if (ledger_->receipts[id][sequence].load() == 0 &&
                    !journaled.count({id, sequence})) {
                    ++report.missing_unexplained;
                }
            }
        }
        for (const auto& [key, item] : journal_) {
            const int64_t death =
                ledger_->death_ns[static_cast<uint32_t>(item.pid) & 0xffff].load();
            if (death == 0) continue;  // killed by the killer: the moment is not known exactly
            const double latency = (item.repaired_at.time_since_epoch().count() - death) / 1e6;
            // pids wrap in a long run: a time from another process with the same pid is noise.
            if (latency >= 0 && latency < 1000) report.repair_latency_ms.push_back(latency);
        }
        std::sort(report.repair_latency_ms.begin(), report.repair_latency_ms.end());
    }

    Q& queue_;
    Shape shape_;
    std::string name_;
    TortureOptions options_;
    Segment ledger_segment_;
    TortureLedger* ledger_ = nullptr;
    std::vector<Process> producers_;
    std::vector<Process> consumers_;
    uint32_t next_producer_ = 0;
    std::map<std::pair<pid_t, uint64_t>, LostItem> journal_;
};

}  // namespace
}  // namespace shuttle
