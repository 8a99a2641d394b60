// Dict and List crash safety: a child SIGKILLed at every crash point of every mutating call
// (the redo log's commit steps, the scratch writes, the file's growth, the repair itself) leaves
// the container as before or as after the call, never in between, and usable by every process;
// and a torture run of workers killed at random crash points while others keep going.
#include <signal.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "shuttle/array.hpp"
#include "shuttle/dict.hpp"
#include "shuttle/list.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using TestDict = Dict<int, std::string>;
using TestList = List<std::string>;

struct Contents {
    std::map<int, std::string> dict;
    std::vector<std::string> list;
    bool operator==(const Contents&) const = default;
};

Contents contents_of(const TestDict& dict, const TestList& list) {
    auto items = dict.items();
    Contents contents{{items.begin(), items.end()}, list.snapshot()};
    EXPECT_EQ(contents.dict.size(), dict.size());
    EXPECT_EQ(contents.list.size(), list.size());
    return contents;
}

struct Case {
    const char* name;
    std::function<void(TestDict&, TestList&)> prepare;
    std::function<void(TestDict&, TestList&)> operation;
};

void fill_dict(TestDict& dict, int count) {
    for (int key = 0; key < count; ++key) dict.set(key, "value" + std::to_string(key));
}
void fill_list(TestList& list, int count) {
    for (int index = 0; index < count; ++index) list.append("item" + std::to_string(index));
}

std::vector<Case> cases() {
    auto three = [](TestDict& dict, TestList& list) {
        fill_dict(dict, 3);
        fill_list(list, 3);
    };
    // Garbage past the compaction threshold: the next mutation compacts first.
    auto garbage = [](TestDict& dict, TestList& list) {
        fill_dict(dict, 3);
        fill_list(list, 3);
        for (int round = 0; round < 2; ++round) {
            dict.set(1, std::string(1500, 'g'));
            list.set(1, std::string(1500, 'g'));
        }
    };
    return {
        {"dict insert", three, [](TestDict& d, TestList&) { d.set(10, "ten"); }},
        {"dict insert growing the table", [](TestDict& d, TestList&) { fill_dict(d, 6); },
         [](TestDict& d, TestList&) { d.set(10, "ten"); }},
        {"dict replace", three, [](TestDict& d, TestList&) { d.set(1, "one"); }},
        {"dict update", three,
         [](TestDict& d, TestList&) {
             d.update(2, [](const std::optional<std::string>& old) { return *old + "!"; });
         }},
        {"dict erase", three, [](TestDict& d, TestList&) { d.erase(1); }},
        {"dict pop", three, [](TestDict& d, TestList&) { (void)d.pop(0); }},
        {"dict clear", three, [](TestDict& d, TestList&) { d.clear(); }},
        {"dict set compacting", garbage, [](TestDict& d, TestList&) { d.set(2, "two"); }},
        {"dict set growing the file", three,
         [](TestDict& d, TestList&) { d.set(5, std::string(300 << 10, 'b')); }},
        {"list append", three, [](TestDict&, TestList& l) { l.append("new"); }},
        {"list append growing the array", [](TestDict&, TestList& l) { fill_list(l, 8); },
         [](TestDict&, TestList& l) { l.append("new"); }},
        {"list set", three, [](TestDict&, TestList& l) { l.set(1, "one"); }},
        {"list insert", three, [](TestDict&, TestList& l) { l.insert(1, "new"); }},
        {"list pop last", three, [](TestDict&, TestList& l) { (void)l.pop(); }},
        {"list pop first", three, [](TestDict&, TestList& l) { (void)l.pop(0); }},
        {"list clear", three, [](TestDict&, TestList& l) { l.clear(); }},
        {"list append compacting", garbage, [](TestDict&, TestList& l) { l.append("new"); }},
    };
}

constexpr const char* crash_points[] = {
    "store.entry.written",    "store.grow.allocated",  "store.commit.logged",
    "store.commit.published", "store.commit.applying", "store.commit.applied",
};

