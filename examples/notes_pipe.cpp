// The notes' pipe demo (notes-pipe): the parent sends 10 messages over a Pipe and closes its end;
// the child prints each message and stops on EOF. Each process first closes the end it does not
// use -- the child's EOF comes only once every copy of the parent's end is closed, including the
// copy the child inherited through fork().
#include <fmt/format.h>

#include <cstdio>

#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"

int main() {
    auto [parent_end, child_end] = shuttle::Pipe();

    shuttle::Process child([&] {
        parent_end.close();  // the child only receives
        int received = 0;
        for (;;) {
            auto message = child_end.recv();
            if (!message) {
                if (message.error() == shuttle::errc::eof) break;  // parent closed: done
                fmt::print(stderr, "child: {}\n",
                           shuttle::make_error_code(message.error()).message());
                return 1;
            }
            fmt::print("child received: {}\n", *message);
            ++received;
        }
        fmt::print("child: EOF after {} messages\n", received);
        return received == 10 ? 0 : 1;
    });
    child.start();
    child_end.close();  // the parent only sends

    for (int i = 0; i < 10; ++i) parent_end.send(fmt::format("message {}", i)).value();
    parent_end.close();  // the child's recv() now reports EOF once it has read all ten

    child.join();
    fmt::print("parent: child exited with {}\n", *child.exitcode());
    return *child.exitcode();
}
