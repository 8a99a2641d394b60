// notes-pipe scenario bench: one sender process, one receiver process, messages of 8 B, 1 KiB,
// 64 KiB, 1 MiB and one 64 MiB message, through shuttle::Pipe and its peers -- socketpair STREAM
// with a length prefix, socketpair SEQPACKET, pipe(2) with a length prefix, and Python's
// multiprocessing.Pipe (if python3 is there) -- interleaved in the same run (A/B/C/... per
// repetition), median of the repetitions, every run's checksum verified. Also: ping-pong round
// trip (shuttle vs socketpair), EOF delay after a SIGKILL, CPU of an idle receiver.
//
//   shuttle_bench_pipe [--quick] [--repetitions N] [--csv FILE]
//
// Output: fmt tables on stdout; with --csv, one row per measurement:
//   scenario,transport,message_bytes,metric,median,unit
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "shuttle/pipe.hpp"
#include "shuttle/process.hpp"

namespace {

using namespace std::chrono_literals;
using shuttle::steady_clock;

struct Measurement {
    double seconds = 0;
    uint64_t messages = 0;
    uint64_t bytes = 0;
};

// Each message carries its index in its first and last 8 bytes (8-byte messages: once); the
// receiver sums what it gets and compares with the expected sum.
void stamp(std::vector<std::byte>& message, uint64_t index) {
    std::memcpy(message.data(), &index, 8);
    if (message.size() >= 16) std::memcpy(message.data() + message.size() - 8, &index, 8);
}
uint64_t read_stamp(const std::byte* message, std::size_t size) {
    uint64_t first = 0, last = 0;
    std::memcpy(&first, message, 8);
    if (size < 16) return first;
    std::memcpy(&last, message + size - 8, 8);
    return first == last ? first : ~uint64_t{0};
}
uint64_t expected_sum(uint64_t count) {
    return count * (count - 1) / 2;
}

[[noreturn]] void fail(const std::string& what) {
    fmt::print(stderr, "pipe bench: {}\n", what);
    std::exit(1);
}

bool write_all(int fd, const void* data, std::size_t size) {
    auto* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

/// A start gate: the receiver opens it once ready, so set-up is never timed.
struct Gate {
    int fds[2];
    Gate() {
        if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
    }
    void open() {
        char c = 1;
        (void)!::write(fds[1], &c, 1);
    }
    void wait() {
        char c;
        while (::read(fds[0], &c, 1) < 0 && errno == EINTR) {
        }
    }
    ~Gate() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

void reap(shuttle::Process& sender) {
    sender.join();
    if (sender.exitcode() != 0) fail(fmt::format("a sender failed (exit {})", *sender.exitcode()));
}

// ---- shuttle ---------------------------------------------------------------------------------
std::size_t shuttle_capacity = shuttle::PipeOptions{}.capacity;

Measurement run_shuttle(std::size_t size, uint64_t count) {
    auto [receiver, sender] =
        shuttle::Pipe(false, shuttle::PipeOptions{.capacity = shuttle_capacity});
    Gate gate;
    shuttle::Process child([&] {
        receiver.close();
        std::vector<std::byte> message(size);  // allocated and touched before the clock runs
        gate.wait();
        for (uint64_t i = 0; i < count; ++i) {
            stamp(message, i);
            if (!sender.send_bytes(message)) return 1;
        }
        return 0;
    });
    child.start();
    sender.close();
    std::vector<std::byte> buffer(size);
    uint64_t sum = 0;
    auto start = steady_clock::now();
    gate.open();
    for (uint64_t i = 0; i < count; ++i) {
        auto got = receiver.recv_bytes_into(buffer);
        if (!got || *got != size) fail("shuttle: short message");
        sum += read_stamp(buffer.data(), size);
    }
    double seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
    if (receiver.recv().error() != shuttle::errc::eof) fail("shuttle: no EOF at the end");
    reap(child);
    if (sum != expected_sum(count)) fail("shuttle: checksum mismatch");
    return {seconds, count, count * size};
}

// ---- byte streams with a length prefix: socketpair STREAM, pipe(2) ---------------------------
Measurement run_stream(int read_fd, int write_fd, std::size_t size, uint64_t count) {
    Gate gate;
    shuttle::Process child([&] {
        ::close(read_fd);
        std::vector<std::byte> message(size);  // allocated and touched before the clock runs
        gate.wait();
        uint64_t length = size;
        for (uint64_t i = 0; i < count; ++i) {
            stamp(message, i);
            iovec parts[2] = {{&length, 8}, {message.data(), size}};
            // writev the prefix and the payload together; finish partial writes by hand.
            ssize_t n;
            do n = ::writev(write_fd, parts, 2);
            while (n < 0 && errno == EINTR);
            if (n < 0) return 1;
            auto done = static_cast<std::size_t>(n);
            if (done < 8 + size) {
                std::vector<std::byte> whole(8 + size);
                std::memcpy(whole.data(), &length, 8);
                std::memcpy(whole.data() + 8, message.data(), size);
                if (!write_all(write_fd, whole.data() + done, whole.size() - done)) return 2;
            }
        }
        ::close(write_fd);
        return 0;
    });
    child.start();
    ::close(write_fd);
    // Buffered reading: one read() takes in as many messages as are there.
    std::vector<std::byte> buffer(std::max<std::size_t>(256 * 1024, 2 * (size + 8)));
    std::vector<std::byte> message(size);
    std::size_t begin = 0, end = 0;
    uint64_t sum = 0;
    auto start = steady_clock::now();
    gate.open();
    for (uint64_t i = 0; i < count; ++i) {
        auto fill = [&](std::size_t need) {
            while (end - begin < need) {
                if (begin > 0 && buffer.size() - begin < need) {
                    std::memmove(buffer.data(), buffer.data() + begin, end - begin);
                    end -= begin;
                    begin = 0;
                }
                ssize_t n = ::read(read_fd, buffer.data() + end, buffer.size() - end);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) fail("stream: early EOF");
                end += static_cast<std::size_t>(n);
            }
        };
        fill(8);
        uint64_t length;
        std::memcpy(&length, buffer.data() + begin, 8);
        begin += 8;
        if (length != size) fail("stream: bad length");
        if (size <= buffer.size() / 2) {
            fill(size);
            std::memcpy(message.data(), buffer.data() + begin, size);
            begin += size;
        } else {  // larger than the buffer: what is buffered, then straight into the message
            std::size_t have = std::min(end - begin, size);
            std::memcpy(message.data(), buffer.data() + begin, have);
            begin += have;
            while (have < size) {
                ssize_t n = ::read(read_fd, message.data() + have, size - have);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) fail("stream: early EOF");
                have += static_cast<std::size_t>(n);
            }
        }
        sum += read_stamp(message.data(), size);
    }
    double seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
    ::close(read_fd);
    reap(child);
    if (sum != expected_sum(count)) fail("stream: checksum mismatch");
    return {seconds, count, count * size};
}

Measurement run_socketpair_stream(std::size_t size, uint64_t count) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair");
    return run_stream(fds[0], fds[1], size, count);
}

