// Kernel peers: POSIX message queues, pipe(2) with length prefixes, socketpair(SEQPACKET).
#include <fcntl.h>
#include <fmt/format.h>
#include <mqueue.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "harness.hpp"

namespace shuttle::bench {
namespace {

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

std::string unique_suffix() {
    static std::atomic<int> counter{0};
    return fmt::format("{}-{}", getpid(), counter.fetch_add(1));
}

long read_long(const char* path) {
    std::ifstream in(path);
    long value = -1;
    in >> value;
    return value;
}
bool write_long(const char* path, long value) {
    std::ofstream out(path);
    out << value;
    out.flush();
    return static_cast<bool>(out);
}

// ---- POSIX mq ------------------------------------------------------------------------------

class PosixMqEndpoint : public Endpoint {
  public:
    explicit PosixMqEndpoint(const std::string& name) {
        queue_ = mq_open(name.c_str(), O_RDWR);
        if (queue_ == mqd_t(-1)) fail("mq_open");
    }
    ~PosixMqEndpoint() override { mq_close(queue_); }
    void put(const std::byte* message, std::size_t size) override {
        while (mq_send(queue_, reinterpret_cast<const char*>(message), size, 0) != 0) {
            if (errno != EINTR) fail("mq_send");
        }
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        for (;;) {
            auto received = mq_receive(queue_, reinterpret_cast<char*>(buffer), size, nullptr);
            if (received >= 0) return static_cast<std::size_t>(received);
            if (errno != EINTR) fail("mq_receive");
        }
    }

  private:
    mqd_t queue_;
};

class PosixMqChannel : public Channel {
  public:
    explicit PosixMqChannel(const RunSpec& spec) : name_("/shuttle-bench-" + unique_suffix()) {
        mq_attr attributes{};
        attributes.mq_maxmsg = static_cast<long>(spec.capacity);
        attributes.mq_msgsize = static_cast<long>(spec.payload);
        mqd_t queue = mq_open(name_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600, &attributes);
        if (queue == mqd_t(-1)) fail("mq_open(create)");
        mq_close(queue);
    }
    ~PosixMqChannel() override { mq_unlink(name_.c_str()); }
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<PosixMqEndpoint>(name_);
    }

  private:
    std::string name_;
};

class PosixMqPeer : public ChannelPeer {
  public:
    static constexpr long wanted_depth = 1024, wanted_size = 65536;
    PosixMqPeer()
        : msg_max_(read_long("/proc/sys/fs/mqueue/msg_max")),
          msgsize_max_(read_long("/proc/sys/fs/mqueue/msgsize_max")) {
        depth_limit_ = msg_max_;
        size_limit_ = msgsize_max_;
        if (geteuid() == 0) {
            // Root: raise the limits for the depth-1024 and 64 KiB runs, restore them at exit.
            rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
            raised_bytes_ = setrlimit(RLIMIT_MSGQUEUE, &unlimited) == 0;
            if (msg_max_ < wanted_depth &&
                write_long("/proc/sys/fs/mqueue/msg_max", wanted_depth)) {
                depth_limit_ = wanted_depth;
                raised_depth_ = true;
            }
            if (msgsize_max_ < wanted_size &&
                write_long("/proc/sys/fs/mqueue/msgsize_max", wanted_size)) {
                size_limit_ = wanted_size;
                raised_size_ = true;
            }
        }
    }
    ~PosixMqPeer() override {
        if (raised_depth_) write_long("/proc/sys/fs/mqueue/msg_max", msg_max_);
        if (raised_size_) write_long("/proc/sys/fs/mqueue/msgsize_max", msgsize_max_);
    }
    std::string name() const override { return "posix-mq"; }
    std::optional<std::string> channel_skip_reason(const RunSpec& spec) const override {
        if (static_cast<long>(spec.capacity) > depth_limit_) {
            return fmt::format("depth {} > /proc/sys/fs/mqueue/msg_max {} (not root: respected)",
                               spec.capacity, depth_limit_);
        }
        rlimit bytes{};
        getrlimit(RLIMIT_MSGQUEUE, &bytes);
        // The kernel charges maxmsg x (msgsize + ~88 B of bookkeeping) to the user's budget.
        auto needed = spec.capacity * (spec.payload + 88) * (spec.kind == Kind::ping_pong ? 2 : 1);
        if (bytes.rlim_cur != RLIM_INFINITY && needed > bytes.rlim_cur) {
            return fmt::format(
                "needs ~{} B > RLIMIT_MSGQUEUE {} B (no CAP_SYS_RESOURCE to raise it)", needed,
                bytes.rlim_cur);
        }
        if (static_cast<long>(spec.payload) > size_limit_) {
            return fmt::format("{} B > msgsize_max {} (not root: respected)", spec.payload,
                               size_limit_);
        }
        return std::nullopt;
    }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<PosixMqChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        std::vector<std::string> notes;
        if (raised_depth_ || raised_size_) {
            notes.push_back(fmt::format(
                "posix-mq: running as root, raised /proc/sys/fs/mqueue/msg_max {} -> {} and "
                "msgsize_max {} -> {} for this run (restored at exit), so the queue depth is the "
                "scenario's capacity; RLIMIT_MSGQUEUE {}: runs needing more are skipped",
                msg_max_, depth_limit_, msgsize_max_, size_limit_,
                raised_bytes_ ? "raised to unlimited"
                              : "could not be raised (no CAP_SYS_RESOURCE)"));
        } else {
            notes.push_back(fmt::format(
                "posix-mq: limits respected (msg_max {}, msgsize_max {}); runs beyond them are "
                "skipped",
                msg_max_, msgsize_max_));
        }
        return notes;
    }

