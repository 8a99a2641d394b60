// Value<T> and Array<T> across real processes: exact totals under get_lock() and with
// fetch_add, a holder SIGKILLed inside the lock, named open with the wrong T, bounds.
#include <signal.h>

#include <mutex>
#include <vector>

#include "shuttle/array.hpp"
#include "shuttle/dict.hpp"
#include "shuttle/list.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/value.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::run_child;

/// A T that std::atomic_ref cannot handle without a lock: load/store go through get_lock().
struct Wide {
    int64_t first;
    int64_t second;
    int64_t third;
};
static_assert(!Value<Wide>::is_lock_free);
static_assert(Value<int>::is_lock_free && Value<double>::is_lock_free &&
              Value<uint64_t>::is_lock_free && Array<int16_t>::is_lock_free);

constexpr int processes = 4;
constexpr int increments = 20000;

/// Runs `body(worker)` in `processes` children at once and expects each to exit 0.
template <class Body>
void run_workers(Body body) {
    std::vector<Process> workers;
    for (int worker = 0; worker < processes; ++worker) {
        workers.push_back(
            spawn(ProcessOptions{.daemon = true}, [&, worker] { return body(worker); }));
    }
    for (auto& process : workers) {
        ASSERT_TRUE(test::join_or_fail(process, 60s));
        EXPECT_EQ(process.exitcode(), 0);
    }
}

// The notes' `with v.get_lock(): v.value += 1` from several processes: nothing lost.
TEST(Value, IncrementsUnderTheLockFromManyProcessesGiveTheExactTotal) {
    auto counter = Value<int64_t>::anonymous(0);
    run_workers([&](int) {
        for (int step = 0; step < increments; ++step) {
            std::lock_guard guard(counter.get_lock());
            counter.store(counter.load() + 1);
        }
        return 0;
    });
    EXPECT_EQ(counter.load(), int64_t{processes} * increments);
}

TEST(Value, FetchAddFromManyProcessesGivesTheExactTotal) {
    auto counter = Value<uint32_t>::anonymous(7);
    auto total = Value<double>::anonymous(0.0);
    run_workers([&](int) {
        for (int step = 0; step < increments; ++step) {
            counter.fetch_add(2);
            counter.fetch_sub(1);
            total.fetch_add(0.5);
        }
        return 0;
    });
    EXPECT_EQ(counter.load(), 7u + processes * increments);
    EXPECT_EQ(total.load(), 0.5 * processes * increments);  // exact: halves add up exactly
}

// A T that is not lock-free: load and store take the lock themselves, and also work inside
// the caller's hold of it (the lock is not re-entrant, so they must not take it again).
TEST(Value, WideValuesAreNeverTornAndWorkInsideTheLock) {
    auto wide = Value<Wide>::anonymous({0, 0, 0});
    run_workers([&](int worker) {
        for (int step = 0; step < increments / 4; ++step) {
            if (worker % 2 == 0) {
                const int64_t next = step + 1;
                wide.store({next, next, next});
            } else {
                Wide seen = wide.load();
                if (seen.first != seen.second || seen.second != seen.third) return 1;  // torn
                std::lock_guard guard(wide.get_lock());
                Wide inside = wide.load();
                wide.store({inside.first, inside.first, inside.first});
            }
        }
        return 0;
    });
    Wide last = wide.load();
    EXPECT_EQ(last.first, last.third);
}

TEST(Value, ExchangeAndCompareExchange) {
    auto flag = Value<int>::anonymous(1);
    EXPECT_EQ(flag.exchange(5), 1);
    int expected = 4;
    EXPECT_FALSE(flag.compare_exchange(expected, 9));
    EXPECT_EQ(expected, 5);
    EXPECT_TRUE(flag.compare_exchange(expected, 9));
    EXPECT_EQ(flag.load(), 9);
    EXPECT_EQ(flag.atomic().fetch_or(0x10), 9);
    EXPECT_EQ(flag.atomic().fetch_and(0x11), 0x19);
    EXPECT_EQ(flag.load(), 0x11);
}

// A holder SIGKILLed inside get_lock(): the next process gets the lock, learns it, and the
// value stays usable by everyone.
TEST(Value, AHolderKilledInsideTheLockLeavesTheValueUsable) {
    auto counter = Value<int>::anonymous(10);
    EXPECT_EQ(run_child([&] {
                  counter.get_lock().lock();
                  counter.store(11);  // half of a two-step update
                  test::die_now();
              }),
              -SIGKILL);
    {
        std::lock_guard guard(counter.get_lock());
        EXPECT_TRUE(counter.get_lock().previous_owner_died());
        EXPECT_EQ(counter.load(), 11);
        counter.store(10);  // repair
        counter.get_lock().mark_consistent();
    }
    EXPECT_EQ(run_child([&] {
                  std::lock_guard guard(counter.get_lock());
                  if (counter.get_lock().previous_owner_died()) return 1;
                  counter.store(counter.load() + 1);
                  return 0;
              }),
              0);
    EXPECT_EQ(counter.load(), 11);
}

