// Dict<K, V> and List<T> (Python's Manager().dict() / .list()) across real processes: the
// operations, growth and compaction, no_space, named open checks, exact totals from several
// processes, and a process SIGKILLed at every crash point inside every mutating call.
#include <signal.h>

#include <map>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "shuttle/dict.hpp"
#include "shuttle/list.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;

TEST(Dict, SetGetEraseAndSnapshot) {
    auto dict = Dict<std::string, std::vector<int>>::anonymous();
    EXPECT_TRUE(dict.empty());
    EXPECT_FALSE(dict.get("a"));
    dict.set("a", {1, 2, 3});
    dict.set("b", {});
    dict.set("a", {4, 5, 6});
    EXPECT_EQ(dict.size(), 2u);
    EXPECT_EQ(dict.get("a"), (std::vector<int>{4, 5, 6}));
    EXPECT_EQ(dict.get("b"), std::vector<int>{});
    EXPECT_TRUE(dict.contains("b"));
    EXPECT_TRUE(dict.erase("b"));
    EXPECT_FALSE(dict.erase("b"));
    EXPECT_FALSE(dict.contains("b"));
    EXPECT_EQ(dict.pop("a"), (std::vector<int>{4, 5, 6}));
    EXPECT_TRUE(dict.empty());
    EXPECT_EQ(dict.get_or("zz", {9}), std::vector<int>{9});
}

TEST(Dict, GrowsCompactsAndMatchesAModelThroughManyChanges) {
    auto dict = Dict<int, std::string>::anonymous();
    std::map<int, std::string> model;
    std::mt19937 random(7);
    const int steps = test::sanitized() ? 5000 : 40000;
    for (int step = 0; step < steps; ++step) {
        const int key = static_cast<int>(random() % 2000);
        switch (random() % 4) {
            case 0:
            case 1: {
                std::string value(random() % 40, static_cast<char>('a' + step % 26));
                dict.set(key, value);
                model[key] = value;
                break;
            }
            case 2: EXPECT_EQ(dict.erase(key), model.erase(key) == 1); break;
            default: {
                auto found = model.find(key);
                auto value = dict.get(key);
                ASSERT_EQ(value.has_value(), found != model.end());
                if (value) {
                    EXPECT_EQ(*value, found->second);
                }
            }
        }
        if (step % 10000 == 9999) {
            dict.clear();
            model.clear();
        }
    }
    auto items = dict.items();
    const std::map<int, std::string> stored(items.begin(), items.end());
    EXPECT_EQ(stored, model);
    EXPECT_EQ(dict.size(), model.size());
    // Garbage is compacted: far less memory than everything ever written.
    EXPECT_LT(dict.memory_in_use(), uint64_t{4} << 20);
}

TEST(List, AppendGetSetInsertPopLikePython) {
    auto list = List<std::string>::anonymous({"a", "b"});
    list.append("c");
    EXPECT_EQ(list.size(), 3u);
    EXPECT_EQ(list.get(-1), "c");
    list.set(0, "A");
    list.insert(1, "x");
    list.insert(-100, "first");
    list.insert(100, "last");
    EXPECT_EQ(list.snapshot(), (std::vector<std::string>{"first", "A", "x", "b", "c", "last"}));
    EXPECT_EQ(list.pop(), "last");
    EXPECT_EQ(list.pop(0), "first");
    list.erase(1);
    EXPECT_EQ(list.snapshot(), (std::vector<std::string>{"A", "b", "c"}));
    EXPECT_EQ(list.update(1, [](const std::string& s) { return s + s; }), "bb");
    try {
        list.get(3);
        ADD_FAILURE() << "no error";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::invalid_argument);
    }
    list.clear();
    EXPECT_FALSE(list.pop());
    for (int i = 0; i < 300; ++i) list.append(std::to_string(i));
    for (int i = 0; i < 290; ++i) list.pop(0);
    EXPECT_EQ(list.get(0), "290");
    EXPECT_EQ(list.size(), 10u);
}

TEST(Dict, RunsOutOfSpaceWithNoSpaceAndLosesNothing) {
    auto dict = Dict<int, std::string>::anonymous({.max_bytes = 256 << 10});
    int stored = 0;
    try {
        for (;; ++stored) dict.set(stored, std::string(1000, 'x'));
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::no_space) << error.what();
    }
    EXPECT_GT(stored, 50);
    EXPECT_EQ(dict.size(), static_cast<std::size_t>(stored));
    EXPECT_EQ(dict.get(stored - 1), std::string(1000, 'x'));
    EXPECT_FALSE(dict.contains(stored));
    // Usable afterwards: erasing frees room (compaction) for new entries.
    for (int key = 0; key < stored; key += 2) dict.erase(key);
    dict.set(stored, "fits again");
    EXPECT_EQ(dict.get(stored), "fits again");
}

TEST(Dict, NamedOpenChecksTypesAndSharesContents) {
    test::NameGuard name(test::unique_name("dict"));
    auto dict = Dict<std::string, int>::create(*name);
    dict.set("x", 1);
    EXPECT_EQ(test::run_child([&] {
                  auto same = Dict<std::string, int>::open(*name);
                  same.set("y", *same.get("x") + 1);
                  return 0;
              }),
              0);
    EXPECT_EQ(dict.get("y"), 2);
    try {
        Dict<std::string, double>::open(*name);
        ADD_FAILURE() << "opened with another V";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::type_mismatch);
    }
    try {
        List<int>::open(*name);
        ADD_FAILURE() << "a Dict opened as a List";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::kind_mismatch);
    }
}

// A dict grown in one process (its file grows) is seen whole by another that attached before.
TEST(Dict, GrowthInOneProcessIsSeenByAllProcesses) {
    auto dict = Dict<int, std::string>::anonymous();
    const uint64_t before = dict.memory_in_use();
    EXPECT_EQ(test::run_child([&] {
                  for (int key = 0; key < 5000; ++key) dict.set(key, std::string(100, 'v'));
                  return 0;
              }),
              0);
    EXPECT_GT(dict.memory_in_use(), before + (500 << 10));
    EXPECT_EQ(dict.size(), 5000u);
    EXPECT_EQ(dict.get(4999), std::string(100, 'v'));
}

TEST(Dict, UpdatesFromFourProcessesGiveExactTotals) {
    auto dict = Dict<std::string, int64_t>::anonymous();
    auto list = List<int>::anonymous();
    const int rounds = test::sanitized() ? 500 : 5000;
    std::vector<Process> workers;
    for (int worker = 0; worker < 4; ++worker) {
        workers.push_back(spawn(
            [&, worker] {
                for (int round = 0; round < rounds; ++round) {
                    dict.update("total", [](const std::optional<int64_t>& old) {
                        return old.value_or(0) + 1;
                    });
                    dict.set("worker" + std::to_string(worker), round);
                    list.append(worker);
                }
                return 0;
            },
            {.daemon = true}));
    }
    ASSERT_TRUE(test::join_all_and_expect_exit(workers));
    EXPECT_EQ(dict.get("total"), 4 * rounds);
    EXPECT_EQ(dict.size(), 5u);
    EXPECT_EQ(list.size(), static_cast<std::size_t>(4 * rounds));
    std::vector<int> per_worker(4);
    for (int worker : list.snapshot()) ++per_worker.at(static_cast<std::size_t>(worker));
    EXPECT_EQ(per_worker, std::vector<int>(4, rounds));
}

}  // namespace
}  // namespace shuttle
