// Boost peers: Interprocess message_queue (cross-process), interprocess_mutex (notes-tickets).
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>

#include "harness.hpp"

namespace shuttle::bench {
namespace {

namespace ipc = boost::interprocess;

class BoostMqEndpoint : public Endpoint {
  public:
    explicit BoostMqEndpoint(const std::string& name) : queue_(ipc::open_only, name.c_str()) {}
    void put(const std::byte* message, std::size_t size) override { queue_.send(message, size, 0); }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        ipc::message_queue::size_type received = 0;
        unsigned int priority = 0;
        queue_.receive(buffer, size, received, priority);
        return received;
    }

  private:
    ipc::message_queue queue_;
};

class BoostMqChannel : public Channel {
  public:
    explicit BoostMqChannel(const RunSpec& spec) {
        static std::atomic<int> counter{0};
        name_ = fmt::format("shuttle-bench-boost-{}-{}", getpid(), counter.fetch_add(1));
        ipc::message_queue::remove(name_.c_str());
        ipc::message_queue queue(ipc::create_only, name_.c_str(), spec.capacity, spec.payload);
    }
    ~BoostMqChannel() override { ipc::message_queue::remove(name_.c_str()); }
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<BoostMqEndpoint>(name_);
    }

  private:
    std::string name_;
};

class BoostMqPeer : public ChannelPeer {
  public:
    std::string name() const override { return "boost-mq"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<BoostMqChannel>(spec);
    }
};

class BoostMutex : public SharedLock {
  public:
    void lock() override { mutex_->lock(); }
    void unlock() override { mutex_->unlock(); }

  private:
    Shared<ipc::interprocess_mutex> mutex_;
};

class BoostMutexPeer : public LockPeer {
  public:
    std::string name() const override { return "boost-mutex"; }
    std::unique_ptr<SharedLock> create_lock() override { return std::make_unique<BoostMutex>(); }
};

}  // namespace

std::unique_ptr<Peer> make_boost_mq_peer() {
    return std::make_unique<BoostMqPeer>();
}
std::unique_ptr<Peer> make_boost_mutex_peer() {
    return std::make_unique<BoostMutexPeer>();
}

}  // namespace shuttle::bench
