// Every operation on an empty sync handle — default-constructed, or moved from — throws
// Error(errc::closed): never a crash, and never an effect on the handle it was moved to.
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "shuttle/barrier.hpp"
#include "shuttle/condition.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

template <class Handle>
using Operations = std::vector<std::pair<std::string, std::function<void(Handle&)>>>;

/// Every member of a lock handle (Lock, RLock and Condition share these).
template <class Handle>
void add_lock_operations(Operations<Handle>& operations) {
    operations.insert(
        operations.end(),
        {{"lock", [](Handle& h) { h.lock(); }},
         {"try_lock", [](Handle& h) { (void)h.try_lock(); }},
         {"try_lock_for", [](Handle& h) { (void)h.try_lock_for(10ms); }},
         {"try_lock_until",
          [](Handle& h) { (void)h.try_lock_until(std::chrono::steady_clock::now()); }},
         {"unlock", [](Handle& h) { h.unlock(); }},
         {"previous_owner_died", [](Handle& h) { (void)h.previous_owner_died(); }},
         {"mark_consistent", [](Handle& h) { h.mark_consistent(); }},
         {"held_by_caller", [](Handle& h) { (void)h.held_by_caller(); }},
         {"state", [](Handle& h) { (void)h.state(); }}});
}

template <class Handle>
struct Traits;

template <>
struct Traits<Lock> {
    static Lock make() { return Lock::anonymous(); }
    static Operations<Lock> operations() {
        Operations<Lock> operations{
            {"acquire", [](Lock& h) { (void)h.acquire(); }},
            {"acquire(false)", [](Lock& h) { (void)h.acquire(false); }},
            {"acquire(timeout)", [](Lock& h) { (void)h.acquire(true, 10ms); }},
            {"release", [](Lock& h) { h.release(); }}};
        add_lock_operations(operations);
        return operations;
    }
    static bool untouched(Lock& h) { return h.try_lock() && (h.unlock(), true); }
};

template <>
struct Traits<RLock> {
    static RLock make() { return RLock::anonymous(); }
    static Operations<RLock> operations() {
        Operations<RLock> operations{{"depth", [](RLock& h) { (void)h.depth(); }},
                                     {"acquire", [](RLock& h) { (void)h.acquire(); }},
                                     {"release", [](RLock& h) { h.release(); }}};
        add_lock_operations(operations);
        return operations;
    }
    static bool untouched(RLock& h) { return h.depth() == 0 && h.try_lock() && (h.unlock(), true); }
};

template <class S>
struct SemaphoreTraits {
    static Operations<S> operations() {
        return {{"acquire", [](S& h) { h.acquire(); }},
                {"acquire(stop)", [](S& h) { (void)h.acquire(std::stop_token{}); }},
                {"try_acquire", [](S& h) { (void)h.try_acquire(); }},
                {"try_acquire_for", [](S& h) { (void)h.try_acquire_for(10ms); }},
                {"try_acquire_until",
                 [](S& h) { (void)h.try_acquire_until(std::chrono::steady_clock::now()); }},
                {"release", [](S& h) { h.release(); }},
                {"value", [](S& h) { (void)h.value(); }},
                {"bound", [](S& h) { (void)h.bound(); }},
                {"bounded", [](S& h) { (void)h.bounded(); }},
                {"state", [](S& h) { (void)h.state(); }}};
    }
    static bool untouched(S& h) { return h.value() == 1; }
};
template <>
struct Traits<Semaphore> : SemaphoreTraits<Semaphore> {
    static Semaphore make() { return Semaphore::anonymous(1); }
};
template <>
struct Traits<BoundedSemaphore> : SemaphoreTraits<BoundedSemaphore> {
    static BoundedSemaphore make() { return BoundedSemaphore::anonymous(1); }
};

template <>
struct Traits<Event> {
    static Event make() { return Event::anonymous(); }
    static Operations<Event> operations() {
        return {
            {"set", [](Event& h) { h.set(); }},
            {"clear", [](Event& h) { h.clear(); }},
            {"is_set", [](Event& h) { (void)h.is_set(); }},
            {"wait", [](Event& h) { h.wait(); }},
            {"wait(stop)", [](Event& h) { (void)h.wait(std::stop_token{}); }},
            {"wait_for", [](Event& h) { (void)h.wait_for(10ms); }},
            {"wait_until", [](Event& h) { (void)h.wait_until(std::chrono::steady_clock::now()); }},
            {"state", [](Event& h) { (void)h.state(); }}};
    }
    static bool untouched(Event& h) { return !h.is_set(); }
};

