// The scenario runner never rots: `shuttle_scenarios --quick` runs every scenario with every
// installed peer across real processes (counts and checksums checked) and must exit 0 with
// tables and no failure.
#include <array>
#include <cstdio>
#include <string>

#include "support.hpp"

#ifdef SHUTTLE_BENCH_SCENARIOS
TEST(BenchSmoke, QuickRunPrintsTablesWithoutFailures) {
    if (shuttle::test::sanitized()) GTEST_SKIP() << "the bench is not built sanitized";
    std::string command = std::string(SHUTTLE_BENCH_SCENARIOS) + " --quick 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    std::array<char, 4096> chunk{};
    while (auto got = fread(chunk.data(), 1, chunk.size(), pipe)) output.append(chunk.data(), got);
    int status = pclose(pipe);
    ASSERT_TRUE(WIFEXITED(status)) << output;
    EXPECT_EQ(WEXITSTATUS(status), 0) << output;
    for (const char* scenario : {"== notes-1x1", "== notes-3x2", "== notes-joinable",
                                 "== notes-pipe", "== notes-tickets", "== ping-pong", "== sweep"}) {
        EXPECT_NE(output.find(scenario), std::string::npos) << scenario << " missing\n" << output;
    }
    EXPECT_NE(output.find("boost-mq"), std::string::npos) << output;
    EXPECT_NE(output.find("failures: 0"), std::string::npos) << output;
    EXPECT_EQ(output.find("FAILED"), std::string::npos) << output;
}
#else
TEST(BenchSmoke, QuickRunPrintsTablesWithoutFailures) {
    GTEST_SKIP() << "built without the bench (SHUTTLE_BUILD_BENCH=OFF)";
}
#endif
