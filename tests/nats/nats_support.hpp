// The NATS tests' harness: real nats-server processes on free loopback ports with temporary
// store directories, stopped by pid (never a system service), and child programs (this test
// binary re-executed in a role: a fresh process, so no libnats state crosses a fork).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shuttle/nats.hpp"

namespace shuttle::test {

using namespace std::chrono_literals;

/// A free TCP port on 127.0.0.1 (bound, read back, released).
int free_loopback_port();

/// One `nats-server -js` on 127.0.0.1, optionally one member of a loopback cluster. The server
/// is a child of the test process with PR_SET_PDEATHSIG: it dies with the test process, and the
/// destructor SIGKILLs it and removes its store directory.
class NatsServer {
  public:
    struct Options {
        std::string server_name;                   // required in a cluster
        std::string cluster_name;                  // "" : standalone
        int cluster_port = 0;                      // this member's route port
        std::vector<int> route_ports;              // every member's route port
        std::vector<std::string> extra_arguments;  // --user, --pass, ...
    };
    NatsServer() : NatsServer(Options{}) {}
    explicit NatsServer(Options options);
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;
    ~NatsServer();

    /// Starts it and waits until it accepts connections (at most 10 s, else the test fails).
    /// The first start lets the server choose a free port (`-p -1`, read back from its log); a
    /// restart uses the same port and store directory. Blocking.
    void start();
    /// SIGKILLs it and reaps it. Idempotent.
    void kill();
    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    /// Its client port: 0 until the first start() returned.
    int port() const { return port_; }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
    /// The last lines of its log, for a failure message.
    std::string log_tail() const;

  private:
    Options options_;
    int port_ = 0;
    std::string directory_;
    pid_t pid_ = -1;
};

/// Polls `condition` (a network round trip, typically) with a short backoff until it holds or
/// `limit` passes: whether it held. Bounded.
template <class Condition>
bool eventually_true(Condition condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto backoff = 1ms;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(backoff);  // polling a remote state: nothing to wait on
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 50ms);
    }
    return true;
}

/// Whether nats-server is installed (else the NATS tests skip, saying why).
bool have_nats_server();

/// Connection options for a test: these servers, short timeouts.
nats::ConnectionOptions test_connection(const std::vector<std::string>& urls);

/// A child: this test binary re-executed as `--role <role> <arguments...>`, its stdout and
/// stderr into a file. Killed (SIGKILL) with the test process and by the destructor.
class Child {
  public:
    Child(const std::string& role, const std::vector<std::string>& arguments);
    Child(Child&& other) noexcept;
    Child(const Child&) = delete;
    ~Child();
    /// Waits at most `limit` for it to exit: its exit code (-signal if killed), or -1000 after
    /// killing it if it hung (and the test fails).
    int join(std::chrono::milliseconds limit = 20000ms);
    void kill();
    pid_t pid() const { return pid_; }
    /// What it printed so far.
    std::string output() const;
    /// Waits (bounded) until its output contains `text`.
    bool wait_for_output(const std::string& text, std::chrono::milliseconds limit = 10000ms) const;

  private:
    pid_t pid_ = -1;
    std::string output_path_;
};

/// Runs a role in this process (the binary's main calls it for `--role`): its exit code.
int run_role(int argc, char** argv);

/// The integers a child printed, one per line as "item N".
std::vector<long> items_in(const std::string& output);

}  // namespace shuttle::test