// Every case, every crash point, the first few times each is reached: before or after, whole.
TEST(DictRecovery, KilledAtEveryCrashPointOfEveryCallLeavesBeforeOrAfterAndUsable) {
    const int max_skip = test::sanitized() ? 1 : 2;
    for (const Case& item : cases()) {
        Contents before;
        Contents after;
        {
            auto dict = TestDict::anonymous();
            auto list = TestList::anonymous();
            item.prepare(dict, list);
            before = contents_of(dict, list);
            item.operation(dict, list);
            after = contents_of(dict, list);
        }
        ASSERT_NE(before, after) << item.name;
        int kills = 0;
        for (const char* point : crash_points) {
            for (int skip = 0; skip < max_skip; ++skip) {
                SCOPED_TRACE(testing::Message() << item.name << " at " << point << " #" << skip);
                auto dict = TestDict::anonymous({.max_bytes = 8 << 20});
                auto list = TestList::anonymous({}, {.max_bytes = 8 << 20});
                item.prepare(dict, list);
                const int exit_code = test::run_child([&] {
                    detail::arm_kill_point(point, static_cast<uint64_t>(skip));
                    item.operation(dict, list);
                    return 0;
                });
                ASSERT_TRUE(exit_code == 0 || exit_code == -SIGKILL) << exit_code;
                kills += exit_code == -SIGKILL;
                const Contents now = contents_of(dict, list);
                if (exit_code == 0) {
                    EXPECT_EQ(now, after);
                } else {
                    EXPECT_TRUE(now == before || now == after);
                }
                // Usable, by this process and (once per case, forks are slow) by another.
                dict.set(-1, "still works");
                list.append("still works");
                if (skip == 0 && std::string_view(point) == "store.commit.published") {
                    EXPECT_EQ(test::run_child([&] {
                                  return dict.get(-1) == "still works" &&
                                                 list.get(-1) == "still works"
                                             ? 0
                                             : 1;
                              }),
                              0);
                }
            }
        }
        EXPECT_GE(kills, 3) << item.name << ": the crash points were not reached";
    }
}

// The commit point decides: killed after publishing the log, the call is applied (by the next
// caller's repair); killed before, it is not.
TEST(DictRecovery, TheLogsPublicationIsTheCommitPoint) {
    for (const char* point : {"store.commit.logged", "store.commit.published"}) {
        auto dict = TestDict::anonymous();
        dict.set(1, "old");
        EXPECT_EQ(test::run_child([&] {
                      detail::arm_kill_point(point);
                      dict.set(1, "new");
                      return 0;
                  }),
                  -SIGKILL);
        EXPECT_EQ(dict.get(1), std::string(point) == "store.commit.logged" ? "old" : "new")
            << point;
        EXPECT_FALSE(dict.get_lock().previous_owner_died()) << "repaired and marked consistent";
    }
}

// A process killed while repairing another's crash leaves the repair to the next caller.
TEST(DictRecovery, KilledDuringRepairTheNextCallerRepairs) {
    auto list = TestList::anonymous({"a", "b", "c"});
    EXPECT_EQ(test::run_child([&] {
                  detail::arm_kill_point("store.commit.applying");
                  list.insert(0, "z");
                  return 0;
              }),
              -SIGKILL);
    EXPECT_EQ(test::run_child([&] {
                  detail::arm_kill_point("store.repair.applying");
                  (void)list.size();
                  return 0;
              }),
              -SIGKILL);
    EXPECT_EQ(list.snapshot(), (std::vector<std::string>{"z", "a", "b", "c"}));
}

