// A queue whose segment was scribbled on (issue 13 §4): write access is trust, so answers may be
// wrong, but no operation may spin forever, crash or read out of bounds. Each corruption is
// applied to a fresh named queue through a second mapping of its segment; then a child (under
// a watchdog) runs every operation on it: try_put, try_get, put_for, get_for, size, recover,
// describe_recovery, shutdown(true). A child that hangs or crashes fails the test.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/queue.hpp"
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

}  // namespace
}  // namespace shuttle
