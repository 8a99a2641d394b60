// The operating-system calls of shuttle's libraries go through here (implemented in
// core/src/os_linux.cpp): futexes, shared-memory files, process identity and liveness, fork
// bookkeeping, child processes. Two exceptions, each in one file: Lock's robust mutex is
// glibc's (sync/src/lock.cpp says why), and the pipe's socketpair doorbell is the pipe's own
// (pipe/src/pipe_socket_linux.cpp).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shuttle::detail {

using steady_clock = std::chrono::steady_clock;

static_assert(sizeof(void*) == 8, "shuttle supports 64-bit Linux only");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "64-bit atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "32-bit atomics must be lock-free");
static_assert(sizeof(std::atomic<uint32_t>) == 4, "a futex word is exactly 32 bits");

// ---- futex (shared, never FUTEX_PRIVATE_FLAG: waiters live in other processes) ----------------

/// Sleeps while `word == expected`, at most until `deadline` (steady_clock::time_point::max()
/// sleeps without limit). EINTR is retried. Returns false on timeout, true otherwise (woken,
/// value changed, or spurious): callers re-check their condition either way.
bool futex_wait_until(const std::atomic<uint32_t>& word, uint32_t expected,
                      steady_clock::time_point deadline) noexcept;

/// Wakes up to `count` waiters sleeping on `word` in any process.
void futex_wake(const std::atomic<uint32_t>& word, int count) noexcept;
void futex_wake_all(const std::atomic<uint32_t>& word) noexcept;

/// One yield of the processor (sched_yield).
void yield_processor() noexcept;

