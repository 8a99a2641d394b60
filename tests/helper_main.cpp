// A separate program the tests exec, to prove attaching from an unrelated (exec'd) process.
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "counters_segment.hpp"

int main(int argc, char** argv) {
    using namespace shuttle;
    if (argc == 4 && std::strcmp(argv[1], "segment-add") == 0) {
        Segment named = Segment::open(argv[2], test::counters_expectation());
        test::counters(named)[1].fetch_add(100);
        Segment inherited = Segment::open_fd(std::atoi(argv[3]), test::counters_expectation());
        test::counters(inherited)[1].fetch_add(200);
        return 0;
    }
    std::cerr << "usage: shuttle_test_helper segment-add NAME FD\n";
    return 2;
}
