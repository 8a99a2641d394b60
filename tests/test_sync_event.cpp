#include <thread>
#include <vector>

#include "shuttle/event.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

TEST(SyncEvent, SetWakesEveryWaitingProcess) {
    NameGuard name(test::unique_name("event"));
    Event event = Event::create(*name);
    SharedWords words;
    const int processes = 4;
    std::vector<Process> children;
    for (int p = 0; p < processes; ++p) {
        children.push_back(spawn([&, p] {
            Event mine = p % 2 ? Event::open(*name) : std::move(event);  // named and inherited
            if (mine.is_set()) return 1;
            words[0].fetch_add(1);
            mine.wait();
            return mine.is_set() ? 0 : 2;
        }));
    }
    ASSERT_TRUE(test::await_at_least(words[0], processes));
    // Let them park (each counts itself as a waiter), so set() must wake them.
    ASSERT_TRUE(test::wait_until_true([&] { return event.state().waiters.load() >= processes; }));
    event.set();
    for (auto& child : children) {
        ASSERT_TRUE(test::join_and_expect_exit(child, 0, 10000ms));
    }
}

TEST(SyncEvent, TimedWaitReturnsFalseAfterTheTimeout) {
    Event event = Event::anonymous();
    test::expect_takes(100ms, [&] { EXPECT_FALSE(event.wait_for(100ms)); });
    test::expect_takes(
        30ms, [&] { EXPECT_FALSE(event.wait_until(std::chrono::steady_clock::now() + 30ms)); });
    test::expect_takes(0ms, [&] { EXPECT_FALSE(event.wait_for(0ms)); });
    event.set();
    EXPECT_TRUE(event.wait_for(0ms));
    EXPECT_TRUE(event.wait_for(1s));
}

TEST(SyncEvent, TimedWaitReturnsTrueWhenSetByAnotherProcess) {
    Event event = Event::anonymous();
    Process setter = spawn([&] {
        // Set it either way: a waiter that never parks must not leave the parent hanging.
        bool parked = test::wait_until_true([&] { return event.state().waiters.load() != 0; });
        event.set();
        return parked ? 0 : 1;
    });
    EXPECT_TRUE(event.wait_for(10s));
    ASSERT_TRUE(test::join_and_expect_exit(setter));
}

TEST(SyncEvent, SetClearIsSet) {
    Event event = Event::anonymous();
    EXPECT_FALSE(event.is_set());
    event.set();
    event.set();
    EXPECT_TRUE(event.is_set());
    EXPECT_EQ(run_child([&] { return event.is_set() ? 0 : 1; }), 0);
    event.clear();
    EXPECT_FALSE(event.is_set());
    EXPECT_EQ(run_child([&] { return event.is_set() ? 1 : 0; }), 0);
}

// A waiter blocked when set() happens returns true even if clear() follows at once.
TEST(SyncEvent, APulseIsNotLost) {
    Event event = Event::anonymous();
    Process waiter = spawn([&] { return event.wait_for(10s) ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return event.state().waiters.load() != 0; }));
    event.set();
    event.clear();
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
}

TEST(SyncEvent, StopTokenCancelsAWait) {
    Event event = Event::anonymous();
    std::stop_source source;
    std::thread stopper([&] {
        // Stop either way, so a waiter that never parks fails the test instead of hanging it.
        EXPECT_TRUE(test::wait_until_true([&] { return event.state().waiters.load() != 0; }));
        source.request_stop();
    });
    EXPECT_EQ(event.wait(source.get_token()), errc::cancelled);
    stopper.join();
}

// A waiter killed while parked leaves the event working for everybody else.
TEST(SyncEvent, AKilledWaiterIsHarmless) {
    Event event = Event::anonymous();
    Process doomed = spawn([&] { event.wait(); });
    ASSERT_TRUE(test::wait_until_true([&] { return event.state().waiters.load() != 0; }));
    doomed.kill();
    doomed.join();
    Process waiter = spawn([&] { return event.wait_for(10s) ? 0 : 1; });
    ASSERT_TRUE(test::wait_until_true([&] { return event.state().waiters.load() >= 2; }));
    event.set();
    ASSERT_TRUE(test::join_and_expect_exit(waiter));
}

}  // namespace
}  // namespace shuttle
