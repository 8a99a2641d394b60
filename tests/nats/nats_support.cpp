#include "nats_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace shuttle::test {
namespace {

const char* server_program() {
    return SHUTTLE_NATS_SERVER;
}

bool accepts_connections(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

/// fork + exec with the child tied to this thread's life (PR_SET_PDEATHSIG) and its output in
/// `output_path`. Everything the child touches is prepared before fork (only async-signal-safe
/// calls between fork and exec).
pid_t spawn_program(const std::vector<std::string>& arguments, const std::string& output_path) {
    std::vector<char*> argv;
    for (const std::string& argument : arguments)
        argv.push_back(const_cast<char*>(argument.c_str()));
    argv.push_back(nullptr);
    const int output = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (output < 0) return -1;
    const pid_t parent = ::getpid();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) _exit(126);  // the parent died before prctl
        ::dup2(output, STDOUT_FILENO);
        ::dup2(output, STDERR_FILENO);
        ::execv(argv[0], argv.data());
        _exit(127);
    }
    ::close(output);
    return pid;
}

int exit_code_of(int wait_status) {
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
    return -1;
}

/// The client port a nats-server log reports ("Listening for client connections on
/// 127.0.0.1:<port>"), 0 if it names none.
int listening_port(const std::string& log) {
    const std::string marker = "Listening for client connections on 127.0.0.1:";
    const std::size_t at = log.find(marker);
    if (at == std::string::npos) return 0;
    return std::atoi(log.c_str() + at + marker.size());
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

int free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ADD_FAILURE() << "no free loopback port: " << std::strerror(errno);
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

bool have_nats_server() {
    return std::string(server_program()).size() > 0 && ::access(server_program(), X_OK) == 0;
}

NatsServer::NatsServer(Options options) : options_(std::move(options)) {
    char pattern[] = "/tmp/shuttle-nats-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    if (made == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    directory_ = made != nullptr ? made : "/tmp";
}

NatsServer::~NatsServer() {
    kill();
    std::error_code ignored;
    if (directory_ != "/tmp") std::filesystem::remove_all(directory_, ignored);
}

void NatsServer::start() {
    if (running()) return;
    std::vector<std::string> arguments{
        server_program(), "-js", "-a", "127.0.0.1",
        // The first start lets the server pick a free port (no guessed port another test could
        // take first); a restart reuses it so that clients reconnect to the same URL.
        "-p", port_ > 0 ? std::to_string(port_) : "-1", "-sd", directory_ + "/store"};
    if (!options_.cluster_name.empty()) {
        arguments.insert(
            arguments.end(),
            {"--server_name", options_.server_name, "--cluster_name", options_.cluster_name,
             "--cluster", "nats://127.0.0.1:" + std::to_string(options_.cluster_port)});
        std::string routes;
        for (int port : options_.route_ports) {
            if (port == options_.cluster_port) continue;
            if (!routes.empty()) routes += ",";
            routes += "nats://127.0.0.1:" + std::to_string(port);
        }
        arguments.insert(arguments.end(), {"--routes", routes});
    }
    arguments.insert(arguments.end(), options_.extra_arguments.begin(),
                     options_.extra_arguments.end());
    pid_ = spawn_program(arguments, directory_ + "/server.log");
    ASSERT_GT(pid_, 0) << "cannot start " << server_program();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto backoff = 1ms;
    // "Server is ready" is logged once JetStream is up and clients are accepted, after the
    // line that names the client port.
    auto ready = [&] {
        const std::string log = read_file(directory_ + "/server.log");
        if (log.find("Server is ready") == std::string::npos) return false;
        if (port_ <= 0) port_ = listening_port(log);
        return port_ > 0 && accepts_connections(port_);
    };
    while (!ready()) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            FAIL() << "nats-server exited at start: " << log_tail();
        }
        if (std::chrono::steady_clock::now() > deadline) {
            kill();
            FAIL() << "nats-server did not accept connections within 10 s: " << log_tail();
        }
        std::this_thread::sleep_for(backoff);  // polling a port: nothing to wait on
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 20ms);
    }
}

void NatsServer::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

std::string NatsServer::log_tail() const {
    std::string log = read_file(directory_ + "/server.log");
    return log.size() > 2000 ? log.substr(log.size() - 2000) : log;
}

nats::ConnectionOptions test_connection(const std::vector<std::string>& urls) {
    nats::ConnectionOptions options;
    options.servers = urls;
    options.connect_timeout = 1000ms;
    options.call_timeout = 1000ms;
    options.reconnect_wait = 50ms;
    return options;
}

// ---- children -----------------------------------------------------------------------------

