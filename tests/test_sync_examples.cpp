// Runs the sync examples and checks what they print.
#include <string>

#include "sync_support.hpp"

namespace shuttle {
namespace {

using test::count_of;

/// Runs example `name` (no arguments), its stdout and stderr captured; killed after 60 s.
test::ProgramOutput run_example(const std::string& name) {
    return test::run_program(std::string(SHUTTLE_EXAMPLES_DIR) + "/" + name, {}, 60000ms);
}

TEST(SyncExamples, TicketsSellExactlyTheStock) {
    auto run = run_example("sync_tickets");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, "got a ticket"), 6u) << run.output;
    EXPECT_EQ(count_of(run.output, "sold out"), 4u) << run.output;
    EXPECT_NE(run.output.find("sold 6 of 6 tickets to 10 buyers"), std::string::npos);
}

TEST(SyncExamples, SemaphoreKeepsAtMostThreeInside) {
    auto run = run_example("sync_semaphore");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, ": in "), 24u) << run.output;
    EXPECT_EQ(count_of(run.output, "(4 inside)"), 0u) << run.output;
    EXPECT_NE(run.output.find("most inside at once:"), std::string::npos);
}

TEST(SyncExamples, TrafficLightLetsEveryCarGoOnGreen) {
    auto run = run_example("sync_traffic_light");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count_of(run.output, "goes on green"), 5u) << run.output;
    EXPECT_GE(count_of(run.output, "light: GREEN"), 1u);
    EXPECT_NE(run.output.find("5 cars passed"), std::string::npos);
}

}  // namespace
}  // namespace shuttle
