// shuttle's own transports: Queue<T> / JoinableQueue<T> for the queue scenarios, the Pipe
// (pipe/) for notes-pipe and ping-pong, and the Lock (sync/) for notes-tickets.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <span>

#include "harness.hpp"
#include "sized.hpp"

#if __has_include("shuttle/queue.hpp")
#include "shuttle/queue.hpp"
#define SHUTTLE_BENCH_HAVE_SHUTTLE_QUEUE 1
#endif
#if __has_include("shuttle/pipe.hpp")
#include "shuttle/pipe.hpp"
#define SHUTTLE_BENCH_HAVE_SHUTTLE_PIPE 1
#endif
#if __has_include("shuttle/lock.hpp")
#include "shuttle/lock.hpp"
#define SHUTTLE_BENCH_HAVE_SHUTTLE_LOCK 1
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

namespace {

#if SHUTTLE_BENCH_HAVE_SHUTTLE_PIPE
// SHUTTLE PIPE TRANSPORT: a one-way Pipe made by the parent before fork(); the producer keeps
// the sending end, the consumer the receiving end, each child closes the end it does not use,
// and the parent closes both of its copies once every worker is started. End of stream is EOF
// (every copy of the sending end closed: the producer exited), not a sentinel message.
class ShuttlePipeEndpoint : public Endpoint {
  public:
    explicit ShuttlePipeEndpoint(Connection end) : end_(std::move(end)) {}
    void put(const std::byte* message, std::size_t size) override {
        auto sent = end_.send_bytes(std::span<const std::byte>(message, size));
        if (!sent) throw std::runtime_error("Pipe send: " + make_error_code(sent.error()).message());
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        auto got = end_.recv_bytes_into(std::span<std::byte>(buffer, size));
        if (got) return *got;
        if (got.error() == errc::eof) {  // the harness's end of stream
            write_header(buffer, 8, sentinel_header);
            return 8;
        }
        throw std::runtime_error("Pipe recv: " + make_error_code(got.error()).message());
    }

  private:
    Connection end_;
};

class ShuttlePipeChannel : public Channel {
  public:
    explicit ShuttlePipeChannel(const RunSpec& spec) {
        // Ring bytes per direction: room for `capacity` messages and their 8-byte frame
        // headers, a power of two of at least 4 KiB (what PipeOptions accepts).
        std::size_t bytes = std::max<std::size_t>(spec.capacity * (spec.payload + 8), 4096);
        auto [receiver, sender] = Pipe(false, PipeOptions{.capacity = std::bit_ceil(bytes)});
        receiver_ = std::move(receiver);
        sender_ = std::move(sender);
    }
    std::unique_ptr<Endpoint> attach(Role role, int) override {
        // In a forked child: keep the end this role uses, close the other copy.
        if (role == Role::consumer) {
            sender_.close();
            return std::make_unique<ShuttlePipeEndpoint>(std::move(receiver_));
        }
        receiver_.close();
        return std::make_unique<ShuttlePipeEndpoint>(std::move(sender_));
    }
    void started() override {
        // The parent's copies: closing the sending one lets the consumer see EOF once the
        // producer is done.
        sender_.close();
        receiver_.close();
    }
    void stop_consumers(int, std::size_t) override {}  // EOF is the stop

  private:
    Connection receiver_, sender_;
};

class ShuttlePipePeer : public ChannelPeer {
  public:
    std::string name() const override { return "shuttle-pipe"; }
    std::optional<std::string> channel_skip_reason(const RunSpec& spec) const override {
        if (spec.kind != Kind::pipe && spec.kind != Kind::ping_pong && spec.kind != Kind::idle) {
            return not_a_pipe_scenario;
        }
        return std::nullopt;
    }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<ShuttlePipeChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        return {
            "shuttle-pipe: shuttle::Pipe(duplex=false), ring of capacity x (message + 8 B "
            "frame header) rounded up to a power of two (>= 4 KiB); notes-pipe ends on EOF "
            "(the sender exited), ping-pong uses two one-way pipes"};
    }
};
#endif

#if SHUTTLE_BENCH_HAVE_SHUTTLE_LOCK
// SHUTTLE LOCK: Lock::anonymous() made by the parent before fork(); the buyers inherit it.
class ShuttleLock : public SharedLock {
  public:
    ShuttleLock() : lock_(Lock::anonymous()) {}
    void lock() override { lock_.lock(); }
    void unlock() override { lock_.unlock(); }

  private:
    Lock lock_;
};

class ShuttleLockPeer : public LockPeer {
  public:
    std::string name() const override { return "shuttle"; }
    std::unique_ptr<SharedLock> create_lock() override { return std::make_unique<ShuttleLock>(); }
};
#endif

}  // namespace

std::unique_ptr<Peer> make_shuttle_lock_peer() {
#if SHUTTLE_BENCH_HAVE_SHUTTLE_LOCK
    return std::make_unique<ShuttleLockPeer>();
#else
    return std::make_unique<UnavailablePeer>("shuttle", "shuttle/lock.hpp not built", true);
#endif
}

std::unique_ptr<Peer> make_shuttle_pipe_peer() {
#if SHUTTLE_BENCH_HAVE_SHUTTLE_PIPE
    return std::make_unique<ShuttlePipePeer>();
#else
    return std::make_unique<UnavailablePeer>("shuttle-pipe", "shuttle/pipe.hpp not built");
#endif
}

std::unique_ptr<Peer> make_unavailable_peer(std::string name, std::string reason) {
    return std::make_unique<UnavailablePeer>(std::move(name), std::move(reason));
}

}  // namespace shuttle::bench