  private:
    long msg_max_, msgsize_max_;
    long depth_limit_, size_limit_;
    bool raised_depth_ = false, raised_size_ = false, raised_bytes_ = false;
};

// ---- a process-shared mutex for the stream transports --------------------------------------

class SharedMutex {
  public:
    SharedMutex() {
        pthread_mutexattr_t attributes;
        pthread_mutexattr_init(&attributes);
        pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
        pthread_mutex_init(&*mutex_, &attributes);
        pthread_mutexattr_destroy(&attributes);
    }
    void lock() { pthread_mutex_lock(&*mutex_); }
    void unlock() { pthread_mutex_unlock(&*mutex_); }

  private:
    Shared<pthread_mutex_t> mutex_;
};

void write_all(int fd, iovec* parts, int count) {
    while (count > 0) {
        ssize_t written = writev(fd, parts, count);
        if (written < 0) {
            if (errno == EINTR) continue;
            fail("writev");
        }
        auto left = static_cast<std::size_t>(written);
        while (count > 0 && left >= parts->iov_len) {
            left -= parts->iov_len;
            ++parts;
            --count;
        }
        if (count > 0) {
            parts->iov_base = static_cast<char*>(parts->iov_base) + left;
            parts->iov_len -= left;
        }
    }
}

void read_all(int fd, void* buffer, std::size_t size) {
    auto* at = static_cast<char*>(buffer);
    while (size > 0) {
        ssize_t got = read(fd, at, size);
        if (got < 0) {
            if (errno == EINTR) continue;
            fail("read");
        }
        if (got == 0) throw std::runtime_error("unexpected end of stream");
        at += got;
        size -= static_cast<std::size_t>(got);
    }
}

// ---- pipe(2) + 4-byte length prefix ---------------------------------------------------------
// Several writers need a lock only when a message exceeds PIPE_BUF (smaller writes are atomic);
// several readers always need one (prefix and body are two reads). That is what Python's
// multiprocessing.Queue does on its pipe too.

class PipeChannel;
class PipeEndpoint : public Endpoint {
  public:
    explicit PipeEndpoint(PipeChannel& channel) : channel_(channel) {}
    void put(const std::byte* message, std::size_t size) override;
    std::size_t get(std::byte* buffer, std::size_t size) override;

  private:
    PipeChannel& channel_;
};

class PipeChannel : public Channel {
  public:
    explicit PipeChannel(const RunSpec& spec) : spec_(spec) {
        if (pipe2(fds_, O_CLOEXEC) != 0) fail("pipe2");
        long wanted = static_cast<long>(spec.capacity * (spec.payload + 4));
        long most = read_long("/proc/sys/fs/pipe-max-size");
        fcntl(fds_[1], F_SETPIPE_SZ, static_cast<int>(std::clamp(wanted, 4096L, most)));
        lock_writers_ = spec.producers > 1 && spec.payload + 4 > PIPE_BUF;
        lock_readers_ = spec.consumers > 1;
    }
    ~PipeChannel() override {
        close(fds_[0]);
        close(fds_[1]);
    }
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<PipeEndpoint>(*this);
    }

  private:
    friend class PipeEndpoint;
    RunSpec spec_;
    int fds_[2];
    bool lock_writers_, lock_readers_;
    SharedMutex writers_, readers_;
};