// Three workers change a dict and a list at random; each is SIGKILLed at a random crash point
// and replaced, 30 times, while the others keep going. Invariants: every value is whole (its
// text says its own length), each worker's counter is its confirmed count or one more (the call
// it died in was applied whole or not at all), sizes agree, and everything stays usable.
TEST(DictRecovery, TortureRandomKillsKeepEveryInvariant) {
    constexpr int workers = 3;
    const int deaths = test::sanitized() ? 10 : 30;
    auto dict = Dict<std::string, std::string>::anonymous({.max_bytes = 32 << 20});
    auto list = TestList::anonymous({}, {.max_bytes = 32 << 20});
    auto confirmed = Array<int64_t>::anonymous(workers);
    auto whole = [](const std::string& value) {
        return value == std::string(value.size(), static_cast<char>('a' + value.size() % 26));
    };
    auto worker_body = [&](int worker, uint64_t seed) {
        std::mt19937_64 random(seed);
        // Every point but the file's growth, which a worker may never reach.
        constexpr const char* points[] = {"store.entry.written", "store.commit.logged",
                                          "store.commit.published", "store.commit.applying",
                                          "store.commit.applied"};
        detail::arm_kill_point(points[random() % std::size(points)], random() % 200);
        const std::string counter = "counter" + std::to_string(worker);
        for (;;) {
            const std::size_t length = random() % 300;
            const std::string value(length, static_cast<char>('a' + length % 26));
            const std::string key = std::to_string(random() % 64);
            switch (random() % 6) {
                case 0: dict.set(key, value); break;
                case 1: dict.erase(key); break;
                case 2: list.append(value); break;
                case 3:
                    if (list.size() > 40) (void)list.pop(static_cast<int64_t>(random() % 8));
                    break;
                case 4:
                    dict.update(counter, [](const std::optional<std::string>& old) {
                        return std::to_string(old ? std::stoll(*old) + 1 : 1);
                    });
                    confirmed.fetch_add(static_cast<std::size_t>(worker), 1);
                    break;
                default: try { list.set(static_cast<int64_t>(random() % 8), value);
                    } catch (const Error&) {  // fewer than 8 elements
                    }
            }
        }
        return 0;
    };
    std::mt19937_64 seeds(2026);
    std::vector<Process> running;
    for (int worker = 0; worker < workers; ++worker) {
        running.push_back(spawn([&, worker, seed = seeds()] { return worker_body(worker, seed); },
                                {.daemon = true}));
    }
    int died = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (died < deaths) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "workers stopped dying";
        for (int worker = 0; worker < workers && died < deaths; ++worker) {
            Process& process = running[static_cast<std::size_t>(worker)];
            if (!process.join_for(std::chrono::milliseconds(1))) continue;
            ASSERT_EQ(process.exitcode(), -SIGKILL);
            ++died;
            // Check while the others run: the calls below take the lock like any other.
            for (const auto& [key, value] : dict.items()) {
                if (key.starts_with("counter")) {
                    const auto index = static_cast<std::size_t>(key.back() - '0');
                    if (index != static_cast<std::size_t>(worker)) continue;  // still running
                    const int64_t count = std::stoll(value);
                    const int64_t done = confirmed.load(index);
                    EXPECT_TRUE(count == done || count == done + 1)
                        << key << " " << count << " vs " << done;
                } else {
                    EXPECT_TRUE(whole(value)) << key;
                }
            }
            for (const std::string& value : list.snapshot()) EXPECT_TRUE(whole(value));
            // A counter applied but not confirmed (died after the commit): confirm it now.
            const std::string counter = "counter" + std::to_string(worker);
            const int64_t count = std::stoll(dict.get_or(counter, "0"));
            confirmed.store(static_cast<std::size_t>(worker), count);
            process = spawn([&, worker, seed = seeds()] { return worker_body(worker, seed); },
                            {.daemon = true});
        }
    }
    for (Process& process : running) {
        process.kill();
        process.join();
    }
    EXPECT_EQ(dict.size(), dict.items().size());
    dict.set("end", "e");
    EXPECT_EQ(dict.get("end"), "e");
}

}  // namespace
}  // namespace shuttle
