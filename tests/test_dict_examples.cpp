// Runs the Manager examples (the notes' shared list and bank account) and checks what they print.
#include "support.hpp"

namespace shuttle {
namespace {

TEST(DictExamples, ListDecrementedInAChildIsPrintedByTheParent) {
    test::ProgramOutput run = test::run_program(SHUTTLE_EXAMPLES_DIR "/manager_list", {});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output, "[0, 1, 2, 3, 4]\n");
}

TEST(DictExamples, BankBalanceIsExact) {
    test::ProgramOutput run = test::run_program(SHUTTLE_EXAMPLES_DIR "/manager_bank", {});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("3000 deposits of 5, 2000 withdrawals of 4"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("balance: "), std::string::npos) << run.output;
}

}  // namespace
}  // namespace shuttle
