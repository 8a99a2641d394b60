// shuttle::Process: Python's multiprocessing.Process for C++ — run a callable (with arguments)
// in a fork()ed child, join it (with or without a timeout), terminate or kill it, read its exit
// code; current_process() names the process it is called in.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace shuttle {

struct ProcessOptions {
    /// A daemon child is killed (SIGKILL) when its parent dies, and terminated when its handle
    /// is destroyed while it runs — as Python terminates daemonic children when their parent
    /// exits. (Linux ties "parent dies" to the parent *thread* that forked: start daemons from a
    /// thread that outlives them, e.g. main.)
    bool daemon = false;
    /// Empty: Python's default, "Process-N" (N counts the Processes made in this process; a
    /// child's children are "Process-N:M").
    std::string name;
};

/// What current_process() reports: the calling process's name, pid and daemon flag.
struct ProcessInfo {
    std::string name;  // "MainProcess" outside any shuttle::Process child
    pid_t pid = 0;
    bool daemon = false;
};

/// The process this is called in, as Python's multiprocessing.current_process(): in a child
/// started by shuttle::Process, that Process's name (as it was at start()) and daemon flag; in
/// any other process "MainProcess". Thread-safe; never blocks.
ProcessInfo current_process();

namespace detail {
/// The callable a child runs, type-erased; move-only arguments are welcome.
struct ProcessTarget {
    virtual ~ProcessTarget() = default;
    virtual int run() = 0;
};

template <class F, class... Args>
struct BoundProcessTarget final : ProcessTarget {
    template <class G, class... A>
    explicit BoundProcessTarget(G&& target, A&&... arguments)
        : target_(std::forward<G>(target)), arguments_(std::forward<A>(arguments)...) {}
    int run() override {
        // Called once, in the child: the arguments are handed over as rvalues (as std::thread).
        using Result = std::invoke_result_t<F, Args...>;
        if constexpr (std::is_convertible_v<Result, int>) {
            return static_cast<int>(std::apply(std::move(target_), std::move(arguments_)));
        } else {
            std::apply(std::move(target_), std::move(arguments_));
            return 0;
        }
    }
    F target_;
    std::tuple<Args...> arguments_;
};

template <class T>
inline constexpr bool is_process_options = std::is_same_v<std::remove_cvref_t<T>, ProcessOptions>;
}  // namespace detail

/// A child process running `target(args...)`. Movable, not copyable. Not thread-safe: use one
/// handle from one thread at a time.
///
/// The target and its arguments are decay-copied (or moved) into the handle, as std::thread
/// does, and passed to the target as rvalues in the child; move-only ones work. Capture by
/// reference only what the fork()ed child should see as it was at start().
///
/// The child: stdio is flushed in the parent before fork() so nothing is written twice; the
/// child runs `target`, flushes its own output and leaves with _exit (no atexit handlers, no
/// static destructors of the parent's objects). Its exit code is the int `target` returns (0
/// for a void target); an exception escaping `target` prints a message to stderr and exits 1.
///
/// Destroying (or assigning over) a handle whose child still runs — in the process that started
/// it — waits for it, as std::jthread joins and as Python joins non-daemon children at exit:
/// blocking, without limit. A daemon child is terminated instead: SIGTERM, then SIGKILL if it
/// has not exited within `daemon_grace`, and reaped. A copy of a handle in another process (a
/// fork()ed child's copy of its parent's handles) does neither.
class Process {
  public:
    /// How long destroying a daemon's handle waits after SIGTERM before SIGKILL.
    static constexpr std::chrono::milliseconds daemon_grace{1000};

    Process() = default;
    /// Process(f, args...): a child that will run f(args...), named "Process-N".
    template <class F, class... Args>
    requires(!detail::is_process_options<F> && (!detail::is_process_options<Args> && ...) &&
             std::is_invocable_v<std::decay_t<F>,
                                 std::decay_t<Args>...>) explicit Process(F&& target,
                                                                          Args&&... arguments)
        : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(arguments)...) {}
    /// Process(options, f, args...): the same with a name and/or the daemon flag.
    template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...> Process(
        ProcessOptions options, F&& target, Args&&... arguments)
        : target_(
              std::make_unique<detail::BoundProcessTarget<std::decay_t<F>, std::decay_t<Args>...>>(
                  std::forward<F>(target), std::forward<Args>(arguments)...)) {
        name_process(std::move(options));
    }
    /// Process(f, options): a child that will run f(), with options (the older spelling).
    template <class F>
    requires std::is_invocable_v<std::decay_t<F>> Process(F&& target, ProcessOptions options)
        : Process(std::move(options), std::forward<F>(target)) {}

    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    /// Joins a running non-daemon child; terminates a running daemon (see the class comment).
    ~Process();

    /// Forks and runs the target in the child. Throws Error if already started or fork fails.
    void start();
    /// Waits for the child to exit. Blocking; EINTR retried.
    void join();
    /// Waits at most `timeout`; returns true if the child has exited (and was reaped).
    bool join_for(std::chrono::steady_clock::duration timeout);
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
    /// "Process-N" unless named (options or set_name). The child sees the name as it was at
    /// start() (current_process().name); renaming later changes only this handle, as in Python.
    const std::string& name() const noexcept { return name_; }
    void set_name(std::string name) { name_ = std::move(name); }
    bool daemon() const noexcept { return daemon_; }

  private:
    void name_process(ProcessOptions options);
    bool reap(bool block);
    bool wait_until(std::chrono::steady_clock::time_point deadline) noexcept;
    void release() noexcept;

    std::unique_ptr<detail::ProcessTarget> target_;
    std::string name_;
    std::string identity_;  // Python's _identity, "N" or "N:M": names the child's own children
    bool daemon_ = false;
    pid_t pid_ = 0;
    pid_t started_by_ = 0;  // the process that forked the child: only it joins or reaps
    int pidfd_ = -1;
    std::optional<int> exitcode_;
};

/// Starts a process and returns its handle: spawn(f, args...), spawn(options, f, args...) or
/// spawn(f, options) — Process(...) + start().
template <class... A>
requires std::constructible_from<Process, A...> Process spawn(A&&... arguments) {
    Process process(std::forward<A>(arguments)...);
    process.start();
    return process;
}

}  // namespace shuttle