Child::Child(const std::string& role, const std::vector<std::string>& arguments) {
    static int counter = 0;
    output_path_ = "/tmp/shuttle-nats-child-" + std::to_string(::getpid()) + "-" +
                   std::to_string(counter++) + ".out";
    std::vector<std::string> command{"/proc/self/exe", "--role", role};
    command.insert(command.end(), arguments.begin(), arguments.end());
    // /proc/self/exe is resolved in the child, which is still this program at exec time.
    pid_ = spawn_program(command, output_path_);
    if (pid_ <= 0) ADD_FAILURE() << "cannot start a child";
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), output_path_(std::move(other.output_path_)) {}

Child::~Child() {
    kill();
    if (!output_path_.empty()) ::unlink(output_path_.c_str());
}

void Child::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

int Child::join(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return -1;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto backoff = 1ms;
    while (true) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return exit_code_of(status);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            kill();
            ADD_FAILURE() << "child hung for " << limit.count() << " ms and was killed; output:\n"
                          << output();
            return -1000;
        }
        std::this_thread::sleep_for(backoff);  // polling a pid: bounded
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 10ms);
    }
}

std::string Child::output() const {
    return read_file(output_path_);
}

bool Child::wait_for_output(const std::string& text, std::chrono::milliseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (output().find(text) == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);  // polling a file: bounded
    }
    return true;
}

std::vector<long> items_in(const std::string& output) {
    std::vector<long> items;
    std::istringstream lines(output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("item ", 0) == 0) items.push_back(std::stol(line.substr(5)));
    }
    return items;
}

// ---- roles (what a child runs) ----------------------------------------------------------------

namespace {

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> parts;
    std::stringstream stream(text);
    std::string part;
    while (std::getline(stream, part, ',')) parts.push_back(part);
    return parts;
}

constexpr long sentinel = -1;

/// produce <urls> <queue> <plain|joinable> <first> <count> <sentinels>
template <class Queue>
int produce(Queue& queue, long first, long count, long sentinels) {
    for (long item = first; item < first + count; ++item) {
        if (status put = queue.put(item); !put) {
            std::printf("put failed: %s\n", make_error_code(put.error()).message().c_str());
            return 1;
        }
        std::printf("item %ld\n", item);
        std::fflush(stdout);
    }
    for (long i = 0; i < sentinels; ++i) {
        if (!queue.put(sentinel)) return 1;
    }
    return 0;
}

/// consume <urls> <queue> <plain|joinable>: until a sentinel or closed.
template <class Queue>
int consume(Queue& queue) {
    while (true) {
        auto item = queue.get();
        if (!item) {
            if (item.error() == errc::shut_down) return 0;
            std::printf("get failed: %s\n", make_error_code(item.error()).message().c_str());
            return 2;
        }
        if (*item != sentinel) {
            // Printed before task_done(): once join() returns, every item is in the output.
            std::printf("item %ld\n", *item);
            std::fflush(stdout);
        }
        if constexpr (requires { queue.task_done(); }) {
            if (!queue.task_done()) return 3;
        }
        if (*item == sentinel) return 0;
    }
}

}  // namespace

int run_role(int argc, char** argv) {
    const std::string role = argc > 2 ? argv[2] : "";
    if (role == "exec" && argc > 3) {  // another program, under the same harness
        ::execv(argv[3], argv + 3);
        return 127;
    }
    if (argc < 6) return 100;
    auto connection = nats::Connection::connect(test_connection(split(argv[3])));
    const std::string name = argv[4];
    const bool joinable = std::string(argv[5]) == "joinable";
    auto numbers = [&](int at) { return at < argc ? std::atol(argv[at]) : 0L; };
    if (role == "produce") {
        if (joinable) {
            auto queue = nats::JoinableQueue<long>::open(connection, name);
            return produce(queue, numbers(6), numbers(7), numbers(8));
        }
        auto queue = nats::Queue<long>::open(connection, name);
        return produce(queue, numbers(6), numbers(7), numbers(8));
    }
    if (role == "consume") {
        if (joinable) {
            auto queue = nats::JoinableQueue<long>::open(connection, name);
            return consume(queue);
        }
        auto queue = nats::Queue<long>::open(connection, name);
        return consume(queue);
    }
    if (role == "hold") {  // takes one task and never acknowledges it (the test kills it)
        auto queue = nats::JoinableQueue<long>::open(connection, name);
        auto task = queue.get_task();
        if (!task) return 4;
        std::printf("holding %ld\n", task->item);
        std::fflush(stdout);
        ::pause();
        return 0;
    }
    return 101;
}

}  // namespace shuttle::test

int main(int argc, char** argv) {
    if (argc >= 2 && std::string(argv[1]) == "--role") return shuttle::test::run_role(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
