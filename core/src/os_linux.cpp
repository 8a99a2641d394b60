// The one place of core/ and sync/ that talks to Linux directly. Everything else uses
// shuttle/detail/os.hpp.
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string_view>

#include "shuttle/detail/os.hpp"

namespace shuttle::detail {
namespace {

timespec to_monotonic_timespec(steady_clock::time_point deadline) {
    // libstdc++'s steady_clock is CLOCK_MONOTONIC, the clock FUTEX_WAIT_BITSET uses by default.
    static_assert(std::chrono::steady_clock::is_steady);
    auto since_epoch = deadline.time_since_epoch();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds);
    return timespec{static_cast<time_t>(seconds.count()), static_cast<long>(nanos.count())};
}

long futex(const std::atomic<uint32_t>& word, int op, uint32_t value, const timespec* timeout,
           uint32_t bitset) {
    return syscall(SYS_futex, const_cast<std::atomic<uint32_t>*>(&word), op, value, timeout,
                   nullptr, bitset);
}

std::atomic<ProcessIdentity> cached_identity{0};
std::atomic<uint64_t> cached_namespace{0};
thread_local int32_t cached_thread_id = 0;

// Runs in the child, in the one thread that survives fork(): the forking thread.
void after_fork_in_child() {
    fork_generation_counter.fetch_add(1, std::memory_order_relaxed);
    cached_identity.store(0, std::memory_order_relaxed);
    cached_namespace.store(0, std::memory_order_relaxed);
    cached_thread_id = 0;
}

[[maybe_unused]] const bool fork_handler_installed = [] {
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    return true;
}();

/// Reads /proc/<pid>/stat: state letter and start time (field 22). False if the file is gone.
bool read_process_stat(pid_t pid, char& state, uint64_t& start_time) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buffer[1024];
    ssize_t length = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (length <= 0) return false;
    buffer[length] = '\0';
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    const char* cursor = std::strrchr(buffer, ')');
    if (cursor == nullptr || cursor[1] != ' ') return false;
    cursor += 2;
    state = *cursor;
    // Fields from 3 (state) on are separated by single spaces; start time is field 22.
    for (int field = 3; field < 22; ++field) {
        cursor = std::strchr(cursor, ' ');
        if (cursor == nullptr) return false;
        ++cursor;
    }
    start_time = std::strtoull(cursor, nullptr, 10);
    return true;
}

}  // namespace

bool futex_wait_until(const std::atomic<uint32_t>& word, uint32_t expected,
                      steady_clock::time_point deadline) noexcept {
    const bool forever = deadline == steady_clock::time_point::max();
    timespec absolute{};
    if (!forever) absolute = to_monotonic_timespec(deadline);
    for (;;) {
        if (!forever && steady_clock::now() >= deadline) return false;
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so EINTR needs no
        // recomputation of the remaining time.
        long rc = futex(word, FUTEX_WAIT_BITSET, expected, forever ? nullptr : &absolute,
                        FUTEX_BITSET_MATCH_ANY);
        if (rc == 0) return true;
        if (errno == EAGAIN) return true;  // the word no longer holds `expected`
        if (errno == ETIMEDOUT) return false;
        if (errno == EINTR) continue;
        return true;  // unexpected: let the caller re-check rather than sleep wrongly
    }
}

void futex_wake(const std::atomic<uint32_t>& word, int count) noexcept {
    futex(word, FUTEX_WAKE, static_cast<uint32_t>(count), nullptr, 0);
}

void futex_wake_all(const std::atomic<uint32_t>& word) noexcept {
    futex_wake(word, INT32_MAX);
}

void yield_processor() noexcept {
    sched_yield();
}

ProcessIdentity current_process_identity() noexcept {
    ProcessIdentity identity = cached_identity.load(std::memory_order_relaxed);
    if (identity != 0) return identity;
    pid_t pid = getpid();
    char state = 0;
    uint64_t start_time = 0;
    read_process_stat(pid, state, start_time);
    identity =
        (static_cast<uint64_t>(static_cast<uint32_t>(pid)) << 32) | (start_time & 0xffffffffu);
    cached_identity.store(identity, std::memory_order_relaxed);
    return identity;
}

pid_t current_pid() noexcept {
    return ::getpid();
}