Measurement run_pipe2(std::size_t size, uint64_t count) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
    return run_stream(fds[0], fds[1], size, count);
}

std::optional<Measurement> run_seqpacket(std::size_t size, uint64_t count) {
    if (size > 128 * 1024) return std::nullopt;  // one datagram must fit the socket buffer
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair");
    Gate gate;
    shuttle::Process child([&] {
        ::close(fds[0]);
        std::vector<std::byte> message(size);  // allocated and touched before the clock runs
        gate.wait();
        for (uint64_t i = 0; i < count; ++i) {
            stamp(message, i);
            ssize_t n;
            do n = ::send(fds[1], message.data(), size, MSG_NOSIGNAL);
            while (n < 0 && errno == EINTR);
            if (n != static_cast<ssize_t>(size)) return 1;
        }
        return 0;
    });
    child.start();
    ::close(fds[1]);
    std::vector<std::byte> message(size);
    uint64_t sum = 0;
    auto start = steady_clock::now();
    gate.open();
    for (uint64_t i = 0; i < count; ++i) {
        ssize_t n;
        do n = ::recv(fds[0], message.data(), size, 0);
        while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(size)) fail("seqpacket: short message");
        sum += read_stamp(message.data(), size);
    }
    double seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
    ::close(fds[0]);
    reap(child);
    if (sum != expected_sum(count)) fail("seqpacket: checksum mismatch");
    return Measurement{seconds, count, count * size};
}

// ---- Python multiprocessing.Pipe -------------------------------------------------------------
const char* python_script = R"(
import sys, time, struct, multiprocessing as mp
def sender(conn, size, count):
    message = bytearray(size)
    for i in range(count):
        struct.pack_into('<Q', message, 0, i)
        if size >= 16: struct.pack_into('<Q', message, size - 8, i)
        conn.send_bytes(message)
    conn.close()
