// The queue test suites' shared vocabulary: one item type, adapters that give Queue<Item> and
// ByteQueue one interface, every configuration (typed/byte x plain/joinable x named/anonymous x
// capacity), and a fixture whose children attach the way the configuration says.
#pragma once

#include <signal.h>

#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "counters_segment.hpp"
#include "shuttle/detail/os.hpp"
#include "shuttle/queue.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::NameGuard;
using test::run_child;
using test::sanitized;
using test::unique_name;

/// What every test sends: producer id + sequence number.
struct Item {
    uint64_t producer;
    uint64_t sequence;
    friend bool operator==(const Item&, const Item&) = default;
};

// ---- adapters: one interface over Queue<Item> and ByteQueue -----------------------------------

template <class Q>
constexpr bool is_byte_queue = std::is_same_v<Q, ByteQueue> || std::is_same_v<Q, JoinableByteQueue>;

constexpr std::size_t max_message = 96;

/// Byte messages vary in length (16..95 bytes) and carry a pattern derived from the item.
inline std::vector<std::byte> encode(const Item& item) {
    std::vector<std::byte> message(16 + (item.sequence * 7 + item.producer) % 80);
    std::memcpy(message.data(), &item, sizeof item);
    for (std::size_t i = 16; i < message.size(); ++i) {
        message[i] = static_cast<std::byte>(item.sequence + i);
    }
    return message;
}

inline std::optional<Item> decode(std::span<const std::byte> message) {
    Item item;
    if (message.size() < 16) return std::nullopt;
    std::memcpy(&item, message.data(), sizeof item);
    if (message.size() != 16 + (item.sequence * 7 + item.producer) % 80) return std::nullopt;
    for (std::size_t i = 16; i < message.size(); ++i) {
        if (message[i] != static_cast<std::byte>(item.sequence + i)) return std::nullopt;
    }
    return item;
}

template <class Q>
status put_until(Q& queue, const Item& item, steady_clock::time_point deadline) {
    if constexpr (is_byte_queue<Q>) {
        return queue.put_until(encode(item), deadline);
    } else {
        return queue.put_until(item, deadline);
    }
}

template <class Q>
status try_put(Q& queue, const Item& item) {
    if constexpr (is_byte_queue<Q>) {
        return queue.try_put(encode(item));
    } else {
        return queue.try_put(item);
    }
}

template <class Q>
status put(Q& queue, const Item& item) {
    return put_until(queue, item, no_deadline);
}

template <class Q>
result<Item> get_until(Q& queue, steady_clock::time_point deadline) {
    if constexpr (is_byte_queue<Q>) {
        std::array<std::byte, max_message> buffer;
        auto length = queue.get_until(buffer, deadline);
        if (!length) return length.error();
        auto item = decode(std::span(buffer.data(), *length));
        if (!item) throw std::runtime_error("corrupt message");
        return *item;
    } else {
        return queue.get_until(deadline);
    }
}

template <class Q>
result<Item> try_get(Q& queue) {
    if constexpr (is_byte_queue<Q>) {
        std::array<std::byte, max_message> buffer;
        auto length = queue.try_get(buffer);
        if (!length) return length.error();
        return *decode(std::span(buffer.data(), *length));
    } else {
        return queue.try_get();
    }
}

template <class Q>
result<Item> get(Q& queue) {
    return get_until(queue, no_deadline);
}

/// get_task() over both forms: the item and its task handle.
template <class Q>
result<std::pair<Item, TaskId>> get_task_until(Q& queue, steady_clock::time_point deadline) {
    if constexpr (is_byte_queue<Q>) {
        std::array<std::byte, max_message> buffer;
        auto task = queue.get_task_until(buffer, deadline);
        if (!task) return task.error();
        auto item = decode(std::span(buffer.data(), task->length));
        if (!item) throw std::runtime_error("corrupt message");
        return std::pair{*item, task->id};
    } else {
        auto task = queue.get_task_until(deadline);
        if (!task) return task.error();
        return std::pair{task->item, task->id};
    }
}