void PipeEndpoint::put(const std::byte* message, std::size_t size) {
    auto length = static_cast<std::uint32_t>(size);
    iovec parts[2] = {{&length, 4}, {const_cast<std::byte*>(message), size}};
    if (channel_.lock_writers_) channel_.writers_.lock();
    write_all(channel_.fds_[1], parts, 2);
    if (channel_.lock_writers_) channel_.writers_.unlock();
}

std::size_t PipeEndpoint::get(std::byte* buffer, std::size_t size) {
    std::uint32_t length = 0;
    if (channel_.lock_readers_) channel_.readers_.lock();
    read_all(channel_.fds_[0], &length, 4);
    if (length > size) {
        if (channel_.lock_readers_) channel_.readers_.unlock();
        throw std::runtime_error("pipe: message larger than the buffer");
    }
    read_all(channel_.fds_[0], buffer, length);
    if (channel_.lock_readers_) channel_.readers_.unlock();
    return length;
}

class PipePeer : public ChannelPeer {
  public:
    std::string name() const override { return "pipe"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<PipeChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        return {
            "pipe: pipe(2) with a 4-byte length prefix, F_SETPIPE_SZ ~ capacity x message "
            "(4 KiB .. pipe-max-size); a process-shared mutex around readers when C > 1 and "
            "around writers when P > 1 and a message exceeds PIPE_BUF"};
    }
};

// ---- socketpair(AF_UNIX, SOCK_SEQPACKET): one record per message, no prefix, no lock -------

class SocketEndpoint : public Endpoint {
  public:
    SocketEndpoint(int send_fd, int receive_fd) : send_(send_fd), receive_(receive_fd) {}
    void put(const std::byte* message, std::size_t size) override {
        while (send(send_, message, size, MSG_NOSIGNAL) < 0) {
            if (errno != EINTR) fail("send");
        }
    }
    std::size_t get(std::byte* buffer, std::size_t size) override {
        for (;;) {
            ssize_t got = recv(receive_, buffer, size, 0);
            if (got >= 0) return static_cast<std::size_t>(got);
            if (errno != EINTR) fail("recv");
        }
    }

  private:
    int send_, receive_;
};

class SocketChannel : public Channel {
  public:
    explicit SocketChannel(const RunSpec& spec) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_) != 0) fail("socketpair");
        // Room for `capacity` messages, within the kernel's limits (wmem_max).
        int bytes = static_cast<int>(
            std::min<std::size_t>(spec.capacity * (spec.payload + 64) * 2, std::size_t{1} << 24));
        bytes = std::max(bytes, static_cast<int>(spec.payload * 2 + 4096));
        setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
    ~SocketChannel() override {
        close(fds_[0]);
        close(fds_[1]);
    }
    std::unique_ptr<Endpoint> attach(Role, int) override {
        return std::make_unique<SocketEndpoint>(fds_[0], fds_[1]);
    }

  private:
    int fds_[2];
};

class SocketPeer : public ChannelPeer {
  public:
    std::string name() const override { return "socketpair"; }
    std::unique_ptr<Channel> create(const RunSpec& spec) override {
        return std::make_unique<SocketChannel>(spec);
    }
    std::vector<std::string> notes() const override {
        return {
            "socketpair: AF_UNIX SOCK_SEQPACKET (one record per message, atomic for many "
            "senders and receivers), SO_SNDBUF ~ capacity x message within wmem_max"};
    }
};

}  // namespace

std::unique_ptr<Peer> make_posix_mq_peer() {
    return std::make_unique<PosixMqPeer>();
}
std::unique_ptr<Peer> make_pipe_peer() {
    return std::make_unique<PipePeer>();
}
std::unique_ptr<Peer> make_socketpair_peer() {
    return std::make_unique<SocketPeer>();
}

}  // namespace shuttle::bench
