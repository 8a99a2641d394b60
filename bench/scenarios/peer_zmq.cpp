// ZeroMQ PUSH/PULL over ipc:// (optional: compiled when libzmq3-dev is installed).
#include <fmt/format.h>

#include "harness.hpp"

#if SHUTTLE_BENCH_HAVE_ZMQ
#include <unistd.h>
#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <stdexcept>
#endif

namespace shuttle::bench {
#if SHUTTLE_BENCH_HAVE_ZMQ
namespace {

[[noreturn]] void zmq_fail(const char* what) {
    throw std::runtime_error(fmt::format("{}: {}", what, zmq_strerror(zmq_errno())));
}

// Topology: each consumer binds its own PULL socket; each producer's PUSH connects to every
// consumer and load-balances across them. Sentinels go to each consumer's endpoint directly.
// A PULL socket fair-queues between connections, so a sentinel can overtake data still in
// flight on another connection: the harness sends the sentinels once every item arrived.
class ZmqEndpoint : public Endpoint {
  public:
    ZmqEndpoint(const std::vector<std::string>& endpoints, Role role, int index,
                std::size_t capacity) {
        context_ = zmq_ctx_new();
        socket_ = zmq_socket(context_, role == Role::producer ? ZMQ_PUSH : ZMQ_PULL);
        int hwm = static_cast<int>(capacity), linger = -1, reconnect = 1;
        // The bound is the sender's high-water mark. A receive HWM lost messages here: when
        // a PUSH socket closes while the receiver's pipe is at its HWM, libzmq 4.3.4 drops what
        // it still had for that connection (seen as "received 480 of 500 items").
        int unlimited = 0;
        zmq_setsockopt(socket_, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(socket_, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
        if (role == Role::consumer) {
            if (zmq_bind(socket_, endpoints.at(index).c_str()) != 0) zmq_fail("zmq_bind");
        } else {
            for (const auto& endpoint : endpoints) {
                if (zmq_connect(socket_, endpoint.c_str()) != 0) zmq_fail("zmq_connect");
            }
        }
    }
    ~ZmqEndpoint() override {
        zmq_close(socket_);
        zmq_ctx_term(context_);  // with linger -1: returns once everything queued was sent
    }
    void put(const std::byte* message, std::size_t size) override {
        while (zmq_send(socket_, message, size, 0) < 0) {
            if (zmq_errno() != EINTR) zmq_fail("zmq_send");
        }
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        for (;;) {
            int got = zmq_recv(socket_, buffer, size, 0);
            if (got >= 0) return static_cast<std::size_t>(got);
            if (zmq_errno() != EINTR) zmq_fail("zmq_recv");
        }
    }

  private:
    void* context_ = nullptr;
    void* socket_ = nullptr;
};

class ZmqChannel : public Channel {
  public:
    explicit ZmqChannel(const RunSpec& spec) : capacity_(spec.capacity) {
        static std::atomic<int> counter{0};
        int id = counter.fetch_add(1);
        for (int i = 0; i < spec.consumers; ++i) {
            auto path = std::filesystem::temp_directory_path() /
                        fmt::format("shuttle-bench-zmq-{}-{}-{}", getpid(), id, i);
            paths_.push_back(path.string());
            endpoints_.push_back("ipc://" + path.string());
        }
    }
    ~ZmqChannel() override {
        for (const auto& path : paths_) unlink(path.c_str());
    }
    std::unique_ptr<Endpoint> attach(Role role, int index) override {
        return std::make_unique<ZmqEndpoint>(endpoints_, role, index, capacity_);
    }
    bool sentinel_may_overtake() const override { return true; }
    void stop_consumers(int consumers, std::size_t payload) override {
        std::vector<std::byte> message(payload);
        write_header(message.data(), payload, sentinel_header);
        for (int i = 0; i < consumers; ++i) {
            ZmqEndpoint one({endpoints_.at(i)}, Role::producer, 0, capacity_);
            one.put(message.data(), payload);
        }
    }

  private:
    std::size_t capacity_;
    std::vector<std::string> endpoints_, paths_;
};

class ZmqPeer : public ChannelPeer {
  public:
    std::string name() const override { return "zmq"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<ZmqChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        return {
            "zmq: PUSH/PULL over ipc://, send HWM = capacity per connection, receive HWM "
            "unlimited (a bounded one lost messages when a sender closed), so not strictly "
            "bounded; no order across connections, so the "
            "sentinels are sent once every item arrived"};
    }
};

}  // namespace

std::unique_ptr<Peer> make_zmq_peer() {
    return std::make_unique<ZmqPeer>();
}
#else
std::unique_ptr<Peer> make_zmq_peer() {
    return nullptr;
}
#endif
}  // namespace shuttle::bench
