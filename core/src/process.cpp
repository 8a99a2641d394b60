#include "shuttle/process.hpp"

#include <atomic>
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

// Who this process is, for current_process() and the default names of the Processes it makes.
// Written only in a fork()ed child before its target runs (one thread then); read by any thread.
struct ThisProcess {
    std::string name = "MainProcess";
    std::string identity;  // "" in the main process; "1", "1:2", ... in children
    bool daemon = false;
};
ThisProcess this_process;
std::atomic<unsigned> processes_made{0};  // Python's _process_counter; restarts in each child

[[noreturn]] void run_child(detail::ProcessTarget& target, const std::string& name,
                            std::string identity, bool daemon, pid_t parent) {
    int code = 0;
    if (daemon && !detail::die_with_parent(parent)) detail::exit_process(1);
    this_process = ThisProcess{name, std::move(identity), daemon};
    processes_made.store(0, std::memory_order_relaxed);
    try {
        code = target.run();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "shuttle::Process %s (pid %d): uncaught exception: %s\n", name.c_str(),
                     detail::current_pid(), error.what());
        code = 1;
    } catch (...) {
        std::fprintf(stderr, "shuttle::Process %s (pid %d): uncaught non-standard exception\n",
                     name.c_str(), detail::current_pid());
        code = 1;
    }
    flush_all();
    detail::exit_process(code & 0xff);
}

}  // namespace

ProcessInfo current_process() {
    return ProcessInfo{this_process.name, detail::current_pid(), this_process.daemon};
}

void Process::name_process(ProcessOptions options) {
    const unsigned number = processes_made.fetch_add(1, std::memory_order_relaxed) + 1;
    identity_ = this_process.identity.empty()
                    ? std::to_string(number)
                    : this_process.identity + ":" + std::to_string(number);
    name_ = options.name.empty() ? "Process-" + identity_ : std::move(options.name);
    daemon_ = options.daemon;
}

Process::Process(Process&& other) noexcept {
    *this = std::move(other);
}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        release();
        target_ = std::move(other.target_);
        name_ = std::move(other.name_);
        identity_ = std::move(other.identity_);
        daemon_ = other.daemon_;
        pid_ = std::exchange(other.pid_, 0);
        started_by_ = std::exchange(other.started_by_, 0);
        pidfd_ = std::exchange(other.pidfd_, -1);
        exitcode_ = std::exchange(other.exitcode_, std::nullopt);
    }
    return *this;
}

Process::~Process() {
    release();
}

void Process::release() noexcept {
    // Only the process that forked the child may wait for it; a fork()ed copy of this handle
    // would signal or wait on a pid that is not its child.
    if (pid_ > 0 && !exitcode_ && started_by_ == detail::current_pid()) {
        if (daemon_) {
            detail::send_signal(pid_, SIGTERM);
            if (!wait_until(deadline_after(daemon_grace))) {
                detail::send_signal(pid_, SIGKILL);
            }
        }
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
    if (pid == 0) run_child(*target_, name_, identity_, daemon_, parent);
    pid_ = pid;
    started_by_ = parent;
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

bool Process::join_for(std::chrono::steady_clock::duration timeout) {
    // Saturating: join_for(duration::max()) waits without limit instead of overflowing into
    // the past.
    return join_until(deadline_after(timeout));
}

bool Process::join_until(std::chrono::steady_clock::time_point deadline) {
    if (pid_ <= 0) throw Error(errc::invalid_argument, "Process not started");
    return wait_until(deadline);
}

bool Process::wait_until(std::chrono::steady_clock::time_point deadline) noexcept {
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
