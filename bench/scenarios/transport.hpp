// The scenario runner's vocabulary: what a run is (RunSpec), what it measured (Measurement),
// the message layout every transport carries, and the small transport interface each peer
// implements (Channel made by the parent before fork(), Endpoint attached in each child).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shuttle::bench {

/// What a run does.
enum class Kind {
    queue,      // P producers, C consumers, one sentinel per consumer (notes-1x1, notes-3x2, sweep)
    joinable,   // as queue, and each producer join()s until every item got task_done()
    pipe,       // 1 sender -> 1 receiver, then end of stream (notes-pipe)
    ping_pong,  // two processes bounce one message; round-trip latency
    tickets,    // 10 processes sell a shared ticket stock under a lock (notes-tickets)
    idle,       // one consumer blocked on an empty channel; its CPU use (idle-cpu)
};
/// The skip reason of a pipe-only peer outside the pipe scenarios (not listed in the tables).
inline constexpr const char* not_a_pipe_scenario = "not a pipe scenario";
const char* kind_name(Kind kind);

struct RunSpec {
    std::string scenario;  // "notes-3x2", "sweep", ...
    Kind kind = Kind::queue;
    int producers = 1;
    int consumers = 1;
    std::size_t capacity = 10;                // items (queues); a hint for byte-buffered kernels
    std::size_t payload = 8;                  // bytes per message, >= 8
    std::uint64_t items_per_producer = 1000;  // tickets: the stock; ping_pong: round trips
    /// Producers (the pinger) stop early once this many seconds passed since the start
    /// barrier; 0: no limit. The checks then expect exactly what was sent. Not for tickets.
    double budget_seconds = 0;
    double timeout_seconds = 60;  // a run that takes longer is killed and reported failed
    std::string label() const;    // "3x2 cap 10 8 B"
};

/// What one run measured. ok == false: `error` says why and no figure is reported.
struct Measurement {
    bool ok = false;
    std::string error;
    std::uint64_t items = 0;        // items received (tickets sold, round trips made)
    double seconds = 0;             // start barrier .. last item received
    double cpu_seconds = 0;         // user + system of every process (or thread) of the run
    double p50_us = 0, p99_us = 0;  // ping_pong only
    // idle: cpu_seconds is the blocked consumer's alone, over `seconds` of waiting.
    std::string note;               // e.g. "task_done emulated"
};

// ---- message layout ------------------------------------------------------------------------
// Every message starts with a 64-bit header word: producer id (bits 40..63) and sequence
// (bits 0..39). Messages of 16 B and more repeat the header in their last 8 bytes, so a torn or
// truncated message fails the check. The sentinel is a header of all ones.
inline constexpr std::uint64_t sentinel_header = ~std::uint64_t{0};
inline std::uint64_t make_header(std::uint64_t producer, std::uint64_t sequence) {
    return producer << 40 | sequence;
}
inline std::uint64_t header_producer(std::uint64_t header) {
    return header >> 40;
}
inline std::uint64_t header_sequence(std::uint64_t header) {
    return header & ((1ull << 40) - 1);
}
/// splitmix64 finaliser: the checksum is the sum of mix(header) over every item received.
inline std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
inline void write_header(std::byte* message, std::size_t size, std::uint64_t header) {
    std::memcpy(message, &header, 8);
    if (size >= 16) std::memcpy(message + size - 8, &header, 8);
}
inline std::uint64_t read_header(const std::byte* message) {
    std::uint64_t header;
    std::memcpy(&header, message, 8);
    return header;
}
inline bool trailer_matches(const std::byte* message, std::size_t size) {
    if (size < 16) return true;
    return std::memcmp(message, message + size - 8, 8) == 0;
}

// ---- the transport interface ---------------------------------------------------------------
enum class Role { producer, consumer };

/// One process's (or thread's) end of a channel. put/get block; failures throw.
class Endpoint {
  public:
    virtual ~Endpoint() = default;
    virtual void put(const std::byte* message, std::size_t size) = 0;
    /// Receives one message into `buffer` (at least the run's payload size); returns its length.
    virtual std::size_t get(std::byte* buffer, std::size_t buffer_size) = 0;
    /// True if the transport counts unfinished tasks itself (JoinableQueue); otherwise the
    /// harness emulates task_done()/join() with a shared counter and a futex.
    virtual bool native_task_accounting() const { return false; }
    virtual void task_done() {}
    virtual void join() {}
};