if __name__ == '__main__':
    size, count = int(sys.argv[1]), int(sys.argv[2])
    r, w = mp.Pipe(duplex=False)
    p = mp.Process(target=sender, args=(w, size, count)); p.start(); w.close()
    total = 0
    start = time.perf_counter()
    for i in range(count):
        m = r.recv_bytes()
        first = struct.unpack_from('<Q', m, 0)[0]
        if size >= 16 and struct.unpack_from('<Q', m, size - 8)[0] != first: sys.exit(3)
        total += first
    seconds = time.perf_counter() - start
    p.join()
    if total != count * (count - 1) // 2: sys.exit(4)
    print(seconds)
)";

bool python_available() {
    return std::system("python3 -c 'import multiprocessing' 2>/dev/null") == 0;
}

std::optional<Measurement> run_python(std::size_t size, uint64_t count) {
    static const std::string script_path = [] {
        std::string path = fmt::format("/tmp/shuttle_pipe_bench_{}.py", ::getpid());
        std::ofstream(path) << python_script;
        return path;
    }();
    std::string command = fmt::format("python3 {} {} {}", script_path, size, count);
    FILE* output = ::popen(command.c_str(), "r");
    if (!output) return std::nullopt;
    char line[128] = {};
    bool got = std::fgets(line, sizeof line, output) != nullptr;
    int status = ::pclose(output);
    if (!got || status != 0) fail("python: run failed or checksum mismatch");
    return Measurement{std::atof(line), count, count * size};
}

// ---- round trip, EOF delay, idle CPU ---------------------------------------------------------
std::vector<double> round_trips_shuttle(int count) {
    auto [here, there] = shuttle::Pipe();
    shuttle::Process child([&] {
        here.close();
        std::byte buffer[8];
        for (;;) {
            auto got = there.recv_bytes_into(buffer);
            if (!got) return got.error() == shuttle::errc::eof ? 0 : 1;
            if (!there.send_bytes(std::span(buffer, 8))) return 2;
        }
    });
    child.start();
    there.close();
    std::vector<double> samples;
    std::byte buffer[8] = {};
    for (int i = 0; i < count; ++i) {
        auto start = steady_clock::now();
        if (!here.send_bytes(std::span(buffer, 8))) fail("round trip send");
        if (!here.recv_bytes_into(buffer)) fail("round trip recv");
        samples.push_back(
            std::chrono::duration<double, std::micro>(steady_clock::now() - start).count());
    }
    here.close();
    reap(child);
    return samples;
}

std::vector<double> round_trips_socketpair(int count) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair");
    shuttle::Process child([&] {
        ::close(fds[0]);
        char buffer[8];
        for (;;) {
            ssize_t n = ::recv(fds[1], buffer, 8, 0);
            if (n == 0) return 0;
            if (n < 0 && errno == EINTR) continue;
            if (n != 8 || ::send(fds[1], buffer, 8, MSG_NOSIGNAL) != 8) return 1;
        }
    });
    child.start();
    ::close(fds[1]);
    std::vector<double> samples;
    char buffer[8] = {};
    for (int i = 0; i < count; ++i) {
        auto start = steady_clock::now();
        if (::send(fds[0], buffer, 8, MSG_NOSIGNAL) != 8 || ::recv(fds[0], buffer, 8, 0) != 8) {
            fail("socketpair round trip");
        }
        samples.push_back(
            std::chrono::duration<double, std::micro>(steady_clock::now() - start).count());
    }
    ::close(fds[0]);
    reap(child);
    return samples;
}

/// Milliseconds from SIGKILL of an idle sender to EOF at its parked receiver.
double eof_after_sigkill_ms() {
    auto [receiver, sender] = shuttle::Pipe(false);
    auto [ready_receiver, ready_sender] = shuttle::Pipe(false);
    shuttle::Process child([&] {
        receiver.close();
        (void)ready_sender.send("ready");
        for (;;) ::pause();
    });
    child.start();
    sender.close();
    (void)ready_receiver.recv();
    std::atomic<int64_t> killed_at{0};
    std::thread killer([&] {
        std::this_thread::sleep_for(20ms);  // the receiver parks meanwhile
        killed_at = steady_clock::now().time_since_epoch().count();
        child.kill();
    });
    auto eof = receiver.recv();
    auto now = steady_clock::now().time_since_epoch().count();
    killer.join();
    child.join();
    if (eof.error() != shuttle::errc::eof) fail("EOF expected after SIGKILL");
    return static_cast<double>(now - killed_at.load()) / 1e6;
}

