// The queue test suites' shared vocabulary: one item type, adapters that give Queue<Item> and
// ByteQueue one interface, every configuration (the queue type: typed/byte x plain/joinable; its
// shape: named/anonymous x capacity), and a fixture whose children attach the way it says.
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

/// A configuration's value half: named (children attach by name) or anonymous (children use the
/// inherited handle), and the capacity.
struct Shape {
    bool named;
    std::size_t capacity;
};

/// The shape of the running test, read back from its instantiation's prefix ("Named10",
/// "Anonymous1024"; see SHUTTLE_INSTANTIATE_FOR_SHAPES). gtest cannot parameterise a suite by a
/// type and a value at once; carrying the shape as a value keeps one compiled test body per
/// queue type instead of one per configuration (six times less to compile).
inline Shape current_shape() {
    const std::string suite =
        ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name();
    const std::string prefix = suite.substr(0, suite.find('/'));
    const bool named = prefix.starts_with("Named");
    const std::string digits = prefix.substr(named ? 5 : prefix.starts_with("Anonymous") ? 9 : 0);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
        throw std::logic_error("queue suite instantiated without a shape prefix: " + suite);
    }
    return {named, std::stoul(digits)};
}

/// A configuration's type half: the queue type.
template <class Q>
struct Config {
    using Queue = Q;
    static constexpr bool joinable =
        std::is_same_v<Q, JoinableQueue<Item>> || std::is_same_v<Q, JoinableByteQueue>;

    static Q make(const Shape& shape, const std::string& name, QueueOptions options = {}) {
        if constexpr (is_byte_queue<Q>) {
            return shape.named ? Q::create(name, shape.capacity, max_message, options)
                               : Q::anonymous(shape.capacity, max_message, options);
        } else {
            return shape.named ? Q::create(name, shape.capacity, options)
                               : Q::anonymous(shape.capacity, options);
        }
    }
    /// The handle a forked child uses: attached by name if named, else the inherited one.
    static Q& in_child(const Shape& shape, Q& inherited, const std::string& name,
                       std::optional<Q>& storage, const QueueOptions& options = {}) {
        if (!shape.named) return inherited;
        storage.emplace(Q::open(name, options));
        return *storage;
    }
};

template <class C, bool Redelivery = false>
class QueueTest : public ::testing::Test {
  protected:
    using Q = typename C::Queue;
    const Shape shape_ = current_shape();
    NameGuard name_{unique_name("q")};
    QueueOptions options_{.redelivery = Redelivery};
    Q queue_ = C::make(shape_, *name_, options_);
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
                Q& queue = C::in_child(shape_, queue_, *name_, storage, options_);
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

using QueueTypes = ::testing::Types<Config<Queue<Item>>, Config<JoinableQueue<Item>>,
                                    Config<ByteQueue>, Config<JoinableByteQueue>>;
using JoinableQueueTypes = ::testing::Types<Config<JoinableQueue<Item>>, Config<JoinableByteQueue>>;

class QueueTypeNames {
  public:
    template <class C>
    static std::string GetName(int) {
        std::string kind = is_byte_queue<typename C::Queue> ? "Byte" : "Typed";
        return C::joinable ? kind + "Joinable" : kind;
    }
};

// Instantiates the typed-parameterised `suite` over `types` once per listed shape; the prefix
// names the shape (current_shape() reads it back).
#define SHUTTLE_INSTANTIATE_FOR_SHAPE(shape, suite, types) \
    INSTANTIATE_TYPED_TEST_SUITE_P(shape, suite, types, QueueTypeNames)
// Every shape: named and anonymous, capacity 1, 10 and 1024.
#define SHUTTLE_INSTANTIATE_FOR_EVERY_SHAPE(suite, types)       \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Anonymous1, suite, types);    \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Anonymous10, suite, types);   \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Anonymous1024, suite, types); \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Named1, suite, types);        \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Named10, suite, types);       \
    SHUTTLE_INSTANTIATE_FOR_SHAPE(Named1024, suite, types)

}  // namespace
}  // namespace shuttle