int32_t current_thread_id() noexcept {
    if (cached_thread_id == 0) cached_thread_id = static_cast<int32_t>(::syscall(SYS_gettid));
    return cached_thread_id;
}

uint64_t current_pid_namespace() noexcept {
    uint64_t id = cached_namespace.load(std::memory_order_relaxed);
    if (id != 0) return id;
    struct stat info {};
    if (::stat("/proc/self/ns/pid", &info) == 0) {
        id = (static_cast<uint64_t>(info.st_dev) << 40) ^ static_cast<uint64_t>(info.st_ino);
    }
    if (id == unknown_pid_namespace) id = 1;  // no /proc/self/ns: one namespace for everybody
    cached_namespace.store(id, std::memory_order_relaxed);
    return id;
}

Liveness process_liveness(ProcessIdentity identity, uint64_t pid_namespace) noexcept {
    if (identity == 0) return Liveness::dead;
    if (pid_namespace != current_pid_namespace()) return Liveness::unknown;
    char state = 0;
    uint64_t start_time = 0;
    if (!read_process_stat(identity_pid(identity), state, start_time)) return Liveness::dead;
    if (state == 'Z' || state == 'X') return Liveness::dead;
    if ((start_time & 0xffffffffu) != (identity & 0xffffffffu)) return Liveness::dead;
    return Liveness::alive;
}

Liveness thread_liveness(pid_t pid, int32_t thread_id) noexcept {
    if (thread_id <= 0 || pid < 0) return Liveness::dead;
    if (pid == 0) {
        // /proc/<tid> exists for every live thread (not listed, but found).
        char path[32];
        std::snprintf(path, sizeof path, "/proc/%d", static_cast<int>(thread_id));
        struct stat info {};
        return ::stat(path, &info) == 0 ? Liveness::alive : Liveness::dead;
    }
    if (::syscall(SYS_tgkill, pid, thread_id, 0) == 0) return Liveness::alive;
    return errno == ESRCH ? Liveness::dead : Liveness::alive;  // EPERM: it exists
}

bool process_stopped(pid_t pid) noexcept {
    char state = 0;
    uint64_t start_time = 0;
    if (!read_process_stat(pid, state, start_time)) return false;
    return state == 'T' || state == 't';
}

std::atomic<uint64_t> fork_generation_counter{0};

std::string shm_directory() {
    const char* configured = ::secure_getenv("SHUTTLE_SHM_DIR");
    return configured != nullptr && *configured != '\0' ? configured : "/dev/shm";
}

