// Runs the sync examples and checks what they print.
#include <cstdio>
#include <string>

#include "sync_support.hpp"

namespace shuttle {
namespace {

struct ExampleRun {
    int exit_code = -1;
    std::string output;
};

ExampleRun run_example(const std::string& name) {
    const std::string command = "timeout 60 " SHUTTLE_EXAMPLES_DIR "/" + name + " 2>&1";
    ExampleRun run;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return run;
    char buffer[4096];
    size_t length;
    while ((length = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
        run.output.append(buffer, length);
    int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

size_t count(const std::string& text, const std::string& what) {
    size_t found = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++found;
    }
    return found;
}

TEST(SyncExamples, TicketsSellExactlyTheStock) {
    ExampleRun run = run_example("sync_tickets");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count(run.output, "got a ticket"), 6u) << run.output;
    EXPECT_EQ(count(run.output, "sold out"), 4u) << run.output;
    EXPECT_NE(run.output.find("sold 6 of 6 tickets to 10 buyers"), std::string::npos);
}

TEST(SyncExamples, SemaphoreKeepsAtMostThreeInside) {
    ExampleRun run = run_example("sync_semaphore");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count(run.output, ": in "), 24u) << run.output;
    EXPECT_EQ(count(run.output, "(4 inside)"), 0u) << run.output;
    EXPECT_NE(run.output.find("most inside at once:"), std::string::npos);
}

TEST(SyncExamples, TrafficLightLetsEveryCarGoOnGreen) {
    ExampleRun run = run_example("sync_traffic_light");
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(count(run.output, "goes on green"), 5u) << run.output;
    EXPECT_GE(count(run.output, "light: GREEN"), 1u);
    EXPECT_NE(run.output.find("5 cars passed"), std::string::npos);
}

}  // namespace
}  // namespace shuttle
