// Stale segments: found, told apart from attached ones, reaped; the `shuttle` command shows what
// a queue's survivors wait on and what was lost.
#include <fmt/format.h>

#include "queue_support.hpp"
#include "shuttle/detail/os.hpp"
#include "shuttle/inspect.hpp"

namespace shuttle {
namespace {

TEST(Inspect, ASegmentOnlyADeadProcessUsedIsStaleAndReaped) {
    const std::string prefix = unique_name("reap");
    NameGuard stale_name(prefix + "-stale"), kept_name(prefix + "-kept");
    Process creator([&] {
        auto queue = Queue<Item>::create(*stale_name, 8);
        (void)queue.try_put({1, 1});  // registers, and keeps the mapping
        ::raise(SIGKILL);
        return 99;
    });
    creator.start();
    ASSERT_TRUE(test::join_or_fail(creator));
    auto kept = Queue<Item>::create(*kept_name, 8);  // this process stays attached

    auto stale = inspect_segment(*stale_name);
    ASSERT_TRUE(stale);
    EXPECT_TRUE(stale->readable) << stale->problem;
    EXPECT_EQ(stale->kind, ObjectKind::queue);
    EXPECT_EQ(stale->creator_pid, creator.pid());
    EXPECT_FALSE(stale->creator_alive);
    EXPECT_TRUE(stale->registered.empty());
    EXPECT_TRUE(stale->mapping.empty());
    EXPECT_TRUE(stale->stale());
    auto live = inspect_segment(*kept_name);
    ASSERT_TRUE(live);
    EXPECT_EQ(live->mapping, std::vector<pid_t>{getpid()});
    EXPECT_FALSE(live->stale());

    EXPECT_EQ(list_segments(prefix).size(), 2u);
    EXPECT_EQ(reap_stale(prefix), std::vector<std::string>{*stale_name});
    EXPECT_FALSE(inspect_segment(*stale_name));
    EXPECT_TRUE(inspect_segment(*kept_name));
    EXPECT_TRUE(kept.try_put({2, 2}));
}

TEST(Inspect, ForeignFilesAreNeverReaped) {
    const std::string name = unique_name("foreign");
    const std::string path = detail::shm_directory() + "/" + name;
    std::FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs(std::string(512, 'x').c_str(), file);
    std::fclose(file);
    NameGuard guard(name);
    auto summary = inspect_segment(name);
    ASSERT_TRUE(summary);
    EXPECT_FALSE(summary->shuttle);
    EXPECT_FALSE(summary->stale());
    EXPECT_TRUE(reap_stale(name).empty());
}

TEST(Inspect, TheCommandShowsWhatAQueueWaitsOnAndWhatWasLost) {
    NameGuard name(unique_name("cli"));
    auto queue = Queue<Item>::create(*name, 8);
    Process holder([&] {
        detail::set_kill_point_hook([](const char*) { ::raise(SIGSTOP); });
        detail::arm_kill_point("queue.put.claimed");
        (void)queue.put({1, 1});
        return 99;
    });
    holder.start();
    std::vector<Stall> stalls;
    ASSERT_TRUE(test::wait_until_true([&] { return !(stalls = queue.stalls()).empty(); }, 10s));
    auto shown = test::run_program(SHUTTLE_CLI, {"inspect", *name});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_NE(shown.output.find(fmt::format(
                  "waiting on pid {} (stopped): it holds ticket 0 mid-put", holder.pid())),
              std::string::npos)
        << shown.output;
    holder.kill();
    ASSERT_TRUE(test::join_or_fail(holder));
    EXPECT_EQ(queue.get_for(5ms).error(), errc::timeout);  // repairs the slot (if it gets to)
    // Under load a 5 ms get can time out before its first recovery: repair it for certain.
    ASSERT_TRUE(test::eventually([&] { return queue.recover() && queue.lost_count() == 1; }));
    shown = test::run_program(SHUTTLE_CLI, {"inspect", *name});
    EXPECT_NE(shown.output.find("lost with killed processes: 1"), std::string::npos)
        << shown.output;
    EXPECT_NE(shown.output.find(fmt::format("ticket 0 put by pid {}", holder.pid())),
              std::string::npos)
        << shown.output;
    shown = test::run_program(SHUTTLE_CLI, {"list", *name});
    EXPECT_NE(shown.output.find(*name), std::string::npos) << shown.output;
}

TEST(Inspect, TheCommandShowsLeasedTasksAndRedeliveries) {
    NameGuard name(unique_name("cli"));
    auto queue = JoinableQueue<Item>::create(*name, 8, {.redelivery = true});
    ASSERT_TRUE(queue.try_put({1, 1}));
    auto task = queue.try_get_task();
    ASSERT_TRUE(task);
    auto shown = test::run_program(SHUTTLE_CLI, {"inspect", *name});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_NE(shown.output.find(fmt::format("redelivery: 0 tasks redelivered after their holder "
                                            "died; leases: [entry {} held ticket 0]",
                                            task->id.holder)),
              std::string::npos)
        << shown.output;
    ASSERT_TRUE(queue.task_done(*task));
    shown = test::run_program(SHUTTLE_CLI, {"inspect", *name});
    EXPECT_NE(shown.output.find("leases: none held"), std::string::npos) << shown.output;
}

}  // namespace
}  // namespace shuttle
