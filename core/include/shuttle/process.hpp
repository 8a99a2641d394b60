// shuttle::Process: Python's multiprocessing.Process for C++ — run a callable in a fork()ed
// child, join it (with or without a timeout), terminate or kill it, read its exit code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>

#include "shuttle/wait.hpp"

namespace shuttle {

struct ProcessOptions {
    /// A daemon child is killed (SIGKILL) when its parent dies, as Python's daemon processes
    /// are terminated when their parent exits. (Linux ties this to the parent *thread* that
    /// forked: start daemons from a thread that outlives them, e.g. main.)
    bool daemon = false;
    std::string name;  // for messages only
};

/// A child process running `target`. Movable, not copyable. Not thread-safe: use one handle
/// from one thread at a time.
///
/// The child: stdio is flushed in the parent before fork() so nothing is written twice; the
/// child runs `target`, flushes its own output and leaves with _exit (no atexit handlers, no
/// static destructors of the parent's objects). Its exit code is the int `target` returns (0
/// for a void target); an exception escaping `target` prints a message to stderr and exits 1.
///
/// Destroying a handle whose child still runs kills (SIGKILL) and reaps it: join first.
class Process {
  public:
    Process() = default;
    template <class F>
    requires std::is_invocable_v<F&>
    explicit Process(F target, ProcessOptions options = {})
        : target_(wrap(std::move(target))), options_(std::move(options)) {}

    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    /// Forks and runs the target in the child. Throws Error if already started or fork fails.
    void start();
    /// Waits for the child to exit. Blocking; EINTR retried.
    void join();
    /// Waits at most `timeout`; returns true if the child has exited (and was reaped).
    /// Any std::chrono::duration; saturating (duration::max() waits without limit, see
    /// deadline_after() in shuttle/wait.hpp).
    template <class Rep, class Period>
    bool join_for(std::chrono::duration<Rep, Period> timeout) {
        return join_until(deadline_after(timeout));
    }
    bool join_until(std::chrono::steady_clock::time_point deadline);
    /// Non-blocking: true if started and not yet exited.
    bool is_alive();
    /// SIGTERM / SIGKILL. No-op if the child has already been reaped.
    void terminate();
    void kill();
    /// Sends `signal_number` to the child.
    void signal(int signal_number);

    pid_t pid() const noexcept { return pid_; }
    /// nullopt while running (or never started); the exit status once reaped; minus the
    /// signal number if the child was killed by a signal (as Python: -9 after SIGKILL).
    std::optional<int> exitcode() const noexcept { return exitcode_; }
    const std::string& name() const noexcept { return options_.name; }
    bool daemon() const noexcept { return options_.daemon; }

  private:
    template <class F>
    static std::function<int()> wrap(F target) {
        if constexpr (std::is_convertible_v<std::invoke_result_t<F&>, int>) {
            return [target = std::move(target)]() mutable { return static_cast<int>(target()); };
        } else {
            return [target = std::move(target)]() mutable {
                target();
                return 0;
            };
        }
    }
    bool reap(bool block);
    void release() noexcept;

    std::function<int()> target_;
    ProcessOptions options_;
    pid_t pid_ = 0;
    int pidfd_ = -1;
    std::optional<int> exitcode_;
};

/// Starts a process running `target` and returns its handle (Process + start()).
template <class F>
Process spawn(F target, ProcessOptions options = {}) {
    Process process(std::move(target), std::move(options));
    process.start();
    return process;
}

}  // namespace shuttle
