// A queue whose segment was scribbled on (issue 13 §4): write access is trust, so answers may be
// wrong, but no operation may spin forever, crash or read out of bounds. Each corruption is
// applied to a fresh named queue through a second mapping of its segment; then a child (under
// a watchdog) runs every operation on it: try_put, try_get, put_for, get_for, size, recover,
// describe_recovery, shutdown(true). A child that hangs or crashes fails the test.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/queue_inspect.hpp"
#include "shuttle/registry.hpp"
#include "shuttle/segment.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using detail::Ring;

constexpr std::size_t capacity = 8;

/// One corruption: writes into the queue's shared words (through the test's own mapping).
struct Corruption {
    std::string name;
    std::function<void(const Ring&, const Registry&, Segment&)> apply;
};

std::vector<Corruption> corruptions() {
    auto turn_of = [](const Ring& ring, uint64_t ticket) -> std::atomic<uint64_t>& {
        return ring.slot_at(ticket).turn;
    };
    std::vector<Corruption> all = {
        {"tail = head - 1",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->tail.store(ring.control->head.load() - 1);
         }},
        {"head back one lap", [](const Ring& ring, const Registry&,
                                 Segment&) { ring.control->head.fetch_sub(capacity); }},
        {"tail back one lap", [](const Ring& ring, const Registry&,
                                 Segment&) { ring.control->tail.fetch_sub(capacity); }},
        {"head far ahead of tail",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->head.fetch_add(5 * capacity + 3);
         }},
        {"the tail slot's turn a lap ahead",
         [turn_of](const Ring& ring, const Registry&, Segment&) {
             turn_of(ring, ring.control->tail.load()).fetch_add(2);
         }},
        {"the head slot's turn a lap ahead",
         [turn_of](const Ring& ring, const Registry&, Segment&) {
             turn_of(ring, ring.control->head.load()).fetch_add(2);
         }},
        {"every turn random",
         [turn_of](const Ring& ring, const Registry&, Segment&) {
             std::mt19937_64 random(7);
             for (uint64_t i = 0; i < capacity; ++i) turn_of(ring, i).store(random());
         }},
        {"every slot length huge",
         [](const Ring& ring, const Registry&, Segment&) {
             for (uint64_t i = 0; i < capacity; ++i) ring.slot_at(i).length.store(~uint64_t{0});
         }},
        {"waiter words all ones",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->consumers.state.store(~uint64_t{0});
             ring.control->producers.state.store(~uint64_t{0});
         }},
        {"task counts garbage",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->done.store(~uint64_t{0} / 3);
             ring.control->recovery.settled.store(~uint64_t{0});
             ring.control->joiners.store(~uint32_t{0});
         }},
        {"recovery lock held by garbage",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->recovery.holder.store(0x7fff'fff0'1234'5678);
             ring.control->recovery.holder_namespace.store(0xdead'beef);
         }},
        {"journal counters garbage",
         [](const Ring& ring, const Registry&, Segment&) {
             ring.control->recovery.lost.store(~uint64_t{0} - 1);
         }},
        {"every registry word random",
         [](const Ring&, const Registry& registry, Segment&) {
             std::mt19937_64 random(11);
             for (uint32_t i = 0; i < registry.capacity(); ++i) {
                 RegistryEntry& entry = registry.entry(i);
                 entry.identity.store(random());
                 entry.pid_namespace.store(random());
                 entry.announced.store(random());
                 for (auto& word : entry.words) word.store(random());
             }
         }},
        {"every announcement names the head, from a garbage live-looking holder",
         [](const Ring& ring, const Registry& registry, Segment&) {
             for (uint32_t i = 0; i < registry.capacity(); ++i) {
                 registry.entry(i).identity.store((uint64_t{1} << 32) | 1);  // pid 1
                 registry.entry(i).announced.store(ring.control->head.load());
             }
         }},
        {"random bytes over the whole body",
         [](const Ring&, const Registry&, Segment& segment) {
             std::mt19937_64 random(13);
             std::byte* body = segment.body();
             for (uint64_t i = 0; i < segment.info().body_size; ++i) {
                 body[i] = static_cast<std::byte>(random());
             }
         }},
    };
    for (uint64_t tail : {(uint64_t{1} << 61) - 1, uint64_t{1} << 61, uint64_t{1} << 62,
                          (uint64_t{1} << 63) + 5, ~uint64_t{0}}) {
        all.push_back(
            {"tail = " + std::to_string(tail), [tail](const Ring& ring, const Registry&, Segment&) {
                 ring.control->tail.store(tail);
             }});
        all.push_back(
            {"head = " + std::to_string(tail), [tail](const Ring& ring, const Registry&, Segment&) {
                 ring.control->head.store(tail);
             }});
    }
    return all;
}

