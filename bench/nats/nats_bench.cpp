// Items per second through shuttle::nats (JetStream on loopback) against shuttle's local queue
// and Python's multiprocessing.Queue, in the same run: 1x1 and 4x4 producers x consumers, 8 B
// and 1 KiB items, synchronous (put/get one item per call) and batched (put_many/get_many).
// Starts its own nats-server (memory storage unless --file) on a free loopback port, stopped
// by pid, or uses --url. Every run checks that each item arrived (count and checksum).
//
//   shuttle_nats_bench [--items N] [--sync-items N] [--url nats://...] [--file] [--batch N]
//                      [--widths 1 4] [--batched-only]
//
// Producers and consumers are threads, each with its own connection (NATS) or the same
// anonymous queue (local); Python's are processes (bench/peers/python_peer.py).
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "shuttle/nats.hpp"
#include "shuttle/queue.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Small {
    uint64_t sequence;
};
struct Large {
    uint64_t sequence;
    char fill[1016];
};
static_assert(sizeof(Large) == 1024);

/// A nats-server of our own: free loopback port, temporary store, killed with us.
class Server {
  public:
    Server() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
        ::close(fd);
        port_ = ntohs(address.sin_port);
        char pattern[] = "/tmp/shuttle-nats-bench-XXXXXX";
        directory_ = ::mkdtemp(pattern);
        const std::string port = std::to_string(port_), store = directory_ + "/store",
                          log = directory_ + "/server.log";
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::dup2(out, 1);
            ::dup2(out, 2);
            ::execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", port.c_str(),
                     "-sd", store.c_str(), nullptr);
            _exit(127);
        }
        ::close(out);
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            std::ifstream in(log);
            std::string text((std::istreambuf_iterator<char>(in)), {});
            if (text.find("Server is ready") != std::string::npos) return;
            std::this_thread::sleep_for(5ms);
        }
        throw std::runtime_error("nats-server did not start");
    }
    ~Server() {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        std::filesystem::remove_all(directory_);
    }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  private:
    int port_ = 0;
    pid_t pid_ = -1;
    std::string directory_;
};

struct Config {
    int producers = 1;
    int consumers = 1;
    bool batched = false;
    uint64_t items = 0;
};

std::size_t batch_size = 256;  // items per put_many / get_many (--batch)

/// Runs producers and consumers as threads over handles from `open` (one per thread); returns
/// items per second, or 0 if an item went missing.
template <class Item, class Open>
double run(const Config& config, Open open) {
    std::atomic<uint64_t> consumed{0}, checksum{0};
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    const uint64_t per_producer = config.items / static_cast<uint64_t>(config.producers);
    const uint64_t total = per_producer * static_cast<uint64_t>(config.producers);
    std::vector<std::thread> threads;
    for (int p = 0; p < config.producers; ++p) {
        threads.emplace_back([&, p] {
            decltype(auto) queue = open();
            ready++;
            while (!go) std::this_thread::yield();
            std::vector<Item> batch;
            for (uint64_t i = 0; i < per_producer; ++i) {
                Item item{};
                item.sequence = static_cast<uint64_t>(p) * per_producer + i;
                if constexpr (requires { queue.put_many(std::span<const Item>(batch)); }) {
                    if (config.batched) {
                        batch.push_back(item);
                        if (batch.size() == batch_size || i + 1 == per_producer) {
                            if (!queue.put_many(std::span<const Item>(batch))) return;
                            batch.clear();
                        }
                        continue;
                    }
                }
                if (!queue.put(item)) return;
            }
        });
    }
    for (int c = 0; c < config.consumers; ++c) {
        threads.emplace_back([&] {
            decltype(auto) queue = open();
            ready++;
            while (!go) std::this_thread::yield();
            while (consumed.load() < total) {
                if constexpr (requires { queue.get_many_for(batch_size, 100ms); }) {
                    if (config.batched) {
                        auto items = queue.get_many_for(batch_size, 100ms);
                        if (!items) continue;
                        for (const Item& item : *items) checksum += item.sequence;
                        consumed += items->size();
                        continue;
                    }
                }
                auto item = queue.get_for(100ms);
                if (!item) continue;
                checksum += item->sequence;
                ++consumed;
            }
        });
    }
    while (ready.load() < config.producers + config.consumers) std::this_thread::yield();
    const auto start = Clock::now();
    go = true;
    for (auto& thread : threads) thread.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (consumed != total || checksum != total * (total - 1) / 2) return 0;
    return static_cast<double>(total) / seconds;
}

