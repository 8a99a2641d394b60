// In-process ceilings: threads (not processes) on Boost.Lockfree queue, and atomic_queue /
// moodycamel when their Debian packages are installed. A full or empty queue is retried after
// std::this_thread::yield() (these queues have no blocking put; moodycamel has a blocking get).
#include <fmt/format.h>

#include <boost/lockfree/queue.hpp>
#include <thread>

#include "harness.hpp"
#include "sized.hpp"

#if __has_include(<atomic_queue/atomic_queue.h>)
#include <atomic_queue/atomic_queue.h>
#define SHUTTLE_BENCH_HAVE_ATOMIC_QUEUE 1
#endif
#if __has_include(<concurrentqueue/blockingconcurrentqueue.h>)
#include <concurrentqueue/blockingconcurrentqueue.h>
#define SHUTTLE_BENCH_HAVE_MOODYCAMEL 1
#endif

namespace shuttle::bench {
namespace {

/// Endpoint over a queue adapter with try_push / try_pop (and optionally a blocking pop).
template <class Adapter>
class ThreadEndpoint : public Endpoint {
  public:
    using Item = typename Adapter::Item;
    explicit ThreadEndpoint(Adapter& adapter) : adapter_(adapter) {}
    void put(const std::byte* message, std::size_t size) override {
        copy_in(item_, message, size);
        while (!adapter_.try_push(item_)) std::this_thread::yield();
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        adapter_.pop(item_);
        return copy_out(item_, buffer, size);
    }

  private:
    Adapter& adapter_;
    Item item_;
};

template <class Adapter>
class ThreadChannel : public Channel {
  public:
    explicit ThreadChannel(const RunSpec& spec) : adapter_(spec) {}
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<ThreadEndpoint<Adapter>>(adapter_);
    }
    bool sentinel_may_overtake() const override { return Adapter::sentinel_may_overtake; }
    bool per_producer_order() const override { return Adapter::per_producer_order; }

  private:
    Adapter adapter_;
};

template <class M>
struct LockfreeAdapter {
    using Item = M;
    static constexpr bool sentinel_may_overtake = false, per_producer_order = true;
    explicit LockfreeAdapter(const RunSpec& spec) : queue(spec.capacity) {}
    bool try_push(const M& item) { return queue.bounded_push(item); }
    void pop(M& item) {
        while (!queue.pop(item)) std::this_thread::yield();
    }
    boost::lockfree::queue<M> queue;
};
template <class M>
using LockfreeChannel = ThreadChannel<LockfreeAdapter<M>>;

class InProcessPeer : public ChannelPeer {
  public:
    bool in_process() const override { return true; }
    std::optional<std::string> channel_skip_reason(const RunSpec& spec) const override {
        if (!payload_is_compiled_in(spec.payload)) return "payload size not compiled in";
        return std::nullopt;
    }
};

class LockfreePeer : public InProcessPeer {
  public:
    std::string name() const override { return "lockfree*"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return make_sized<LockfreeChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        return {
            "lockfree*, atomic_queue*, moodycamel*: in-process ceilings, threads in one "
            "process (not processes); retry with yield() when full/empty; atomic_queue* "
            "is not checked for per-producer order (it reorders, see docs/bench.md), "
            "moodycamel* gets its sentinels after every item arrived"};
    }
};

#if SHUTTLE_BENCH_HAVE_ATOMIC_QUEUE
template <class M>
struct AtomicQueueAdapter {
    using Item = M;
    // Its slots carry a state but no lap number: a preempted consumer can take the item of a
    // later lap, so one producer's items may reach a consumer out of order (measured: up to
    // 17k of 300k items at 3x2). Count, checksum and integrity are still checked.
    static constexpr bool sentinel_may_overtake = false, per_producer_order = false;
    explicit AtomicQueueAdapter(const RunSpec& spec)
        : queue(static_cast<unsigned>(spec.capacity)) {}
    bool try_push(const M& item) { return queue.try_push(item); }
    void pop(M& item) {
        while (!queue.try_pop(item)) std::this_thread::yield();
    }
    atomic_queue::AtomicQueueB2<M> queue;
};
template <class M>
using AtomicQueueChannel = ThreadChannel<AtomicQueueAdapter<M>>;

class AtomicQueuePeer : public InProcessPeer {
  public:
    std::string name() const override { return "atomic_queue*"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return make_sized<AtomicQueueChannel>(spec);
    }
};
#endif

#if SHUTTLE_BENCH_HAVE_MOODYCAMEL
template <class M>
struct MoodycamelAdapter {
    using Item = M;
    // No order across producers: the sentinels' thread is another producer, so its sentinel
    // can be dequeued before other producers' items (measured: 1 of 2000 items lost).
    static constexpr bool sentinel_may_overtake = true, per_producer_order = true;
    // try_enqueue never allocates: capacity is preallocated (moodycamel rounds it up to blocks
    // of 32 per producer, so the bound is approximate).
    explicit MoodycamelAdapter(const RunSpec& spec)
        : queue(spec.capacity, 0, static_cast<std::size_t>(spec.producers) + 2) {}
    bool try_push(const M& item) { return queue.try_enqueue(item); }
    void pop(M& item) { queue.wait_dequeue(item); }
    moodycamel::BlockingConcurrentQueue<M> queue;
};
template <class M>
using MoodycamelChannel = ThreadChannel<MoodycamelAdapter<M>>;

class MoodycamelPeer : public InProcessPeer {
  public:
    std::string name() const override { return "moodycamel*"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return make_sized<MoodycamelChannel>(spec);
    }
};
#endif

}  // namespace

std::unique_ptr<Peer> make_lockfree_peer() {
    return std::make_unique<LockfreePeer>();
}
#if SHUTTLE_BENCH_HAVE_ATOMIC_QUEUE
std::unique_ptr<Peer> make_atomic_queue_peer() {
    return std::make_unique<AtomicQueuePeer>();
}
#else
std::unique_ptr<Peer> make_atomic_queue_peer() {
    return nullptr;
}
#endif
#if SHUTTLE_BENCH_HAVE_MOODYCAMEL
std::unique_ptr<Peer> make_moodycamel_peer() {
    return std::make_unique<MoodycamelPeer>();
}
#else
std::unique_ptr<Peer> make_moodycamel_peer() {
    return nullptr;
}
#endif

}  // namespace shuttle::bench