/// Every operation once; each must return (the watchdog of run_child says if one did not).
template <class Queue, class Put, class Get>
void run_every_operation(Queue& queue, Put put, Get get) {
    (void)put([&] { return queue.try_put(1); });
    (void)get([&] { return queue.try_get(); });
    (void)put([&] { return queue.put_for(2, 20ms); });
    (void)get([&] { return queue.get_for(20ms); });
    (void)queue.size();
    (void)queue.waiting_getters();
    (void)queue.recover();
    (void)queue.describe_recovery();
    (void)queue.stalls();
    (void)queue.lost_items();
    (void)queue.shutdown(true);
    (void)put([&] { return queue.try_put(3); });
    (void)get([&] { return queue.try_get(); });
}

/// Corrupts queue `name` (a few items queued and one lap completed first, so the words have
/// something to contradict) through a second mapping of its segment.
template <class Queue>
void fill_and_corrupt(Queue& queue, const std::string& name, const Corruption& corruption) {
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(queue.put(i));
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(queue.get());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.put(i));
    Segment segment = Segment::open(
        name, detail::queue_expectation(ObjectKind::queue, sizeof(int), alignof(int), 0));
    corruption.apply(detail::ring_of(segment), Registry(segment), segment);
}

template <class Queue>
int operate_on(Queue& queue) {
    run_every_operation(
        queue, [](auto call) { return call(); }, [](auto call) { return call(); });
    if constexpr (requires { queue.join_for(20ms); }) {
        (void)queue.task_done();
        (void)queue.join_for(20ms);
        (void)queue.unfinished_tasks();
    }
    return 0;
}

// Every corruption, on a plain and on a joinable queue, each in its own child; the children
// run at once (several wait out a bounded patience: the recovery lock's, shutdown's).
TEST(QueueCorruption, EveryOperationReturnsOnEveryCorruption) {
    const auto limit = test::sanitized() ? 30000ms : 10000ms;
    const std::vector<Corruption> all = corruptions();
    std::vector<test::NameGuard> names;
    std::vector<Queue<int>> plain;
    std::vector<JoinableQueue<int>> joinable;
    std::vector<std::pair<std::string, Process>> children;
    names.reserve(2 * all.size());
    plain.reserve(all.size());
    joinable.reserve(all.size());
    // Makes queue `handles.back()` of that form, corrupts it, and starts its child.
    auto start = [&](auto& handles, const Corruption& corruption, const char* form) {
        using Handle = typename std::remove_reference_t<decltype(handles)>::value_type;
        names.emplace_back(test::unique_name("corrupt"));
        handles.push_back(Handle::create(*names.back(), capacity));
        fill_and_corrupt(handles.back(), *names.back(), corruption);
        Handle* queue = &handles.back();
        children.emplace_back(
            corruption.name + form,
            shuttle::spawn([queue] { return operate_on(*queue); }, ProcessOptions{.daemon = true}));
    };
    for (const Corruption& corruption : all) {
        start(plain, corruption, " (plain)");
        start(joinable, corruption, " (joinable)");
    }
    for (auto& [label, child] : children) {
        SCOPED_TRACE(label);
        EXPECT_TRUE(test::join_and_expect_exit(child, 0, limit));
    }
}

// A header rewritten consistently (capacity, body and segment sizes all those of a queue of half
// the capacity) over a queue's real words: a handle opened afterwards sees turns and cursors of
// another ring size. Every operation must still return (shutdown(true) used to spin forever).
template <class Queue>
void expect_half_capacity_header_is_answered() {
    test::NameGuard name(test::unique_name("halfcap"));
    test::NameGuard half_name(test::unique_name("halfcap"));
    Queue queue = Queue::create(*name, capacity);
    const Queue half = Queue::create(*half_name, capacity / 2);
    const Segment model = Segment::open(
        *half_name, detail::queue_expectation(ObjectKind::queue, sizeof(int), alignof(int), 0));
    fill_and_corrupt(queue, *name,
                     {"half capacity", [&](const Ring&, const Registry&, Segment& segment) {
                          SegmentHeader& header = segment.header();
                          header.capacity = model.header().capacity;
                          header.body_size = model.header().body_size;
                          header.segment_size = model.header().segment_size;
                      }});
    const auto limit = test::sanitized() ? 30000ms : 10000ms;
    EXPECT_EQ(test::run_child(
                  [&] {
                      try {
                          Queue reopened = Queue::open(*name);
                          if (reopened.capacity() != capacity / 2) return 1;
                          return operate_on(reopened);
                      } catch (const Error&) {
                          return 0;  // refused at open: a clear answer too
                      }
                  },
                  limit),
              0);
}

TEST(QueueCorruption, AConsistentHeaderWithHalfTheCapacityIsAnswered) {
    expect_half_capacity_header_is_answered<Queue<int>>();
    expect_half_capacity_header_is_answered<JoinableQueue<int>>();
}