/// A spin-loop hint (pause on x86-64).
inline void cpu_relax() noexcept {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#else
    std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// ---- process identity and liveness ------------------------------------------------------------

/// pid in the high 32 bits, the low 32 bits of the process start time (clock ticks since boot)
/// in the low 32 bits. Never 0. Distinguishes a reused pid from the process that held it.
using ProcessIdentity = uint64_t;

ProcessIdentity current_process_identity() noexcept;
/// The calling process's pid.
pid_t current_pid() noexcept;
/// The calling thread's kernel thread id (cached per thread; right in a fork()ed child too).
int32_t current_thread_id() noexcept;
inline pid_t identity_pid(ProcessIdentity identity) noexcept {
    return static_cast<pid_t>(identity >> 32);
}
/// Linux's PID_MAX_LIMIT: no pid is larger.
inline constexpr pid_t max_pid = 4194304;

/// A pid namespace word that names no namespace: "the holder's namespace is not known (yet)".
/// current_pid_namespace() never returns it, so every liveness judgement with it is "unknown".
inline constexpr uint64_t unknown_pid_namespace = 0;

/// Identity of this process's pid namespace (device and inode of /proc/self/ns/pid, folded).
/// Never unknown_pid_namespace.
uint64_t current_pid_namespace() noexcept;

enum class Liveness { alive, dead, unknown };

/// Whether the process that had `identity` in namespace `pid_namespace` still runs. "dead" means
/// gone, a zombie, or a pid now used by another process (start time differs). A process in
/// another pid namespace is "unknown": its pid means nothing here. A stopped process is alive.
Liveness process_liveness(ProcessIdentity identity, uint64_t pid_namespace) noexcept;

/// Whether thread `thread_id` of process `pid` (a pid of our namespace; 0: any process) still
/// runs: "dead" once it ended (a thread id is reused only after a wrap of the id space).
Liveness thread_liveness(pid_t pid, int32_t thread_id) noexcept;

/// Whether process `pid` is stopped (SIGSTOP) or traced: alive, but making no progress.
bool process_stopped(pid_t pid) noexcept;

/// Incremented in every child right after fork(): handles compare it to notice they were
/// inherited and must re-register.
/// Inline: hot paths (the Lock's) check it on every call.
extern std::atomic<uint64_t> fork_generation_counter;
inline uint64_t fork_generation() noexcept {
    return fork_generation_counter.load(std::memory_order_relaxed);
}

// ---- shared-memory files -----------------------------------------------------------------------

/// The directory named segments live in: $SHUTTLE_SHM_DIR or /dev/shm. The variable is read
/// with secure_getenv: a setuid or setgid program ignores it (and uses /dev/shm).
std::string shm_directory();
/// Whether shm_directory() exists and is a directory.
bool shm_directory_exists() noexcept;

/// errno-style results (0 or an errno value) so callers can map them to shuttle::errc.
struct FileResult {
    int fd = -1;
    int error = 0;
};

/// An unnamed file in the shm directory (O_TMPFILE), close-on-exec, with `mode`.
FileResult create_unnamed_shm_file(unsigned mode) noexcept;
/// An anonymous memfd, close-on-exec.
FileResult create_memfd(const char* debug_name) noexcept;
/// Gives the file `name` in the shm directory, atomically; EEXIST if the name is taken.
int publish_shm_file(int fd, const std::string& name) noexcept;
/// Opens the file `name` in the shm directory with O_NOFOLLOW | O_NONBLOCK: a symbolic link
/// fails (ELOOP) instead of being followed, and a FIFO opens at once instead of waiting for a
/// writer. The caller fstats it (file_status) before trusting it.
FileResult open_shm_file(const std::string& name, bool writable) noexcept;
int unlink_shm_file(const std::string& name) noexcept;
/// ftruncate: fails with EFBIG beyond RLIMIT_FSIZE. (On tmpfs it never needs space.)
int set_file_size(int fd, uint64_t size) noexcept;
/// posix_fallocate: afterwards every page is backed, so a full tmpfs is ENOSPC now, not a
/// SIGBUS on first touch.
int allocate_file(int fd, uint64_t size) noexcept;
/// What fstat says of an open file.
struct FileStatus {
    uint64_t size = 0;
    uint32_t owner = 0;  // user id
    bool regular = false;
    bool directory = false;
};
int file_status(int fd, FileStatus& status) noexcept;
/// The calling process's effective user id.
uint32_t current_user() noexcept;
inline constexpr uint32_t root_user = 0;
void* map_shared(int fd, uint64_t size, int& error) noexcept;
void unmap(void* address, uint64_t size) noexcept;
/// A read-only shared mapping (inspection), or nullptr with `error` set.
void* map_read_only(int fd, uint64_t size, int& error) noexcept;
/// Names of the regular files in the shm directory starting with `prefix`; `error` is 0, or
/// the errno of opening the directory.
std::vector<std::string> list_shm_files(const std::string& prefix, int& error);
/// Live processes (any this process may inspect) that have the shm file `name` mapped.
std::vector<pid_t> processes_mapping(const std::string& name);
void close_fd(int fd) noexcept;
/// A close-on-exec duplicate of `fd`, or -1 with errno set.
int duplicate_fd(int fd) noexcept;
int set_close_on_exec(int fd, bool on) noexcept;

// ---- doorbells (descriptors an event loop waits on; docs/event_loop.md) -------------------------

/// A random 64-bit token, never 0 (getrandom).
uint64_t random_token() noexcept;
/// A datagram socket bound to the abstract Unix address that `token` names, non-blocking and
/// close-on-exec: readable once a ring_doorbell(token) landed. The fd, or -errno (EADDRINUSE if
/// another socket holds the name). Abstract addresses need no file and vanish with the socket,
/// so a killed waiter leaves nothing behind.
int open_doorbell(uint64_t token) noexcept;
/// Sends one byte to the doorbell `token` names, from any process. Never blocks: a doorbell
/// that is gone (its process died: ECONNREFUSED) or already full (EAGAIN: it is readable
/// anyway) is not an error.
void ring_doorbell(uint64_t token) noexcept;
/// Reads and discards every byte waiting on doorbell `fd` (non-blocking).
void drain_doorbell(int fd) noexcept;

// ---- child processes ---------------------------------------------------------------------------

/// fork(): the child's pid in the parent, 0 in the child, -1 (errno set) if it failed.
pid_t fork_process() noexcept;
/// Ends the calling process at once with `code` (_exit: no atexit handlers, no static
/// destructors, no stdio flush).
[[noreturn]] void exit_process(int code) noexcept;
/// Sends `signal_number` to process `pid`.
void send_signal(pid_t pid, int signal_number) noexcept;
/// Reaps child `pid` (EINTR retried), waiting for it only if `block`. nullopt while it runs;
/// else its exit code as Python reports it: the exit status, minus the signal number if a
/// signal ended it, 255 if unknown (another waiter reaped it, e.g. SIGCHLD ignored).
std::optional<int> reap_child(pid_t pid, bool block) noexcept;

/// Arranges SIGKILL for this process when its parent dies; returns false if the parent
/// (`expected_parent`) is already gone.
bool die_with_parent(pid_t expected_parent) noexcept;
/// A pidfd for `pid`, or -1.
int open_pidfd(pid_t pid) noexcept;
/// Polls a pidfd until the process exits or `deadline`; returns true if it exited.
bool wait_pidfd_until(int pidfd, steady_clock::time_point deadline) noexcept;

/// Test-only deterministic crash points: after arm_kill_point(point, skip), the calling process
/// SIGKILLs itself at the (skip+1)-th SHUTTLE_KILL_POINT(point) it reaches (or sends itself
/// `signal_number`, e.g. SIGSTOP to freeze it there). The macro compiles to nothing unless
/// SHUTTLE_ENABLE_KILL_POINTS is defined (test builds and cold paths only).
void arm_kill_point(const char* point, uint64_t skip = 0,
                    int signal_number = 9 /* SIGKILL */) noexcept;
void kill_point_hit(const char* point) noexcept;
/// Test-only: `hook(point)` runs in the dying process just before a kill point's SIGKILL (a
/// torture test counts which windows fired and when).
void set_kill_point_hook(void (*hook)(const char* point)) noexcept;

}  // namespace shuttle::detail

#if defined(SHUTTLE_ENABLE_KILL_POINTS)
#define SHUTTLE_KILL_POINT(name) ::shuttle::detail::kill_point_hit(name)
#define SHUTTLE_KILL_POINT_NAME(name) (name)
#else
#define SHUTTLE_KILL_POINT(name) ((void)0)
#define SHUTTLE_KILL_POINT_NAME(name) (static_cast<const char*>(nullptr))
#endif
// SHUTTLE_KILL_POINT_NAME(name) hands a crash point to shared inline code (detail/owner_word.hpp)
// that must compile the same in every translation unit: nullptr unless kill points are enabled
// where it is written.