template <class Q>
result<std::pair<Item, TaskId>> get_task(Q& queue) {
    return get_task_until(queue, no_deadline);
}

template <class Q>
result<std::pair<Item, TaskId>> try_get_task(Q& queue) {
    if constexpr (is_byte_queue<Q>) {
        std::array<std::byte, max_message> buffer;
        auto task = queue.try_get_task(buffer);
        if (!task) return task.error();
        return std::pair{*decode(std::span(buffer.data(), task->length)), task->id};
    } else {
        auto task = queue.try_get_task();
        if (!task) return task.error();
        return std::pair{task->item, task->id};
    }
}

/// put_many / get_many over both forms: a vector of Items in, a vector of Items out.
template <class Q>
struct Batch {
    /// The byte form's packed buffer and lengths for `items`.
    struct Packed {
        std::vector<std::byte> bytes;
        std::vector<std::size_t> lengths;
    };
    static Packed pack(std::span<const Item> items) {
        Packed packed;
        for (const Item& item : items) {
            auto message = encode(item);
            packed.bytes.insert(packed.bytes.end(), message.begin(), message.end());
            packed.lengths.push_back(message.size());
        }
        return packed;
    }

    static result<std::size_t> try_put(Q& queue, std::span<const Item> items) {
        if constexpr (is_byte_queue<Q>) {
            Packed packed = pack(items);
            return queue.try_put_many(packed.bytes, packed.lengths);
        } else {
            return queue.try_put_many(items);
        }
    }
    static result<std::size_t> put_until(Q& queue, std::span<const Item> items,
                                         steady_clock::time_point deadline) {
        if constexpr (is_byte_queue<Q>) {
            Packed packed = pack(items);
            return queue.put_many_until(packed.bytes, packed.lengths, deadline);
        } else {
            return queue.put_many_until(items, deadline);
        }
    }
    static result<std::size_t> put(Q& queue, std::span<const Item> items) {
        if constexpr (is_byte_queue<Q>) {
            Packed packed = pack(items);
            return queue.put_many(packed.bytes, packed.lengths);
        } else {
            return queue.put_many(items);
        }
    }

    /// Up to `most` items: got.size() is the count; the error if none.
    static result<std::vector<Item>> get_until(Q& queue, std::size_t most,
                                               steady_clock::time_point deadline,
                                               bool wait = true) {
        std::vector<Item> got;
        if constexpr (is_byte_queue<Q>) {
            std::vector<std::byte> buffer(most * max_message);
            std::vector<std::size_t> lengths(most);
            auto count = wait ? queue.get_many_until(buffer, lengths, deadline)
                              : queue.try_get_many(buffer, lengths);
            if (!count) return count.error();
            std::size_t offset = 0;
            for (std::size_t i = 0; i < *count; ++i) {
                auto item = decode(std::span(buffer.data() + offset, lengths[i]));
                if (!item) throw std::runtime_error("corrupt message in a batch");
                got.push_back(*item);
                offset += lengths[i];
            }
        } else {
            got.resize(most);
            auto count = wait ? queue.get_many_until(got, deadline) : queue.try_get_many(got);
            if (!count) return count.error();
            got.resize(*count);
        }
        return got;
    }
    static result<std::vector<Item>> try_get(Q& queue, std::size_t most) {
        return get_until(queue, most, {}, false);
    }
};

inline std::vector<Item> items_of(uint64_t producer, uint64_t first, std::size_t count) {
    std::vector<Item> items;
    for (std::size_t i = 0; i < count; ++i) items.push_back({producer, first + i});
    return items;
}

template <class Q, bool Named, std::size_t Capacity>
struct Config {
    using Queue = Q;
    static constexpr bool named = Named;
    static constexpr std::size_t capacity = Capacity;
    static constexpr bool joinable =
        std::is_same_v<Q, JoinableQueue<Item>> || std::is_same_v<Q, JoinableByteQueue>;