// A process killed inside a store() of a T that needs the lock: the next load() recovers the
// lock (it does not hang) and the flag tells the value may be torn.
TEST(Value, AWideStoreCutShortDoesNotWedgeLoads) {
    auto wide = Value<Wide>::anonymous({1, 1, 1});
    EXPECT_EQ(run_child([&] {
                  wide.get_lock().lock();  // as if killed inside store()
                  test::die_now();
              }),
              -SIGKILL);
    EXPECT_EQ(wide.load().first, 1);
    EXPECT_TRUE(wide.get_lock().previous_owner_died());
}

TEST(Value, NamedValuesAreSharedAndCheckTheirType) {
    test::NameGuard name(test::unique_name("value"));
    auto created = Value<int64_t>::create(*name, 41);
    EXPECT_EQ(run_child([&] {
                  auto opened = Value<int64_t>::open(*name);
                  return opened.fetch_add(1) == 41 ? 0 : 1;
              }),
              0);
    EXPECT_EQ(created.load(), 42);
    EXPECT_EQ(created.name(), *name);

    auto refused = [&](auto open, errc expected) {
        try {
            open();
        } catch (const Error& error) {
            return error.condition() == expected;
        }
        return false;
    };
    EXPECT_TRUE(refused([&] { (void)Value<uint64_t>::open(*name); }, errc::type_mismatch));
    EXPECT_TRUE(refused([&] { (void)Value<double>::open(*name); }, errc::type_mismatch));
    EXPECT_TRUE(refused([&] { (void)Value<int32_t>::open(*name); }, errc::type_mismatch));
    EXPECT_TRUE(refused([&] { (void)Array<int64_t>::open(*name); }, errc::kind_mismatch));
    EXPECT_TRUE(refused([&] { (void)Lock::open(*name); }, errc::kind_mismatch));
    EXPECT_TRUE(refused([&] { (void)Value<int64_t>::create(*name, 0); }, errc::already_exists));
    EXPECT_TRUE(
        refused([&] { (void)Value<int64_t>::open("no-such-value-here"); }, errc::not_found));
    EXPECT_TRUE(refused([&] { (void)Value<int64_t>::create("", 0); }, errc::invalid_name));

    auto again = Value<int64_t>::open_or_create(*name, 0);  // exists: opened, not reset
    EXPECT_EQ(again.load(), 42);
    EXPECT_TRUE(Value<int64_t>::remove(*name));
    EXPECT_EQ(created.fetch_add(1), 42);  // attached handles keep working
}

TEST(Value, HandlesMove) {
    auto first = Value<int>::anonymous(3);
    Value<int> second = std::move(first);
    EXPECT_FALSE(first.valid());  // NOLINT(bugprone-use-after-move): what a move leaves
    EXPECT_TRUE(second.valid());
    EXPECT_EQ(second.fetch_add(1), 3);
    std::lock_guard guard(second.get_lock());
    EXPECT_TRUE(second.get_lock().held_by_caller());
}

// ---- Array -----------------------------------------------------------------------------------

// Elements 0-3 are counted lock-free, elements 4 and 5 together under the lock (a reader
// under the lock always finds them equal). The two disciplines stay on separate elements: a
// load-then-store under the lock is not atomic against a lock-free fetch_add that does not
// take the lock.
TEST(Array, ElementsAreSharedAndIncrementedExactly) {
    auto counts = Array<int64_t>::anonymous(8);
    ASSERT_EQ(counts.size(), 8u);
    run_workers([&](int) {
        for (int step = 0; step < increments; ++step) {
            counts.fetch_add(static_cast<std::size_t>(step % 4), 1);
            if (step % 16 == 0) {  // two elements as one step
                std::lock_guard guard(counts.get_lock());
                if (counts[4] != counts[5]) return 1;
                ++counts[4];
                ++counts.at(5);
            }
        }
        return 0;
    });
    const std::vector<int64_t> totals = counts.snapshot();
    EXPECT_EQ(totals[0] + totals[1] + totals[2] + totals[3], int64_t{processes} * increments);
    EXPECT_EQ(totals[4], int64_t{processes} * increments / 16);
    EXPECT_EQ(totals[5], totals[4]);
}