// inspect says which state is impossible (and nothing for a sound queue), in the library's
// snapshot and in `shuttle inspect`'s output.
TEST(QueueCorruption, InspectSaysWhatIsImpossible) {
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"tail = head - 1", "the head (8) is ahead of the tail (7)"},
        {"head back one lap", "the tail (11) is 11 ahead of the head (0)"},
        {"every turn random", "slot 0's turn"},
        {"recovery lock held by garbage", "the recovery lock's holder"},
        {"every registry word random", "registry entry 0's holder"},
    };
    const std::vector<Corruption> all = corruptions();
    for (const auto& [corruption_name, says] : expected) {
        SCOPED_TRACE(corruption_name);
        test::NameGuard name(test::unique_name("impossible"));
        auto queue = JoinableQueue<int>::create(*name, capacity);
        EXPECT_EQ(inspect_queue(*name).impossible, std::vector<std::string>{});
        const auto corruption = std::find_if(
            all.begin(), all.end(), [&](const Corruption& c) { return c.name == corruption_name; });
        ASSERT_NE(corruption, all.end());
        fill_and_corrupt(queue, *name, *corruption);
        const std::vector<std::string> impossible = inspect_queue(*name).impossible;
        ASSERT_FALSE(impossible.empty());
        EXPECT_NE(impossible.front().find(says), std::string::npos) << impossible.front();
        if (corruption_name == expected.front().first) {
            const auto shown = test::run_program(SHUTTLE_CLI, {"inspect", *name});
            EXPECT_NE(shown.output.find("IMPOSSIBLE"), std::string::npos) << shown.output;
            EXPECT_NE(shown.output.find(says), std::string::npos) << shown.output;
        }
    }
}

/// A child that stops (SIGSTOP) inside recover(), holding `queue`'s recovery lock.
Process stopped_recoverer(Queue<int>& queue) {
    Process recoverer = shuttle::spawn(
        [&queue] {
            detail::arm_kill_point("queue.recovery.locked", 0, SIGSTOP);
            return queue.recover() ? 0 : 1;
        },
        ProcessOptions{.daemon = true});
    EXPECT_TRUE(test::eventually([&] { return detail::process_stopped(recoverer.pid()); }));
    return recoverer;
}

// Issue 13 §4: a newcomer's first try_put / try_get (its thread's first use of the handle, which
// adopts a registry entry under the recovery lock) answers at once while a stopped recoverer
// holds that lock (before: it waited the lock's 2 s patience), and goes through once it is gone.
TEST(QueueRecoveryLock, ANewcomersTryCallsDoNotWaitForAStoppedRecoverer) {
    test::NameGuard name(test::unique_name("stopped"));
    auto queue = Queue<int>::create(*name, 4);
    ASSERT_TRUE(queue.put(1));
    Process recoverer = stopped_recoverer(queue);
    errc put = errc::ok;
    errc got = errc::ok;
    std::chrono::steady_clock::duration took{};
    std::thread([&] {
        const auto start = std::chrono::steady_clock::now();
        put = queue.try_put(2).error();
        got = queue.try_get().error();
        took = std::chrono::steady_clock::now() - start;
    }).join();
    EXPECT_EQ(put, errc::full);
    EXPECT_EQ(got, errc::empty);
    EXPECT_LT(took, 1s);
    ::kill(recoverer.pid(), SIGCONT);
    ASSERT_TRUE(test::join_and_expect_exit(recoverer));
    std::thread([&] {
        put = queue.try_put(2).error();
        got = queue.try_get().error();
    }).join();
    EXPECT_EQ(put, errc::ok);
    EXPECT_EQ(got, errc::ok);
    EXPECT_EQ(queue.size(), 1u);
}

// A holder stepped over (stopped longer than the lock's patience) that resumes must not free the
// lock of the process that stepped over it (before: its unlock was unconditional).
TEST(QueueRecoveryLock, AResumedSteppedOverHolderLeavesTheNewHoldersLock) {
    test::NameGuard name(test::unique_name("steppedover"));
    auto queue = Queue<int>::create(*name, 4);
    Process recoverer = stopped_recoverer(queue);
    const Segment segment = Segment::open(
        *name, detail::queue_expectation(ObjectKind::queue, sizeof(int), alignof(int), 0));
    detail::RecoveryControl& recovery = detail::ring_of(segment).control->recovery;
    // What stepping over does (without waiting the patience out): this process takes the lock.
    const uint64_t self = detail::current_process_identity();
    recovery.holder.store(self);
    recovery.holder_namespace.store(detail::current_pid_namespace());
    ::kill(recoverer.pid(), SIGCONT);
    ASSERT_TRUE(test::join_and_expect_exit(recoverer));
    EXPECT_EQ(recovery.holder.load(), self);
    recovery.holder_namespace.store(detail::unknown_pid_namespace);
    recovery.holder.store(0);
}

}  // namespace
}  // namespace shuttle
