#include "support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

namespace shuttle::test {

ProgramOutput run_program(const std::string& path, const std::vector<std::string>& arguments,
                          std::chrono::milliseconds limit) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {};
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::dup2(fds[1], STDERR_FILENO);
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>(path.c_str()));
        for (const std::string& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
        argv.push_back(nullptr);
        ::execv(path.c_str(), argv.data());
        _exit(127);
    }
    ::close(fds[1]);
    ProgramOutput result;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool hung = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            hung = true;
            break;
        }
        pollfd entry{fds[0], POLLIN, 0};
        if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) continue;
        char buffer[4096];
        ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        if (n <= 0) break;  // EOF: the program (and any child holding the pipe) is done
        result.output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (hung) ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (hung) result.exit_code = -1000;
    else if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.exit_code = -WTERMSIG(status);
    return result;
}

pid_t current_thread_id() {
    return static_cast<pid_t>(::syscall(SYS_gettid));
}

bool sleeping_in_system_call(pid_t thread_id, long system_call,
                             std::optional<uint64_t> first_argument) {
    const std::string task = "/proc/self/task/" + std::to_string(thread_id);
    std::ifstream stat(task + "/stat");
    std::string stat_text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto name_end = stat_text.rfind(')');
    if (name_end == std::string::npos || name_end + 2 >= stat_text.size()) return false;
    if (stat_text[name_end + 2] != 'S') return false;
    // "<number> <argument 1> ... <stack pointer> <program counter>", or "running".
    std::ifstream syscall_file(task + "/syscall");
    long number = -1;
    std::string argument;
    if (!(syscall_file >> number >> argument) || number != system_call) return false;
    return !first_argument || std::stoull(argument, nullptr, 16) == *first_argument;
}

bool wait_until_sleeping_in_system_call(pid_t thread_id, long system_call,
                                        std::optional<uint64_t> first_argument,
                                        std::chrono::milliseconds limit) {
    return eventually(
        [&] { return sleeping_in_system_call(thread_id, system_call, first_argument); }, limit);
}

std::string read_until_end_of_file(int fd, std::chrono::milliseconds limit, bool& timed_out) {
    std::string text;
    timed_out = false;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            return text;
        }
        pollfd entry{fd, POLLIN, 0};
        int ready = ::poll(&entry, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR) return text;
        if (ready <= 0) continue;
        char buffer[4096];
        ssize_t count = ::read(fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) return text;
        text.append(buffer, static_cast<std::size_t>(count));
    }
}

}  // namespace shuttle::test
