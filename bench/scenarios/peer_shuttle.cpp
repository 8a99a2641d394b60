// shuttle's own transports: Queue<T> / JoinableQueue<T> for the queue scenarios, and the hooks
// for the Pipe (notes-pipe, bench/pipe) and the Lock (notes-tickets, sync/) being written now.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>

#include "harness.hpp"
#include "sized.hpp"

#if __has_include("shuttle/queue.hpp")
#include "shuttle/queue.hpp"
#define SHUTTLE_BENCH_HAVE_SHUTTLE_QUEUE 1
#endif

namespace shuttle::bench {
namespace {

/// Stands in for a peer that is not available in this build: every run is skipped with a line.
class UnavailablePeer : public Peer {
  public:
    UnavailablePeer(std::string name, std::string reason, bool lock = false)
        : name_(std::move(name)), reason_(std::move(reason)), lock_(lock) {}
    std::string name() const override { return name_; }
    std::optional<std::string> skip_reason(const RunSpec& spec) const override {
        // Same convention as the real peers: a lock only runs notes-tickets, a channel the rest.
        if (lock_ != (spec.kind == Kind::tickets)) return lock_ ? "not a channel" : "not a lock";
        return reason_;
    }
    Measurement run(const RunSpec&) override { return {}; }

  private:
    std::string name_, reason_;
    bool lock_;
};

#if SHUTTLE_BENCH_HAVE_SHUTTLE_QUEUE
// SHUTTLE QUEUE TRANSPORT: the parent creates the queue by name; children open it by name.
template <class Q, class M>
class ShuttleEndpoint : public Endpoint {
  public:
    ShuttleEndpoint(Q queue, bool joinable) : queue_(std::move(queue)), joinable_(joinable) {}
    void put(const std::byte* message, std::size_t size) override {
        copy_in(item_, message, size);
        auto done = queue_.put(item_);
        if (!done) throw std::runtime_error(make_error_code(done.error()).message());
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        auto item = queue_.get();
        if (!item) throw std::runtime_error(make_error_code(item.error()).message());
        return copy_out(*item, buffer, size);
    }
    bool native_task_accounting() const override { return joinable_; }
    void task_done() override {
        if constexpr (requires(Q & q) { q.task_done(); }) {
            auto done = queue_.task_done();
            if (!done) throw std::runtime_error(make_error_code(done.error()).message());
        }
    }
    void join() override {
        if constexpr (requires(Q & q) { q.join(); }) {
            auto done = queue_.join();
            if (!done) throw std::runtime_error(make_error_code(done.error()).message());
        }
    }

  private:
    Q queue_;
    bool joinable_;
    M item_;
};

template <class Q, class M>
class ShuttleQueueChannel : public Channel {
  public:
    explicit ShuttleQueueChannel(const RunSpec& spec, bool joinable)
        : name_(next_name()),
          joinable_(joinable),
          queue_(Q::create(name_, spec.capacity, options())) {}
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<ShuttleEndpoint<Q, M>>(Q::open(name_, options()), joinable_);
    }

  private:
    static std::string next_name() {
        static std::atomic<int> counter{0};
        return fmt::format("shuttle-bench-{}-{}", getpid(), counter.fetch_add(1));
    }
    static QueueOptions options() {
        QueueOptions options;
        options.remove_on_destroy = true;
        return options;
    }
    std::string name_;
    bool joinable_;
    Q queue_;
};

template <class M>
class ShuttleChannel : public ShuttleQueueChannel<Queue<M>, M> {
  public:
    explicit ShuttleChannel(const RunSpec& spec) : ShuttleQueueChannel<Queue<M>, M>(spec, false) {}
};
template <class M>
class ShuttleJoinableChannel : public ShuttleQueueChannel<JoinableQueue<M>, M> {
  public:
    explicit ShuttleJoinableChannel(const RunSpec& spec)
        : ShuttleQueueChannel<JoinableQueue<M>, M>(spec, true) {}
};

class ShuttlePeer : public ChannelPeer {
  public:
    std::string name() const override { return "shuttle"; }
    std::optional<std::string> channel_skip_reason(const RunSpec& spec) const override {
        if (!payload_is_compiled_in(spec.payload)) return "payload size not compiled in";
        return std::nullopt;
    }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        if (spec.kind == Kind::joinable) return make_sized<ShuttleJoinableChannel>(spec);
        return make_sized<ShuttleChannel>(spec);
    }
};
#endif

}  // namespace

std::unique_ptr<Peer> make_shuttle_peer() {
#if SHUTTLE_BENCH_HAVE_SHUTTLE_QUEUE
    return std::make_unique<ShuttlePeer>();
#else
    return std::make_unique<UnavailablePeer>("shuttle",
                                             "not yet available (shuttle/queue.hpp not built)");
#endif
}

// HOOK (notes-tickets): shuttle's Lock from sync/ is being written; wire it here as a LockPeer
// (create the Lock before fork(), lock()/unlock() in each buyer) once its header lands.
std::unique_ptr<Peer> make_shuttle_lock_peer() {
    return std::make_unique<UnavailablePeer>("shuttle", "shuttle Lock not yet available", true);
}

// HOOK (notes-pipe): shuttle's Pipe (pipe/, benchmarked by bench/pipe) is being written; wire
// it here as a ChannelPeer (Pipe made before fork(), sender end in the producer, receiver end
// in the consumer, EOF instead of the sentinel) once its header lands.
std::unique_ptr<Peer> make_shuttle_pipe_peer() {
    return std::make_unique<UnavailablePeer>("shuttle-pipe", "shuttle Pipe not yet available");
}

std::unique_ptr<Peer> make_unavailable_peer(std::string name, std::string reason) {
    return std::make_unique<UnavailablePeer>(std::move(name), std::move(reason));
}

}  // namespace shuttle::bench