/// CPU used by a receiver blocked in recv() for `idle` (percent of one core).
double idle_receiver_cpu_percent(std::chrono::milliseconds idle) {
    auto [parent_end, child_end] = shuttle::Pipe();
    shuttle::Process child([&] {
        parent_end.close();
        auto cpu = [] {
            rusage usage{};
            ::getrusage(RUSAGE_SELF, &usage);
            return usage.ru_utime.tv_sec * 1e6 + usage.ru_utime.tv_usec +
                   usage.ru_stime.tv_sec * 1e6 + usage.ru_stime.tv_usec;
        };
        (void)child_end.send("ready");
        double before = cpu();
        auto start = steady_clock::now();
        if (!child_end.recv()) return 1;
        double wall =
            std::chrono::duration<double, std::micro>(steady_clock::now() - start).count();
        double percent = 100.0 * (cpu() - before) / wall;
        return child_end.send_value(percent) ? 0 : 2;
    });
    child.start();
    child_end.close();
    (void)parent_end.recv();
    std::this_thread::sleep_for(idle);  // the measured idle period itself
    (void)parent_end.send("wake");
    double percent = parent_end.recv_value<double>().value();
    parent_end.close();
    reap(child);
    return percent;
}

using shuttle::bench::median;
double percentile(std::vector<double> values, double p) {
    std::sort(values.begin(), values.end());
    return values.empty()
               ? 0
               : values[std::min(values.size() - 1, static_cast<std::size_t>(p * values.size()))];
}