    static Q make(const std::string& name, QueueOptions options = {}) {
        if constexpr (is_byte_queue<Q>) {
            return named ? Q::create(name, capacity, max_message, options)
                         : Q::anonymous(capacity, max_message, options);
        } else {
            return named ? Q::create(name, capacity, options) : Q::anonymous(capacity, options);
        }
    }
    /// The handle a forked child uses: attached by name if named, else the inherited one.
    static Q& in_child(Q& inherited, const std::string& name, std::optional<Q>& storage,
                       const QueueOptions& options = {}) {
        if constexpr (named) {
            storage.emplace(Q::open(name, options));
            return *storage;
        } else {
            (void)name;
            (void)options;
            return inherited;
        }
    }
};

template <class C, bool Redelivery = false>
class QueueTest : public ::testing::Test {
  protected:
    using Q = typename C::Queue;
    NameGuard name_{unique_name("q")};
    QueueOptions options_{.redelivery = Redelivery};
    Q queue_ = C::make(*name_, options_);
    /// Scratch shared memory for children to report through.
    Segment shared_ =
        Segment::create_anonymous(test::counters_info(1 << 12), test::counters_body_size, {});
    std::atomic<uint64_t>* flags_ = test::counters(shared_);

    /// Runs `body(queue)` in a child with the child's own handle.
    template <class F>
    Process spawn_user(F body) {
        Process process(
            [this, body] {
                std::optional<Q> storage;
                Q& queue = C::in_child(queue_, *name_, storage, options_);
                return body(queue);
            },
            ProcessOptions{.daemon = true});
        process.start();
        return process;
    }

    /// Runs `body(queue)` in a child that dies at the (skip+1)-th time it reaches kill point
    /// `point`; asserts it did.
    template <class F>
    pid_t die_at(const char* point, F body, uint64_t skip = 0) {
        Process child = spawn_user([point, body, skip](auto& q) {
            detail::arm_kill_point(point, skip);
            body(q);
            return 99;  // the kill point was not reached
        });
        EXPECT_TRUE(test::join_or_fail(child));
        EXPECT_EQ(child.exitcode(), -SIGKILL) << "never reached " << point;
        return child.pid();
    }

    void wait_until(auto condition, std::chrono::milliseconds limit = 10000ms) {
        auto deadline = steady_clock::now() + limit;
        while (!condition()) {
            ASSERT_LT(steady_clock::now(), deadline) << "condition never became true";
            std::this_thread::yield();
        }
    }
};

using Configurations = ::testing::Types<
    Config<Queue<Item>, false, 1>, Config<Queue<Item>, false, 10>, Config<Queue<Item>, false, 1024>,
    Config<Queue<Item>, true, 1>, Config<Queue<Item>, true, 10>, Config<Queue<Item>, true, 1024>,
    Config<JoinableQueue<Item>, false, 1>, Config<JoinableQueue<Item>, false, 10>,
    Config<JoinableQueue<Item>, false, 1024>, Config<JoinableQueue<Item>, true, 1>,
    Config<JoinableQueue<Item>, true, 10>, Config<JoinableQueue<Item>, true, 1024>,
    Config<ByteQueue, false, 1>, Config<ByteQueue, false, 10>, Config<ByteQueue, false, 1024>,
    Config<ByteQueue, true, 1>, Config<ByteQueue, true, 10>, Config<ByteQueue, true, 1024>,
    Config<JoinableByteQueue, false, 1>, Config<JoinableByteQueue, false, 10>,
    Config<JoinableByteQueue, false, 1024>, Config<JoinableByteQueue, true, 1>,
    Config<JoinableByteQueue, true, 10>, Config<JoinableByteQueue, true, 1024>>;

class ConfigNames {
  public:
    template <class C>
    static std::string GetName(int) {
        std::string kind = is_byte_queue<typename C::Queue> ? "Byte" : "Typed";
        if (C::joinable) kind += "Joinable";
        return kind + (C::named ? "Named" : "Anonymous") + std::to_string(C::capacity);
    }
};

}  // namespace
}  // namespace shuttle
