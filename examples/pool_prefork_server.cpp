// pool-prefork-server: the notes' pre-fork server. One listening socket on 127.0.0.1 (an
// ephemeral port) is opened before the pool, so every worker inherits it; each worker runs a
// `serve` task that accepts connections on it and answers with its pid. A small client in the
// parent sends a few requests. Bounded: the workers stop once every request was answered, or
// after --seconds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "shuttle/pool.hpp"
#include "shuttle/value.hpp"

namespace {

/// Answers connections on `listener` until `remaining` requests are all answered or `seconds`
/// have passed; returns how many it answered. Runs in a pool worker.
int serve(int listener, shuttle::Value<int>& remaining, int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    int answered = 0;
    while (remaining.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        pollfd ready{listener, POLLIN, 0};
        if (::poll(&ready, 1, 50) <= 0) continue;
        const int connection = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (connection < 0) continue;  // another worker took it (EAGAIN)
        char request[256];
        const ssize_t length = ::read(connection, request, sizeof request - 1);
        if (length > 0) {
            const std::string reply =
                fmt::format("worker {} answers: {}", getpid(), std::string(request, length));
            (void)!::write(connection, reply.data(), reply.size());
            ++answered;
            remaining.fetch_sub(1);
        }
        ::close(connection);
    }
    return answered;
}

int listen_on_loopback(uint16_t& port) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // ephemeral
    socklen_t size = sizeof address;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::listen(listener, 16) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
        std::perror("listen on 127.0.0.1");
        return -1;
    }
    port = ntohs(address.sin_port);
    return listener;
}

std::string ask(uint16_t port, const std::string& request) {
    const int connection = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    std::string reply;
    if (::connect(connection, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::write(connection, request.data(), request.size()) ==
            static_cast<ssize_t>(request.size())) {
        timeval limit{5, 0};
        ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char buffer[512];
        for (ssize_t length; (length = ::read(connection, buffer, sizeof buffer)) > 0;) {
            reply.append(buffer, static_cast<std::size_t>(length));
        }
    }
    ::close(connection);
    return reply;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"pool-prefork-server: pool workers accept on one listening socket"};
    int requests = 6;
    std::size_t workers = 3;
    int seconds = 10;
    app.add_option("-n,--requests", requests, "requests the client sends")
        ->check(CLI::Range(1, 1000));
    app.add_option("-w,--workers", workers, "pool size")->check(CLI::Range(1, 24));
    app.add_option("--seconds", seconds, "the workers' time limit")->check(CLI::Range(1, 60));
    CLI11_PARSE(app, argc, argv);

    uint16_t port = 0;
    const int listener = listen_on_loopback(port);  // before the pool: the workers inherit it
    if (listener < 0) return 1;
    auto remaining = shuttle::Value<int>::anonymous(requests);  // shared: made before the pool
    fmt::print("listening on 127.0.0.1:{}\n", port);
    std::fflush(stdout);

    shuttle::Pool pool(workers);
    // A task is trivially copyable: a lambda may capture a reference to what existed before
    // the pool was made (each worker has it at the same address).
    auto serve_task = [&remaining](int socket, int limit) {
        return serve(socket, remaining, limit);
    };
    std::vector<shuttle::AsyncResult<int>> servers;
    for (std::size_t i = 0; i < workers; ++i) {
        servers.push_back(pool.apply_async(serve_task, listener, seconds));
    }

    std::set<std::string> answering;
    int answered = 0;
    for (int i = 0; i < requests; ++i) {
        const std::string reply = ask(port, fmt::format("request {}", i));
        fmt::print("client got: {}\n", reply);
        if (!reply.empty()) {
            ++answered;
            answering.insert(reply.substr(0, reply.find(" answers")));
        }
    }
    int served = 0;
    for (auto& server : servers) served += server.get();
    ::close(listener);
    fmt::print("{} requests answered by {} worker(s); the workers report {}\n", answered,
               answering.size(), served);
    pool.close();
    pool.join();
    return answered == requests && served == requests ? 0 : 1;
}
