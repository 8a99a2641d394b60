// The queue examples run as programs, and say what the notes say they do.
#include "support.hpp"

namespace shuttle {
namespace {

using test::count_of;
using test::example;
using test::run_program;

TEST(QueueExamples, Notes1x1StopsOnItsSentinel) {
    auto run = run_program(example("notes_1x1"), {"--items", "10"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, "consumer got "), 10u) << run.output;
    EXPECT_NE(run.output.find("consumer: 10 items, sum 45"), std::string::npos) << run.output;
}

TEST(QueueExamples, Notes3x2WithSentinelsAndWithShutdown) {
    for (std::vector<std::string> mode : {std::vector<std::string>{}, {"--shutdown"}}) {
        mode.insert(mode.end(), {"--items", "4", "--bulk", "20000"});
        auto run = run_program(example("notes_3x2"), mode);
        EXPECT_EQ(run.exit_code, 0) << run.output;
        EXPECT_EQ(count_of(run.output, "put item"), 12u) << run.output;
        EXPECT_EQ(count_of(run.output, " got item "), 12u) << run.output;
        for (int p = 0; p < 3; ++p) {
            EXPECT_EQ(count_of(run.output, "from producer " + std::to_string(p) + "\n"), 4u);
        }
        // The sentinels (or the shutdown) as the notes print them, and each consumer's exit.
        const bool shutting_down = mode.front() == "--shutdown";
        const auto announced = run.output.find(
            shutting_down ? "parent: producers joined; shutting the queue down"
                          : "parent: producers joined; putting one sentinel per consumer");
        ASSERT_NE(announced, std::string::npos) << run.output;
        EXPECT_EQ(count_of(run.output,
                           shutting_down ? "got 'shut down', exits" : "got the sentinel, exits"),
                  2u)
            << run.output;
        EXPECT_EQ(count_of(run.output, " done\n"), 3u) << run.output;
        // Flushed per line into a pipe: the parent's line, written before the sentinels are put,
        // comes before any consumer's reaction to them (fully buffered, it would come at exit).
        EXPECT_LT(announced, run.output.find(", exits after")) << run.output;
        // The throughput line comes last.
        const auto throughput = run.output.find("M items/s");
        ASSERT_NE(throughput, std::string::npos) << run.output;
        EXPECT_EQ(run.output.find('\n', throughput), run.output.size() - 1) << run.output;
    }
}

TEST(QueueExamples, NotesJoinableEndsWhenJoinReturns) {
    auto run = run_program(example("notes_joinable"), {"--items", "10"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, "consumer processed "), 10u) << run.output;
    EXPECT_NE(run.output.find("producer: all 10 items processed"), std::string::npos);
    // join() returned only after the last task_done(): the last "processed" line comes first.
    EXPECT_LT(run.output.rfind("consumer processed"), run.output.find("producer: all"));
}

}  // namespace
}  // namespace shuttle