bool shm_directory_exists() noexcept {
    struct stat info {};
    return ::stat(shm_directory().c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

FileResult create_unnamed_shm_file(unsigned mode) noexcept {
    std::string directory = shm_directory();
    int fd = ::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (fd < 0) return {-1, errno};
    // The umask may have narrowed the mode; the caller asked for exactly this one.
    if (::fchmod(fd, mode) != 0) {
        int error = errno;
        ::close(fd);
        return {-1, error};
    }
    return {fd, 0};
}

FileResult create_memfd(const char* debug_name) noexcept {
    int fd = ::memfd_create(debug_name, MFD_CLOEXEC);
    if (fd < 0) return {-1, errno};
    return {fd, 0};
}

int publish_shm_file(int fd, const std::string& name) noexcept {
    // linkat through /proc/self/fd gives an O_TMPFILE file its name atomically, and fails with
    // EEXIST if the name is taken: nobody ever sees a half-initialised named segment.
    char source[64];
    std::snprintf(source, sizeof source, "/proc/self/fd/%d", fd);
    std::string target = shm_directory() + "/" + name;
    if (::linkat(AT_FDCWD, source, AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) != 0) return errno;
    return 0;
}

FileResult open_shm_file(const std::string& name, bool writable) noexcept {
    std::string path = shm_directory() + "/" + name;
    int fd =
        ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return {-1, errno};
    return {fd, 0};
}

int unlink_shm_file(const std::string& name) noexcept {
    std::string path = shm_directory() + "/" + name;
    return ::unlink(path.c_str()) == 0 ? 0 : errno;
}

int set_file_size(int fd, uint64_t size) noexcept {
    return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
}

int allocate_file(int fd, uint64_t size) noexcept {
    // posix_fallocate returns the error instead of setting errno.
    return ::posix_fallocate(fd, 0, static_cast<off_t>(size));
}

int file_status(int fd, FileStatus& status) noexcept {
    struct stat info {};
    if (::fstat(fd, &info) != 0) return errno;
    status.size = static_cast<uint64_t>(info.st_size);
    status.owner = static_cast<uint32_t>(info.st_uid);
    status.regular = S_ISREG(info.st_mode);
    status.directory = S_ISDIR(info.st_mode);
    return 0;
}

uint32_t current_user() noexcept {
    return static_cast<uint32_t>(::geteuid());
}

void* map_shared(int fd, uint64_t size, int& error) noexcept {
    // MAP_POPULATE: the segment's pages (all backed by posix_fallocate at creation) are mapped
    // into this process now, in one call, instead of one page fault per page on first touch
    // (shared tmpfs pages map writable). An unbounded queue attaches a new chunk at every
    // chunk change, where those faults dominated (issue 14).
    void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (address == MAP_FAILED) {
        error = errno;
        return nullptr;
    }
    error = 0;
    return address;
}

void* map_read_only(int fd, uint64_t size, int& error) noexcept {
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) {
        error = errno;
        return nullptr;
    }
    error = 0;
    return address;
}

std::vector<std::string> list_shm_files(const std::string& prefix, int& error) {
    std::vector<std::string> names;
    DIR* directory = ::opendir(shm_directory().c_str());
    error = directory == nullptr ? errno : 0;
    if (directory == nullptr) return names;
    while (const dirent* item = ::readdir(directory)) {
        const std::string name = item->d_name;
        if (item->d_type != DT_REG || name.compare(0, prefix.size(), prefix) != 0) continue;
        names.push_back(name);
    }
    ::closedir(directory);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<pid_t> processes_mapping(const std::string& name) {
    // Matched by device and inode, as /proc/<pid>/maps lists them: a segment built as an
    // O_TMPFILE and linked later shows its first (unnamed) path there, not its name.
    std::vector<pid_t> pids;
    struct stat file {};
    if (::stat((shm_directory() + "/" + name).c_str(), &file) != 0) return pids;
    char device[32];
    std::snprintf(device, sizeof device, "%02x:%02x", major(file.st_dev), minor(file.st_dev));
    const std::string inode = std::to_string(file.st_ino);
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return pids;
    while (const dirent* item = ::readdir(proc)) {
        char* end = nullptr;
        const long pid = std::strtol(item->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') continue;
        std::FILE* maps = std::fopen(("/proc/" + std::string(item->d_name) + "/maps").c_str(), "r");
        if (maps == nullptr) continue;
        char line[4096];
        bool found = false;
        while (!found && std::fgets(line, sizeof line, maps) != nullptr) {
            char range[64], permissions[8], offset[32], line_device[32], line_inode[32];
            if (std::sscanf(line, "%63s %7s %31s %31s %31s", range, permissions, offset,
                            line_device, line_inode) == 5) {
                found = inode == line_inode && std::strcmp(device, line_device) == 0;
            }
        }
        std::fclose(maps);
        if (found) pids.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(proc);
    return pids;
}

void unmap(void* address, uint64_t size) noexcept {
    if (address != nullptr) ::munmap(address, size);
}

void close_fd(int fd) noexcept {
    if (fd >= 0) ::close(fd);
}

int duplicate_fd(int fd) noexcept {
    return ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

int set_close_on_exec(int fd, bool on) noexcept {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    return ::fcntl(fd, F_SETFD, flags) == 0 ? 0 : errno;
}

pid_t fork_process() noexcept {
    return ::fork();
}

void exit_process(int code) noexcept {
    ::_exit(code);
}

void send_signal(pid_t pid, int signal_number) noexcept {
    ::kill(pid, signal_number);
}

std::optional<int> reap_child(pid_t pid, bool block) noexcept {
    int status = 0;
    for (;;) {
        const pid_t rc = ::waitpid(pid, &status, block ? 0 : WNOHANG);
        if (rc == pid) break;
        if (rc == 0) return std::nullopt;
        if (errno == EINTR) continue;
        return 255;  // ECHILD: someone else reaped it
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return 255;
}

bool die_with_parent(pid_t expected_parent) noexcept {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died between fork() and prctl(): then nobody will send the signal.
    return ::getppid() == expected_parent;
}

int open_pidfd(pid_t pid) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

bool wait_pidfd_until(int pidfd, steady_clock::time_point deadline) noexcept {
    for (;;) {
        int timeout_ms = -1;
        if (deadline != steady_clock::time_point::max()) {
            auto left = deadline - steady_clock::now();
            if (left <= steady_clock::duration::zero()) {
                timeout_ms = 0;
            } else {
                // poll() takes int milliseconds: wait at most INT_MAX (~24 days) per call
                // rather than truncate (2^32 ms would become 0: no wait at all).
                const auto milliseconds =
                    std::chrono::ceil<std::chrono::milliseconds>(left).count();
                timeout_ms = milliseconds > INT_MAX ? INT_MAX : static_cast<int>(milliseconds);
            }
        }
        pollfd entry{pidfd, POLLIN, 0};
        int rc = ::poll(&entry, 1, timeout_ms);
        if (rc > 0) return true;
        if (rc == 0) {
            if (timeout_ms == 0) return false;
            continue;  // poll rounds to whole milliseconds: re-check the deadline
        }
        if (errno != EINTR) return false;
    }
}

namespace {
std::atomic<const char*> armed_kill_point{nullptr};
std::atomic<uint64_t> kill_point_skip{0};
std::atomic<int> kill_point_signal{SIGKILL};
std::atomic<void (*)(const char*)> kill_point_hook{nullptr};
}  // namespace

void set_kill_point_hook(void (*hook)(const char* point)) noexcept {
    kill_point_hook.store(hook, std::memory_order_release);
}

void arm_kill_point(const char* point, uint64_t skip, int signal_number) noexcept {
    kill_point_skip.store(skip, std::memory_order_relaxed);
    kill_point_signal.store(signal_number, std::memory_order_relaxed);
    armed_kill_point.store(point, std::memory_order_release);
}

void kill_point_hit(const char* point) noexcept {
    const char* armed = armed_kill_point.load(std::memory_order_acquire);
    if (armed == nullptr || std::strcmp(armed, point) != 0) return;
    if (kill_point_skip.fetch_sub(1, std::memory_order_relaxed) != 0) return;
    if (auto hook = kill_point_hook.load(std::memory_order_acquire)) hook(point);
    ::kill(::getpid(), kill_point_signal.load(std::memory_order_relaxed));
}

// ---- doorbells ---------------------------------------------------------------------------------

uint64_t random_token() noexcept {
    uint64_t token = 0;
    while (token == 0) {
        if (::getrandom(&token, sizeof token, 0) != static_cast<ssize_t>(sizeof token)) {
            // No entropy source (seccomp?): the clock and the pid, mixed, are unique enough
            // for a name that must not collide with a live one.
            token =
                static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
                    0x9e3779b97f4a7c15ull ^
                static_cast<uint64_t>(::getpid());
        }
    }
    return token;
}

namespace {
/// The abstract address (a leading NUL byte: no file) of doorbell `token`.
socklen_t doorbell_address(uint64_t token, sockaddr_un& address) noexcept {
    address = {};
    address.sun_family = AF_UNIX;
    const int length =
        std::snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "shuttle.bell.%016llx",
                      static_cast<unsigned long long>(token));
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}
}  // namespace

int open_doorbell(uint64_t token) noexcept {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    sockaddr_un address;
    const socklen_t length = doorbell_address(token, address);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
        const int error = errno;
        ::close(fd);
        return -error;
    }
    return fd;
}

void ring_doorbell(uint64_t token) noexcept {
    // One unbound sending socket per process (inherited by fork()ed children: sendto on a
    // shared unconnected datagram socket is safe).
    static const int sender = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sender < 0) return;
    sockaddr_un address;
    const socklen_t length = doorbell_address(token, address);
    const char byte = 1;
    ssize_t sent;
    do
        sent = ::sendto(sender, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&address), length);
    while (sent < 0 && errno == EINTR);
}

void drain_doorbell(int fd) noexcept {
    char bytes[64];
    // Bounded: the socket holds at most net.unix.max_dgram_qlen datagrams; a ring landing
    // meanwhile is either drained or left (spurious readiness, never a lost one).
    for (int i = 0; i < 64; ++i) {
        const ssize_t got = ::recv(fd, bytes, sizeof bytes, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return;
    }
}

}  // namespace shuttle::detail