double python_rate(const Config& config, std::size_t payload) {
    const std::string out = "/tmp/shuttle-nats-bench-python-" + std::to_string(::getpid());
    const std::string command = fmt::format(
        "python3 {} --kind queue --producers {} --consumers {} --capacity 1000 --payload {} "
        "--items {} --seconds 0 --out {} >/dev/null 2>&1",
        SHUTTLE_BENCH_PYTHON_PEER, config.producers, config.consumers, payload,
        config.items / static_cast<uint64_t>(config.producers), out);
    if (std::system(command.c_str()) != 0) return 0;
    std::ifstream in(out);
    std::map<std::string, std::string> values;
    for (std::string line; std::getline(in, line);) {
        auto equals = line.find('=');
        if (equals != std::string::npos) values[line.substr(0, equals)] = line.substr(equals + 1);
    }
    std::remove(out.c_str());
    if (values["ok"] != "1") return 0;
    return std::stod(values["items"]) / std::stod(values["seconds"]);
}

template <class Item>
void row(const Config& config, const shuttle::nats::Connection& connection,
         const shuttle::nats::ConnectionOptions& options, shuttle::nats::Storage storage,
         std::size_t payload, int& queue_number) {
    const std::string name = "bench" + std::to_string(queue_number++);
    auto made = shuttle::nats::Queue<Item>::create(connection, name, 10000, {.storage = storage});
    const double remote = run<Item>(config, [&] {
        return shuttle::nats::Queue<Item>::open(shuttle::nats::Connection::connect(options), name);
    });
    shuttle::nats::Queue<Item>::remove(connection, name);
    auto local_queue = shuttle::Queue<Item>::anonymous(1000);
    const double local = run<Item>(config, [&]() -> shuttle::Queue<Item>& { return local_queue; });
    const double python = python_rate(config, payload);
    fmt::print("{:>3}x{:<3} {:>6} {:>8} {:>14.0f} {:>14.0f} {:>14.0f} {:>10.2f} {:>10.4f}\n",
               config.producers, config.consumers, payload == 8 ? "8 B" : "1 KiB",
               config.batched ? "batched" : "sync", remote, local, python,
               python > 0 ? remote / python : 0.0, local > 0 ? remote / local : 0.0);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"shuttle::nats throughput against the local queue and Python's mp.Queue"};
    uint64_t items = 100000, sync_items = 10000;
    std::string url;
    bool file = false;
    app.add_option("--items", items, "items per batched run");
    app.add_option("--sync-items", sync_items, "items per synchronous run");
    app.add_option("--url", url, "an existing server (default: start one)");
    app.add_flag("--file", file, "file storage (default: memory)");
    std::vector<int> widths{1, 4};
    bool batched_only = false;
    app.add_option("--batch", batch_size, "items per put_many / get_many");
    app.add_option("--widths", widths, "producers = consumers, one row set each");
    app.add_flag("--batched-only", batched_only, "skip the synchronous rows");
    CLI11_PARSE(app, argc, argv);

    std::optional<Server> server;
    if (url.empty()) {
        server.emplace();
        url = server->url();
    }
    shuttle::nats::ConnectionOptions options;
    options.servers = {url};
    auto connection = shuttle::nats::Connection::connect(options);
    const auto storage = file ? shuttle::nats::Storage::file : shuttle::nats::Storage::memory;
    fmt::print(
        "shuttle::nats on loopback ({} storage) against the local queue and Python's "
        "mp.Queue, items/s (same run)\n",
        file ? "file" : "memory");
    fmt::print("{:>7} {:>6} {:>8} {:>14} {:>14} {:>14} {:>10} {:>10}\n", "PxC", "item", "mode",
               "nats", "local", "python mp", "nats/py", "nats/local");
    int queue_number = 0;
    for (int width : widths) {
        for (bool batched : {false, true}) {
            if (batched_only && !batched) continue;
            Config config{width, width, batched, batched ? items : sync_items};
            row<Small>(config, connection, options, storage, 8, queue_number);
            row<Large>(config, connection, options, storage, 1024, queue_number);
        }
    }
}
