// Python's multiprocessing (the notes' own system) as a peer: bench/peers/python_peer.py runs
// the whole scenario in python3 and writes its figures to a file; CPU time is that of the
// python3 process and every child it reaped.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace shuttle::bench {
namespace {

class PythonPeer : public Peer {
  public:
    explicit PythonPeer(std::string script) : script_(std::move(script)) {
        if (!std::filesystem::exists(script_)) {
            missing_ = fmt::format("{} not found", script_);
        } else if (std::system("python3 -c 'import multiprocessing' >/dev/null 2>&1") != 0) {
            missing_ = "python3 not installed";
        }
    }
    std::string name() const override { return "python"; }
    std::optional<std::string> skip_reason(const RunSpec& spec) const override {
        if (!missing_.empty()) return missing_;
        if (spec.kind == Kind::idle) return "not measured (the script has no idle mode)";
        return std::nullopt;
    }
    std::vector<std::string> notes() const override {
        return {
            "python: multiprocessing Queue / JoinableQueue (8 B items are ints, larger ones "
            "bytes), Pipe send_bytes/recv_bytes for notes-pipe and ping-pong, Lock + Value "
            "for notes-tickets; the checksum there is the sum of the headers"};
    }
    Measurement run(const RunSpec& spec) override {
        Measurement measurement;
        auto out = std::filesystem::temp_directory_path() /
                   fmt::format("shuttle-bench-python-{}-{}.txt", getpid(), runs_++);
        std::filesystem::remove(out);
        std::vector<std::string> arguments = {
            "python3",     script_,
            "--kind",      kind_name(spec.kind),
            "--producers", std::to_string(spec.producers),
            "--consumers", std::to_string(spec.consumers),
            "--capacity",  std::to_string(spec.capacity),
            "--payload",   std::to_string(spec.payload),
            "--items",     std::to_string(spec.items_per_producer),
            "--seconds",   fmt::format("{}", spec.kind == Kind::tickets ? 0.0 : spec.budget_seconds),
            "--out",       out.string()};
        double cpu_before = cpu_seconds(false);
        Process child(
            [&arguments]() -> int {
                setpgid(0, 0);  // its own group, so a hung run is killed with its children
                std::vector<char*> argv;
                for (auto& argument : arguments) argv.push_back(argument.data());
                argv.push_back(nullptr);
                execvp("python3", argv.data());
                return 127;
            },
            ProcessOptions{.daemon = true});
        child.start();
        auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(spec.timeout_seconds));
        if (!child.join_for(limit)) {
            ::kill(-child.pid(), SIGKILL);
            child.kill();
            child.join();
            measurement.error = fmt::format("timed out after {:.0f} s", spec.timeout_seconds);
            return measurement;
        }
        measurement.cpu_seconds = cpu_seconds(false) - cpu_before;
        std::ifstream in(out);
        std::string line;
        bool ok = false;
        while (std::getline(in, line)) {
            auto equals = line.find('=');
            if (equals == std::string::npos) continue;
            auto key = line.substr(0, equals);
            auto value = line.substr(equals + 1);
            if (key == "ok")
                ok = value == "1";
            else if (key == "items")
                measurement.items = std::stoull(value);
            else if (key == "seconds")
                measurement.seconds = std::stod(value);
            else if (key == "p50_us")
                measurement.p50_us = std::stod(value);
            else if (key == "p99_us")
                measurement.p99_us = std::stod(value);
            else if (key == "error")
                measurement.error = value;
        }
        std::filesystem::remove(out);
        if (child.exitcode() != 0 && measurement.error.empty()) {
            measurement.error =
                fmt::format("python3 exited with {}", child.exitcode().value_or(-1));
        } else if (ok && measurement.seconds > 0) {
            measurement.ok = true;
        } else if (measurement.error.empty()) {
            measurement.error = "python peer wrote no result";
        }
        return measurement;
    }

  private:
    std::string script_;
    std::string missing_;
    int runs_ = 0;
};

}  // namespace

std::unique_ptr<Peer> make_python_peer(const std::string& script) {
    return std::make_unique<PythonPeer>(script);
}

}  // namespace shuttle::bench
