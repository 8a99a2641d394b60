// Runs the Value example (the notes' ticket counter) and checks what it prints.
#include "support.hpp"

namespace shuttle {
namespace {

TEST(ValueExamples, TicketsSellExactlyTheStock) {
    test::ProgramOutput run = test::run_program(SHUTTLE_EXAMPLES_DIR "/value_tickets", {});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(test::count_of(run.output, "got a ticket"), 6u) << run.output;
    EXPECT_EQ(test::count_of(run.output, "sold out"), 4u) << run.output;
    EXPECT_NE(run.output.find("sold 6 of 6 tickets to 10 buyers"), std::string::npos);
}

}  // namespace
}  // namespace shuttle