/// A channel, made by the parent before fork(); children attach to it after fork() (by name
/// where the transport has names, else through what they inherited). Destroying it in the
/// parent removes what it created.
class Channel {
  public:
    virtual ~Channel() = default;
    virtual std::unique_ptr<Endpoint> attach(Role role, int index) = 0;
    /// Ends the run after every producer finished: by default one sentinel per consumer, sent
    /// from the calling process (the parent), as the notes do.
    virtual void stop_consumers(int consumers, std::size_t payload);
    /// Called in the parent once every worker of a throughput run is started: a transport
    /// whose end of stream is the close of every copy of the sending end (shuttle's Pipe)
    /// closes the parent's copies here.
    virtual void started() {}
    /// True if a sentinel can overtake data still in flight (no order across senders): the
    /// harness then sends the sentinels only once the consumers have received every item.
    virtual bool sentinel_may_overtake() const { return false; }
    /// False if the transport does not keep one producer's items in order for each consumer
    /// (the consumers then check count, checksum and message integrity only).
    virtual bool per_producer_order() const { return true; }
};

/// A peer: a transport measured side by side with the others.
class Peer {
  public:
    virtual ~Peer() = default;
    virtual std::string name() const = 0;
    /// Why this peer cannot run `spec` here (not installed, kernel limit, kind unsupported).
    virtual std::optional<std::string> skip_reason(const RunSpec& spec) const = 0;
    virtual Measurement run(const RunSpec& spec) = 0;
    /// Notes printed once under the tables (e.g. how a kernel limit was handled).
    virtual std::vector<std::string> notes() const { return {}; }
};

/// A peer whose runs the generic harness drives through Channel/Endpoint.
class ChannelPeer : public Peer {
  public:
    virtual std::unique_ptr<Channel> create(const RunSpec& spec) = 0;
    /// Threads in this process instead of forked processes (the in-process ceilings).
    virtual bool in_process() const { return false; }
    std::optional<std::string> skip_reason(const RunSpec& spec) const override;
    Measurement run(const RunSpec& spec) override;
    /// Kinds this peer takes part in (default: every channel kind).
    virtual std::optional<std::string> channel_skip_reason(const RunSpec&) const { return {}; }
};

/// A lock peer for notes-tickets: lock()/unlock() on an object the parent placed in shared
/// memory before fork().
class SharedLock {
  public:
    virtual ~SharedLock() = default;
    virtual void attach() {}
    virtual void lock() = 0;
    virtual void unlock() = 0;
};
class LockPeer : public Peer {
  public:
    virtual std::unique_ptr<SharedLock> create_lock() = 0;
    std::optional<std::string> skip_reason(const RunSpec& spec) const override;
    Measurement run(const RunSpec& spec) override;
};

/// Every peer compiled in, in table order (shuttle first).
std::vector<std::unique_ptr<Peer>> make_peers(const std::string& python_peer_script);

// Peer factories, one per source file.
std::unique_ptr<Peer> make_shuttle_peer();
std::unique_ptr<Peer> make_shuttle_lock_peer();
std::unique_ptr<Peer> make_shuttle_pipe_peer();
std::unique_ptr<Peer> make_boost_mq_peer();
std::unique_ptr<Peer> make_posix_mq_peer();
std::unique_ptr<Peer> make_pipe_peer();
std::unique_ptr<Peer> make_socketpair_peer();
std::unique_ptr<Peer> make_zmq_peer();
std::unique_ptr<Peer> make_python_peer(const std::string& script);
std::unique_ptr<Peer> make_lockfree_peer();
std::unique_ptr<Peer> make_atomic_queue_peer();
std::unique_ptr<Peer> make_moodycamel_peer();
std::vector<std::unique_ptr<Peer>> make_lock_peers();

}  // namespace shuttle::bench
