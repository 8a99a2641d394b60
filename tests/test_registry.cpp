#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "counters_segment.hpp"
#include "shuttle/registry.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using detail::Liveness;
using test::run_child;

Segment registry_segment(uint32_t entries) {
    SegmentInfo info = test::counters_info();
    info.registry_capacity = entries;
    return Segment::create_anonymous(info, test::counters_body_size, {});
}

TEST(Registry, ClaimReleaseAndFull) {
    Segment segment = registry_segment(2);
    Registry registry(segment);
    auto first = registry.claim();
    auto second = registry.claim();
    ASSERT_TRUE(first && second);
    EXPECT_NE(first->index, second->index);
    EXPECT_EQ(registry.liveness(first->index), Liveness::alive);
    auto third = registry.claim();
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error(), errc::registry_full);
    registry.release(first->index);
    EXPECT_EQ(registry.liveness(first->index), Liveness::dead);
    auto again = registry.claim();
    ASSERT_TRUE(again);
    EXPECT_EQ(again->index, first->index);
    EXPECT_EQ(again->previous, 0u);
}

// A process killed while holding an entry: the entry is reclaimed by the next claimer.
TEST(Registry, EntryOfAKilledProcessIsReclaimed) {
    Segment segment = registry_segment(1);
    Registry registry(segment);
    std::atomic<uint64_t>& flag = test::counters(segment)[0];
    Process holder([&] {
        if (!registry.claim()) return 1;
        flag.store(1);
        for (;;) pause();
    });
    holder.start();
    while (flag.load() != 1) std::this_thread::yield();
    EXPECT_FALSE(registry.claim());  // full: the holder is alive
    holder.kill();
    holder.join();
    auto claim = registry.claim();
    ASSERT_TRUE(claim);
    EXPECT_EQ(detail::identity_pid(claim->previous), holder.pid());
}

// An unreaped killed child is a zombie: dead for the registry.
TEST(Registry, ZombieCountsAsDead) {
    Segment segment = registry_segment(1);
    Registry registry(segment);
    std::atomic<uint64_t>& flag = test::counters(segment)[0];
    pid_t pid = fork();
    if (pid == 0) {
        if (!registry.claim()) _exit(1);
        flag.store(1);
        for (;;) pause();
    }
    while (flag.load() != 1) std::this_thread::yield();
    EXPECT_EQ(registry.liveness(0), Liveness::alive);
    ::kill(pid, SIGKILL);
    // Wait until it is a zombie, without reaping it.
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
    EXPECT_EQ(registry.liveness(0), Liveness::dead);
    EXPECT_TRUE(registry.claim());
    ::waitpid(pid, nullptr, 0);
}

// A live process whose pid matches but whose start time does not is not the holder.
TEST(Registry, ReusedPidIsDetectedByStartTime) {
    const detail::ProcessIdentity self = detail::current_process_identity();
    const uint64_t ns = detail::current_pid_namespace();
    EXPECT_EQ(detail::process_liveness(self, ns), Liveness::alive);
    EXPECT_EQ(detail::process_liveness(self ^ 1, ns), Liveness::dead);
    EXPECT_EQ(detail::process_liveness(self, ns + 1), Liveness::unknown);
    Segment segment = registry_segment(1);
    Registry registry(segment);
    registry.entry(0).identity.store(self ^ 1);  // "our" pid, someone else's start time
    registry.entry(0).pid_namespace.store(ns);
    EXPECT_EQ(registry.liveness(0), Liveness::dead);
    auto claim = registry.claim();
    ASSERT_TRUE(claim);
    EXPECT_EQ(claim->previous, self ^ 1);
}

// An entry held in another pid namespace is never judged dead from here.
TEST(Registry, OtherNamespaceIsNeverReclaimed) {
    Segment segment = registry_segment(1);
    Registry registry(segment);
    registry.entry(0).identity.store((uint64_t{999999} << 32) | 5);  // no such pid here
    registry.entry(0).pid_namespace.store(detail::current_pid_namespace() + 1);
    EXPECT_EQ(registry.liveness(0), Liveness::unknown);
    EXPECT_FALSE(registry.claim());
}

// A Participant inherited across fork() re-registers in the child.
TEST(Registry, ParticipantReRegistersAfterFork) {
    Segment segment = registry_segment(2);
    Participant participant{Registry(segment)};
    auto index = participant.ensure();
    ASSERT_TRUE(index);
    int code = run_child([&] {
        auto child_index = participant.ensure();
        if (!child_index || *child_index == *index) return 1;
        Registry registry(segment);
        if (detail::identity_pid(registry.entry(*child_index).identity.load()) != getpid()) {
            return 2;
        }
        participant.release();
        return registry.entry(*child_index).identity.load() == 0 ? 0 : 3;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(Registry(segment).liveness(*index), Liveness::alive);  // the parent's is kept
}

}  // namespace
}  // namespace shuttle