TEST(Array, BoundsAreChecked) {
    auto samples = Array<double>::anonymous({1.0, 2.0, 3.0});
    EXPECT_EQ(samples.at(2), 3.0);
    EXPECT_EQ(samples[1], 2.0);
    auto out_of_range = [](auto call) {
        try {
            call();
        } catch (const Error& error) {
            return error.condition() == errc::invalid_argument &&
                   std::string(error.what()).find("index 3") != std::string::npos;
        }
        return false;
    };
    EXPECT_TRUE(out_of_range([&] { (void)samples.at(3); }));
    EXPECT_TRUE(out_of_range([&] { (void)samples.load(3); }));
    EXPECT_TRUE(out_of_range([&] { samples.store(3, 0.0); }));
    EXPECT_TRUE(out_of_range([&] { (void)samples.fetch_add(3, 1.0); }));
    EXPECT_THROW(samples.assign(std::vector<double>{1.0}), Error);
    samples.assign(std::vector<double>{4.0, 5.0, 6.0});
    EXPECT_EQ(samples.snapshot(), (std::vector<double>{4.0, 5.0, 6.0}));
}

TEST(Array, NamedArraysKeepTheirSizeAndType) {
    test::NameGuard name(test::unique_name("array"));
    auto created = Array<int32_t>::create(*name, 10);
    created.store(9, 99);
    EXPECT_EQ(run_child([&] {
                  auto opened = Array<int32_t>::open(*name);
                  if (opened.size() != 10 || opened.load(9) != 99) return 1;
                  opened.store(0, 7);
                  return 0;
              }),
              0);
    EXPECT_EQ(created.load(0), 7);
    EXPECT_EQ(Array<int32_t>::open_or_create(*name, 10).size(), 10u);
    try {
        (void)Array<int32_t>::open_or_create(*name, 11);
        ADD_FAILURE() << "another size was accepted";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::capacity_mismatch);
    }
    try {
        (void)Array<float>::open(*name);
        ADD_FAILURE() << "another type was accepted";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::type_mismatch);
    }
}

TEST(Array, WideElementsUseTheLock) {
    auto rows = Array<Wide>::anonymous(3);
    EXPECT_EQ(rows.load(1).second, 0);  // T{}
    rows.store(1, {1, 2, 3});
    {
        std::lock_guard guard(rows.get_lock());
        EXPECT_EQ(rows.load(1).third, 3);  // inside the caller's hold: no second locking
        rows[2] = rows[1];
    }
    EXPECT_EQ(rows.snapshot()[2].first, 1);
    auto empty = Array<int>::anonymous(0);
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_TRUE(empty.snapshot().empty());
}

// Issue 13 §1 for state/: a Value, Array, Dict or List handle destroyed, or moved over, while
// its thread holds get_lock() releases the lock as the holder's death would; another handle of
// the same object then takes it and is told (no wedge for the rest of the process).
template <class Handle, class Open>
void expect_handle_gone_while_held_is_a_death(Open open) {
    test::NameGuard name(test::unique_name("stateabandon"));
    Handle survivor = open(*name, true);
    {
        Handle doomed = open(*name, false);
        doomed.get_lock().lock();
    }
    ASSERT_TRUE(survivor.get_lock().try_lock());
    EXPECT_TRUE(survivor.get_lock().previous_owner_died());
    survivor.get_lock().mark_consistent();
    survivor.get_lock().unlock();

    Handle moved_over = open(*name, false);
    moved_over.get_lock().lock();
    moved_over = open(*name, false);  // the holding handle is replaced
    ASSERT_TRUE(survivor.get_lock().try_lock());
    EXPECT_TRUE(survivor.get_lock().previous_owner_died());
    survivor.get_lock().mark_consistent();
    survivor.get_lock().unlock();
}

TEST(StateAbandon, HandlesGoneWhileHoldingTheLockActAsADeath) {
    expect_handle_gone_while_held_is_a_death<Value<int>>([](const std::string& name, bool create) {
        return create ? Value<int>::create(name, 1) : Value<int>::open(name);
    });
    expect_handle_gone_while_held_is_a_death<Array<int>>([](const std::string& name, bool create) {
        return create ? Array<int>::create(name, {1, 2}) : Array<int>::open(name);
    });
    expect_handle_gone_while_held_is_a_death<Dict<int, int>>(
        [](const std::string& name, bool create) {
            return create ? Dict<int, int>::create(name) : Dict<int, int>::open(name);
        });
    expect_handle_gone_while_held_is_a_death<List<int>>([](const std::string& name, bool create) {
        return create ? List<int>::create(name) : List<int>::open(name);
    });
}

}  // namespace
}  // namespace shuttle
