#include "shuttle/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <thread>

#include "shuttle/detail/os.hpp"
#include "shuttle/error.hpp"
#include "shuttle/wait.hpp"

namespace shuttle {
namespace {

void flush_all() {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
}

[[noreturn]] void run_child(const std::function<int()>& target, const ProcessOptions& options,
                            pid_t parent) {
    int code = 0;
    if (options.daemon && !detail::die_with_parent(parent)) detail::exit_process(1);
    try {
        code = target();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "shuttle::Process %s(pid %d): uncaught exception: %s\n",
                     options.name.empty() ? "" : (options.name + " ").c_str(),
                     detail::current_pid(), error.what());
        code = 1;
    } catch (...) {
        std::fprintf(stderr, "shuttle::Process (pid %d): uncaught non-standard exception\n",
                     detail::current_pid());
        code = 1;
    }
    flush_all();
    detail::exit_process(code & 0xff);
}

}  // namespace

Process::Process(Process&& other) noexcept {
    *this = std::move(other);
}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        release();
        target_ = std::exchange(other.target_, nullptr);  // a moved-from Process is empty
        options_ = std::move(other.options_);
        pid_ = std::exchange(other.pid_, 0);
        pidfd_ = std::exchange(other.pidfd_, -1);
        exitcode_ = std::exchange(other.exitcode_, std::nullopt);
    }
    return *this;
}

Process::~Process() {
    release();
}

void Process::release() noexcept {
    if (pid_ > 0 && !exitcode_) {
        detail::send_signal(pid_, SIGKILL);
        reap(true);
    }
    detail::close_fd(pidfd_);
    pidfd_ = -1;
}

void Process::start() {
    if (pid_ != 0) throw Error(errc::invalid_argument, "Process already started");
    if (!target_) throw Error(errc::invalid_argument, "Process has no target");
    flush_all();  // or the child would write the parent's buffered output again
    const pid_t parent = detail::current_pid();
    pid_t pid = detail::fork_process();
    if (pid < 0) throw_system_error(errno, "fork");
    if (pid == 0) run_child(target_, options_, parent);
    pid_ = pid;
    pidfd_ = detail::open_pidfd(pid);
}

bool Process::reap(bool block) {
    if (exitcode_) return true;
    if (pid_ <= 0) return false;
    exitcode_ = detail::reap_child(pid_, block);
    return exitcode_.has_value();
}

void Process::join() {
    if (pid_ <= 0) throw Error(errc::invalid_argument, "Process not started");
    reap(true);
}

bool Process::join_until(std::chrono::steady_clock::time_point deadline) {
    if (pid_ <= 0) throw Error(errc::invalid_argument, "Process not started");
    if (reap(false)) return true;
    if (pidfd_ >= 0) {
        if (!detail::wait_pidfd_until(pidfd_, deadline)) return reap(false);
        return reap(true);
    }
    // No pidfd (old kernel): poll.
    while (!reap(false)) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

bool Process::is_alive() {
    return pid_ > 0 && !reap(false);
}

void Process::signal(int signal_number) {
    if (pid_ > 0 && !exitcode_) detail::send_signal(pid_, signal_number);
}

void Process::terminate() {
    signal(SIGTERM);
}
void Process::kill() {
    signal(SIGKILL);
}

}  // namespace shuttle