std::string size_name(std::size_t size) {
    if (size >= (1u << 20)) return fmt::format("{} MiB", size >> 20);
    if (size >= 1024) return fmt::format("{} KiB", size >> 10);
    return fmt::format("{} B", size);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"notes-pipe: one sender -> one receiver process, shuttle::Pipe vs kernel pipes"};
    bool quick = false;
    int repetitions = 3;
    std::string csv_path;
    bool skip_python = false;
    app.add_flag("--quick", quick, "small counts: a run of a few seconds");
    app.add_option("--repetitions", repetitions, "interleaved repetitions (median reported)")
        ->check(CLI::PositiveNumber);
    app.add_option("--csv", csv_path,
                   "also write scenario,transport,message_bytes,metric,median,unit");
    std::vector<std::size_t> only_sizes;
    app.add_option("--sizes", only_sizes,
                   "only these message sizes in bytes (8 1024 65536 1048576 67108864)");
    app.add_option("--capacity", shuttle_capacity, "shuttle::Pipe ring bytes per direction");
    app.add_flag("--no-python", skip_python, "skip the Python multiprocessing.Pipe peer");
    CLI11_PARSE(app, argc, argv);

    struct Size {
        std::size_t bytes;
        uint64_t count;
    };
    std::vector<Size> sizes = {
        {8, quick ? 100'000u : 1'000'000u},
        {1024, quick ? 50'000u : 400'000u},
        {64 * 1024, quick ? 2'000u : 20'000u},
        {1 << 20, quick ? 100u : 1'000u},
        {64u << 20, 1},
    };
    const bool python = !skip_python && python_available();
    if (!only_sizes.empty()) {
        std::erase_if(sizes, [&](const Size& size) {
            return std::find(only_sizes.begin(), only_sizes.end(), size.bytes) == only_sizes.end();
        });
    }
    using Runner = std::function<std::optional<Measurement>(std::size_t, uint64_t)>;
    std::vector<std::pair<std::string, Runner>> transports = {
        {"shuttle::Pipe",
         [](std::size_t s, uint64_t c) { return std::optional(run_shuttle(s, c)); }},
        {"socketpair STREAM+len",
         [](std::size_t s, uint64_t c) { return std::optional(run_socketpair_stream(s, c)); }},
        {"socketpair SEQPACKET", run_seqpacket},
        {"pipe(2)+len", [](std::size_t s, uint64_t c) { return std::optional(run_pipe2(s, c)); }},
    };
    if (python) transports.push_back({"Python mp.Pipe bytes", run_python});

    // results[transport][size] = per-repetition msgs/s
    std::map<std::string, std::map<std::size_t, std::vector<double>>> rates;
    for (int rep = 0; rep < repetitions; ++rep) {
        for (const Size& size : sizes) {
            for (auto& [name, run] : transports) {  // interleaved: every transport per size per rep
                uint64_t count = size.count;
                if (name.starts_with("Python") && size.bytes <= 1024)
                    count = std::max<uint64_t>(count / 5, 1);
                auto measured = run(size.bytes, count);
                if (measured)
                    rates[name][size.bytes].push_back(measured->messages / measured->seconds);
            }
        }
        fmt::print(stderr, "repetition {}/{} done\n", rep + 1, repetitions);
    }

    std::ofstream csv;
    if (!csv_path.empty()) {
        csv.open(csv_path);
        csv << "scenario,transport,message_bytes,metric,median,unit\n";
    }
    fmt::print(
        "notes-pipe, 1 sender -> 1 receiver process, median of {} interleaved repetitions\n\n",
        repetitions);
    fmt::print("{:<24}", "transport");
    for (const Size& size : sizes) fmt::print(" | {:>21}", size_name(size.bytes));
    fmt::print("\n{:<24}", "");
    for (size_t i = 0; i < sizes.size(); ++i) fmt::print(" | {:>10} {:>10}", "msgs/s", "MB/s");
    fmt::print("\n");
    for (auto& [name, run] : transports) {
        fmt::print("{:<24}", name);
        for (const Size& size : sizes) {
            auto& samples = rates[name][size.bytes];
            if (samples.empty()) {
                fmt::print(" | {:>21}", "n/a");
                continue;
            }
            double rate = median(samples);
            double mbps = rate * static_cast<double>(size.bytes) / 1e6;
            fmt::print(" | {:>10.4g} {:>10.4g}", rate, mbps);
            if (csv.is_open()) {
                csv << fmt::format("notes-pipe,{},{},msgs_per_s,{:.6g},1/s\n", name, size.bytes,
                                   rate);
                csv << fmt::format("notes-pipe,{},{},throughput,{:.6g},MB/s\n", name, size.bytes,
                                   mbps);
            }
        }
        fmt::print("\n");
    }
    fmt::print("\nshuttle::Pipe / peer (ratio of medians):\n");
    for (auto& [name, run] : transports) {
        if (name == "shuttle::Pipe") continue;
        fmt::print("{:<24}", name);
        for (const Size& size : sizes) {
            auto& peer = rates[name][size.bytes];
            if (peer.empty()) {
                fmt::print(" | {:>21}", "n/a");
                continue;
            }
            fmt::print(" | {:>20.1f}x", median(rates["shuttle::Pipe"][size.bytes]) / median(peer));
        }
        fmt::print("\n");
    }

    // Round trip, interleaved.
    const int trips = quick ? 20'000 : 200'000;
    std::vector<double> shuttle_p50, shuttle_p99, socket_p50, socket_p99;
    for (int rep = 0; rep < repetitions; ++rep) {
        auto a = round_trips_shuttle(trips);
        auto b = round_trips_socketpair(trips / 10);
        shuttle_p50.push_back(median(a));
        shuttle_p99.push_back(percentile(a, 0.99));
        socket_p50.push_back(median(b));
        socket_p99.push_back(percentile(b, 0.99));
    }
    fmt::print(
        "\nping-pong round trip, 8 B, p50 / p99 µs: shuttle::Pipe {:.2f} / {:.2f}, "
        "socketpair SEQPACKET {:.2f} / {:.2f}\n",
        median(shuttle_p50), median(shuttle_p99), median(socket_p50), median(socket_p99));
    std::vector<double> eofs;
    for (int rep = 0; rep < repetitions; ++rep) eofs.push_back(eof_after_sigkill_ms());
    fmt::print("EOF at a parked receiver after SIGKILL of its sender: {:.3f} ms (median)\n",
               median(eofs));
    double idle = idle_receiver_cpu_percent(quick ? 300ms : 1000ms);
    fmt::print("CPU of a receiver idle in recv(): {:.3f} % of a core\n", idle);
    if (csv.is_open()) {
        csv << fmt::format("notes-pipe,shuttle::Pipe,8,round_trip_p50,{:.4g},us\n",
                           median(shuttle_p50));
        csv << fmt::format("notes-pipe,shuttle::Pipe,8,round_trip_p99,{:.4g},us\n",
                           median(shuttle_p99));
        csv << fmt::format("notes-pipe,socketpair SEQPACKET,8,round_trip_p50,{:.4g},us\n",
                           median(socket_p50));
        csv << fmt::format("notes-pipe,socketpair SEQPACKET,8,round_trip_p99,{:.4g},us\n",
                           median(socket_p99));
        csv << fmt::format("notes-pipe,shuttle::Pipe,0,eof_after_sigkill,{:.4g},ms\n",
                           median(eofs));
        csv << fmt::format("notes-pipe,shuttle::Pipe,0,idle_receiver_cpu,{:.4g},%\n", idle);
    }
    return 0;
}