template <>
struct Traits<Condition> {
    static Condition make() { return Condition::anonymous(); }
    static Operations<Condition> operations() {
        Operations<Condition> operations{
            {"recursive", [](Condition& h) { (void)h.recursive(); }},
            {"depth", [](Condition& h) { (void)h.depth(); }},
            {"wait", [](Condition& h) { h.wait(); }},
            {"wait(predicate)", [](Condition& h) { h.wait([] { return false; }); }},
            {"wait_for", [](Condition& h) { (void)h.wait_for(10ms); }},
            {"wait_until",
             [](Condition& h) { (void)h.wait_until(std::chrono::steady_clock::now()); }},
            {"wait_for(predicate)",
             [](Condition& h) { (void)h.wait_for(10ms, [] { return false; }); }},
            {"wait_until(predicate)",
             [](Condition& h) {
                 (void)h.wait_until(std::chrono::steady_clock::now(), [] { return false; });
             }},
            {"notify", [](Condition& h) { h.notify(); }},
            {"notify_all", [](Condition& h) { h.notify_all(); }}};
        add_lock_operations(operations);
        return operations;
    }
    static bool untouched(Condition& h) { return h.try_lock() && (h.unlock(), true); }
};

template <>
struct Traits<Barrier> {
    static Barrier make() { return Barrier::anonymous(2); }
    static Operations<Barrier> operations() {
        return {{"wait", [](Barrier& h) { (void)h.wait(); }},
                {"wait_for", [](Barrier& h) { (void)h.wait_for(10ms); }},
                {"wait_until",
                 [](Barrier& h) { (void)h.wait_until(std::chrono::steady_clock::now()); }},
                {"abort", [](Barrier& h) { h.abort(); }},
                {"reset", [](Barrier& h) { h.reset(); }},
                {"broken", [](Barrier& h) { (void)h.broken(); }},
                {"parties", [](Barrier& h) { (void)h.parties(); }},
                {"n_waiting", [](Barrier& h) { (void)h.n_waiting(); }},
                {"state", [](Barrier& h) { (void)h.state(); }}};
    }
    static bool untouched(Barrier& h) { return !h.broken() && h.n_waiting() == 0; }
};

template <class Handle>
class SyncEmptyHandle : public ::testing::Test {};

using SyncTypes =
    ::testing::Types<Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition, Barrier>;
TYPED_TEST_SUITE(SyncEmptyHandle, SyncTypes);

/// Runs every operation on `empty` and expects Error(errc::closed) from each.
template <class Handle>
void expect_every_operation_refused(Handle& empty) {
    for (auto& [name, operation] : Traits<Handle>::operations()) {
        SCOPED_TRACE(name);
        try {
            operation(empty);
            ADD_FAILURE() << name << " on an empty handle did not throw";
        } catch (const Error& error) {
            EXPECT_EQ(error.condition(), errc::closed) << error.what();
        }
    }
}

TYPED_TEST(SyncEmptyHandle, DefaultConstructedRefusesEveryOperation) {
    TypeParam empty;
    EXPECT_FALSE(empty.valid());
    expect_every_operation_refused(empty);
}

// The moved-from handle refuses everything, and nothing it was asked reaches the handle it was
// moved to (which still works). Move assignment empties the source too.
TYPED_TEST(SyncEmptyHandle, MovedFromRefusesEveryOperationAndLeavesTheMovedToAlone) {
    TypeParam source = Traits<TypeParam>::make();
    TypeParam target = std::move(source);
    EXPECT_FALSE(source.valid());  // NOLINT(bugprone-use-after-move): what the test is about
    expect_every_operation_refused(source);
    EXPECT_TRUE(Traits<TypeParam>::untouched(target));

    TypeParam assigned;
    assigned = std::move(target);
    EXPECT_FALSE(target.valid());  // NOLINT(bugprone-use-after-move)
    expect_every_operation_refused(target);
    EXPECT_TRUE(Traits<TypeParam>::untouched(assigned));
}

}  // namespace
}  // namespace shuttle
