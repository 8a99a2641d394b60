#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
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
using steady_clock = std::chrono::steady_clock;

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
    Process holder(ProcessOptions{.daemon = true}, [&] {  // daemon: paused forever
        if (!registry.claim()) return 1;
        flag.store(1);
        for (;;) pause();
    });
    holder.start();
    ASSERT_TRUE(test::eventually([&] { return flag.load() == 1; })) << "the holder never claimed";
    EXPECT_FALSE(registry.claim());  // full: the holder is alive
    holder.kill();
    ASSERT_TRUE(test::join_or_fail(holder));
    auto claim = registry.claim();
    ASSERT_TRUE(claim);
    EXPECT_EQ(detail::identity_pid(claim->previous), holder.pid());
}

// An unreaped killed child is a zombie: dead for the registry.
TEST(Registry, ZombieCountsAsDead) {
    Segment segment = registry_segment(1);
    Registry registry(segment);
    std::atomic<uint64_t>& flag = test::counters(segment)[0];
    // A daemon: if this test process dies, the paused child goes with it.
    Process holder(
        [&] {
            if (!registry.claim()) return 1;
            flag.store(1);
            for (;;) pause();
        },
        ProcessOptions{.daemon = true});
    holder.start();
    ASSERT_TRUE(test::eventually([&] { return flag.load() == 1; })) << "the holder never claimed";
    EXPECT_EQ(registry.liveness(0), Liveness::alive);
    holder.kill();
    // Wait (bounded) until it has exited, without reaping it: its pidfd turns readable.
    int pidfd = detail::open_pidfd(holder.pid());
    ASSERT_GE(pidfd, 0);
    const bool exited = detail::wait_pidfd_until(pidfd, steady_clock::now() + 10s);
    detail::close_fd(pidfd);
    ASSERT_TRUE(exited) << "the killed holder did not exit";
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(holder.pid()), &info, WEXITED | WNOWAIT | WNOHANG),
              0);
    ASSERT_EQ(info.si_pid, holder.pid()) << "not a zombie yet";
    EXPECT_EQ(registry.liveness(0), Liveness::dead);
    EXPECT_TRUE(registry.claim());
    EXPECT_TRUE(test::join_or_fail(holder));  // reaps it
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

// A claimant from another pid namespace takes an entry last held (and released) in this one.
// Frozen (SIGSTOP at a kill point) between its identity CAS and its namespace store, it must not
// look dead from here: its pid means nothing in this namespace, and the entry must not say
// otherwise by still carrying the releaser's namespace.
TEST(Registry, ClaimantFromAnotherPidNamespaceIsNotJudgedDeadMidClaim) {
    if (::geteuid() != 0) GTEST_SKIP() << "a new pid namespace needs root (CAP_SYS_ADMIN)";
    Segment segment = registry_segment(1);
    Registry registry(segment);
    auto first = registry.claim();
    ASSERT_TRUE(first);
    registry.release(first->index);
    std::atomic<uint64_t>* slots = test::counters(segment);  // [0] frozen, [1] judged
    constexpr int cannot_unshare = 10;
    int code = run_child([&]() -> int {
        // This process stays here; its next child is pid 1 of a new pid namespace.
        if (::unshare(CLONE_NEWPID) != 0) return cannot_unshare;
        pid_t init = ::fork();
        if (init < 0) return 11;
        if (init == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            // Its own /proc, so that the claimant sees itself as it is in the new namespace.
            if (::unshare(CLONE_NEWNS) != 0 ||
                ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                ::mount("proc", "/proc", "proc", 0, nullptr) != 0) {
                _exit(20);
            }
            // pid 1 of a namespace cannot stop itself: the claimant is its child.
            pid_t claimant = ::fork();
            if (claimant == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                detail::arm_kill_point("registry.claim.before_namespace", 0, SIGSTOP);
                _exit(registry.claim() ? 0 : 21);
            }
            int status = 0;
            if (::waitpid(claimant, &status, WUNTRACED) != claimant || !WIFSTOPPED(status)) {
                _exit(22);
            }
            slots[0].store(1);
            if (!test::eventually([&] { return slots[1].load() != 0; })) _exit(23);
            ::kill(claimant, SIGCONT);
            if (::waitpid(claimant, &status, 0) != claimant) _exit(24);
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 25);
        }
        bool frozen = test::eventually([&] { return slots[0].load() != 0; });
        const Liveness mid_claim = registry.liveness(0);
        const uint64_t holder = registry.entry(0).identity.load();
        slots[1].store(1);
        int status = 0;
        if (::waitpid(init, &status, 0) != init) return 12;
        if (!frozen || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            return WIFEXITED(status) ? 100 + WEXITSTATUS(status) : 13;
        }
        if (holder == 0) return 14;  // the claim did not happen
        if (mid_claim == Liveness::dead) return 1;
        // Done claiming: still never judged from here (it is in another namespace).
        return registry.liveness(0) == Liveness::unknown ? 0 : 2;
    });
    if (code == cannot_unshare) GTEST_SKIP() << "cannot create a pid namespace here";
    EXPECT_NE(code, 1) << "the claimant was judged dead in the middle of its claim";
    EXPECT_EQ(code, 0);
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
