// The Pool examples run as programs, and say what the notes say they do.
#include <string>

#include "support.hpp"

namespace shuttle {
namespace {

using test::count_of;
using test::example;
using test::run_program;

TEST(PoolExamples, MapAgainstOneProcessPerTask) {
    auto run = run_program(example("pool_map"), {"--tasks", "40"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("map of 40 tasks in "), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("one process per task: 40 tasks in "), std::string::npos);
    EXPECT_NE(run.output.find("results agree"), std::string::npos) << run.output;
}

TEST(PoolExamples, ApplyAgainstApplyAsync) {
    auto run = run_program(example("pool_apply"), {"--tasks", "4", "--workers", "4"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("apply:       4 tasks, sum 14,"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("apply_async: 4 tasks, sum 14,"), std::string::npos) << run.output;
}

TEST(PoolExamples, CallbackRunsInTheParent) {
    auto run = run_program(example("pool_callback"), {"--tasks", "4"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    const auto at = run.output.find("parent pid ");
    ASSERT_NE(at, std::string::npos) << run.output;
    const std::string parent = run.output.substr(at + 11, run.output.find('\n', at) - at - 11);
    // Every callback ran in the parent; the workers are other processes.
    EXPECT_EQ(count_of(run.output, "callback in pid " + parent + ": cube "), 4u) << run.output;
    EXPECT_EQ(count_of(run.output, "computed by worker pid " + parent + "\n"), 0u) << run.output;
    EXPECT_NE(run.output.find("cube 27 computed by worker pid "), std::string::npos);
}

TEST(PoolExamples, PreforkServerAnswersEveryRequest) {
    auto run = run_program(example("pool_prefork_server"), {"--requests", "6", "--workers", "3"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("listening on 127.0.0.1:"), std::string::npos) << run.output;
    EXPECT_EQ(count_of(run.output, "client got: worker "), 6u) << run.output;
    EXPECT_NE(run.output.find("6 requests answered by "), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("the workers report 6"), std::string::npos) << run.output;
}

TEST(PoolExamples, ImapShowsProgress) {
    auto run = run_program(example("pool_imap_progress"), {"--tasks", "20"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, "\rprogress: "), 20u) << run.output;
    EXPECT_NE(run.output.find("progress: 20/20 (100%)"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("done: sum 380"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace shuttle
