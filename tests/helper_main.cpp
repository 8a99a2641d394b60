// A separate program the tests exec, to prove attaching from an unrelated (exec'd) process.
#include <fcntl.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "counters_segment.hpp"
#include "shuttle/event.hpp"

int main(int argc, char** argv) {
    using namespace shuttle;
    if (argc == 4 && std::strcmp(argv[1], "segment-add") == 0) {
        Segment named = Segment::open(argv[2], test::counters_expectation());
        test::counters(named)[1].fetch_add(100);
        Segment inherited = Segment::open_fd(std::atoi(argv[3]), test::counters_expectation());
        test::counters(inherited)[1].fetch_add(200);
        return 0;
    }
    if (argc == 3 && std::strcmp(argv[1], "event-set") == 0) {
        Event::open_fd(std::atoi(argv[2])).set();
        return 0;
    }
    if (argc == 3 && std::strcmp(argv[1], "fd-is-open") == 0) {
        // 10 if descriptor FD was inherited across exec, 11 if it was closed.
        return ::fcntl(std::atoi(argv[2]), F_GETFD) >= 0 ? 10 : 11;
    }
    std::cerr << "usage: shuttle_test_helper segment-add NAME FD | event-set FD | fd-is-open FD\n";
    return 2;
}
