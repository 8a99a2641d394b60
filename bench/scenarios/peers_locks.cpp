// notes-tickets lock peers: a process-shared pthread mutex and a process-shared POSIX semaphore
// (Boost's interprocess_mutex is in peers_boost.cpp, Python's Lock in the Python peer).
#include <pthread.h>
#include <semaphore.h>

#include <cerrno>

#include "harness.hpp"

namespace shuttle::bench {

std::unique_ptr<Peer> make_boost_mutex_peer();

namespace {

class PthreadMutex : public SharedLock {
  public:
    PthreadMutex() {
        pthread_mutexattr_t attributes;
        pthread_mutexattr_init(&attributes);
        pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&*mutex_, &attributes);
        pthread_mutexattr_destroy(&attributes);
    }
    void lock() override { pthread_mutex_lock(&*mutex_); }
    void unlock() override { pthread_mutex_unlock(&*mutex_); }

  private:
    Shared<pthread_mutex_t> mutex_;
};

class PthreadMutexPeer : public LockPeer {
  public:
    std::string name() const override { return "pthread-mutex"; }
    std::unique_ptr<SharedLock> create_lock() override { return std::make_unique<PthreadMutex>(); }
};

class Semaphore : public SharedLock {
  public:
    Semaphore() { sem_init(&*semaphore_, 1, 1); }
    ~Semaphore() override { sem_destroy(&*semaphore_); }
    void lock() override {
        while (sem_wait(&*semaphore_) != 0 && errno == EINTR) {
        }
    }
    void unlock() override { sem_post(&*semaphore_); }

  private:
    Shared<sem_t> semaphore_;
};

class SemaphorePeer : public LockPeer {
  public:
    std::string name() const override { return "posix-sem"; }
    std::unique_ptr<SharedLock> create_lock() override { return std::make_unique<Semaphore>(); }
};

}  // namespace

std::vector<std::unique_ptr<Peer>> make_lock_peers() {
    std::vector<std::unique_ptr<Peer>> peers;
    peers.push_back(make_shuttle_lock_peer());
    peers.push_back(std::make_unique<PthreadMutexPeer>());
    peers.push_back(make_boost_mutex_peer());
    peers.push_back(std::make_unique<SemaphorePeer>());
    return peers;
}

}  // namespace shuttle::bench
