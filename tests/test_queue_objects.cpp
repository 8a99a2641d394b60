// Queue<T> / JoinableQueue<T> of T that are not trivially copyable (strings, vectors, variants,
// cereal types) as encoded messages, across real processes: delivery, too_large losing nothing,
// the type fingerprint on open, bytes that are not a T, task accounting; and the notes' mixed
// queue example.
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "shuttle/pipe.hpp"
#include "shuttle/queue.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using Mixed = std::variant<int, std::string, std::vector<int>>;
static_assert(!std::is_trivially_copyable_v<std::string>);

TEST(QueueObjects, MixedItemsCrossProcessesInOrder) {
    auto queue = Queue<Mixed>::anonymous(8, 128);
    EXPECT_EQ(queue.max_message_size(), 128u);
    EXPECT_EQ(test::run_child([&] {
                  bool ok = queue.put(1).ok() && queue.put(std::string("abc")).ok() &&
                            queue.put(std::vector<int>{4, 5, 6}).ok();
                  return ok ? 0 : 1;
              }),
              0);
    EXPECT_EQ(queue.get().value(), Mixed(1));
    EXPECT_EQ(queue.get().value(), Mixed(std::string("abc")));
    Mixed reused;
    ASSERT_TRUE(queue.get(reused));
    EXPECT_EQ(reused, Mixed(std::vector<int>{4, 5, 6}));
    EXPECT_EQ(queue.try_get().error(), errc::empty);
}

TEST(QueueObjects, TooLargeIsRefusedAndNothingIsLost) {
    auto queue = Queue<std::string>::anonymous(4, 64);
    ASSERT_TRUE(queue.put("first"));
    EXPECT_EQ(queue.put(std::string(64, 'x')), errc::too_large);  // 65 bytes encoded
    EXPECT_EQ(queue.try_put(std::string(100, 'x')), errc::too_large);
    EXPECT_THROW(queue.put_nowait(std::string(100, 'x')), Error);
    ASSERT_TRUE(queue.put(std::string(63, 'y')));  // exactly 64 bytes encoded
    EXPECT_EQ(queue.size(), 2u);
    EXPECT_EQ(queue.get().value(), "first");
    EXPECT_EQ(queue.get().value(), std::string(63, 'y'));
}

TEST(QueueObjects, OpenChecksTheCodecFingerprint) {
    test::NameGuard name(test::unique_name("objq"));
    auto queue = Queue<std::string>::create(*name, 4);
    EXPECT_NO_THROW(Queue<std::string>::open(*name));
    for (auto open : std::vector<std::function<void()>>{
             [&] { Queue<std::vector<char>>::open(*name); },
             [&] { Queue<Mixed>::open(*name); },
             [&] { ByteQueue::open(*name); },
             [&] { JoinableQueue<std::string>::open(*name); },
             [&] { Queue<int>::open(*name); },
         }) {
        try {
            open();
            ADD_FAILURE() << "opened as another type";
        } catch (const Error& error) {
            EXPECT_TRUE(error.condition() == errc::type_mismatch ||
                        error.condition() == errc::kind_mismatch)
                << error.what();
        }
    }
}

// Bytes that are not a T (put by a ByteQueue that forged the tag) are an error, consumed, and
// the queue goes on.
TEST(QueueObjects, AMessageThatIsNotATIsBadMessageNotUndefinedBehaviour) {
    test::NameGuard name(test::unique_name("objq"));
    auto queue = Queue<std::string>::create(*name, 4, 32);
    auto forger = ByteQueue::open(*name, {.type_tag = type_fingerprint<std::string>()});
    const std::byte lying[] = {std::byte{0x7f}, std::byte{'a'}};  // 127 characters claimed
    ASSERT_TRUE(forger.put(std::span<const std::byte>(lying)));
    ASSERT_TRUE(queue.put("fine"));
    EXPECT_EQ(queue.get().error(), errc::bad_message);
    EXPECT_EQ(queue.get().value(), "fine");
}

TEST(QueueObjects, StringsFromTwoProducersToTwoConsumersExactlyOnce) {
    const int items = test::sanitized() ? 500 : 5000;
    auto queue = Queue<std::string>::anonymous(64);
    auto results = Queue<int>::anonymous(4);
    std::vector<Process> children;
    for (int producer = 0; producer < 2; ++producer) {
        children.push_back(spawn(
            [&, producer] {
                for (int index = 0; index < items; ++index) {
                    if (!queue.put(std::to_string(producer) + ":" + std::to_string(index) + ":" +
                                   std::string(static_cast<std::size_t>(index % 50), '.'))) {
                        return 1;
                    }
                }
                return 0;
            },
            {.daemon = true}));
    }
    for (int consumer = 0; consumer < 2; ++consumer) {
        children.push_back(spawn(
            [&] {
                int got = 0;
                std::string item;
                int next[2] = {0, 0};  // per producer, in order
                while (queue.get(item)) {
                    if (item == "end") break;
                    const int producer = item[0] - '0';
                    const int index = std::stoi(item.substr(2));
                    if (index < next[producer]) return 2;
                    next[producer] = index + 1;
                    ++got;
                }
                return results.put(got).ok() ? 0 : 1;
            },
            {.daemon = true}));
    }
    ASSERT_TRUE(test::join_and_expect_exit(children[0]));
    ASSERT_TRUE(test::join_and_expect_exit(children[1]));
    ASSERT_TRUE(queue.put("end"));
    ASSERT_TRUE(queue.put("end"));
    ASSERT_TRUE(test::join_and_expect_exit(children[2]));
    ASSERT_TRUE(test::join_and_expect_exit(children[3]));
    EXPECT_EQ(results.get().value() + results.get().value(), 2 * items);
}

TEST(QueueObjects, JoinableQueueOfVectorsCountsTasks) {
    auto queue = JoinableQueue<std::vector<int>>::anonymous(8);
    Process consumer(
        [&] {
            for (int index = 0; index < 3; ++index) {
                auto item = queue.get();
                if (!item || item->size() != static_cast<std::size_t>(index)) return 1;
                if (!queue.task_done()) return 2;
            }
            return 0;
        },
        {.daemon = true});
    consumer.start();
    for (int index = 0; index < 3; ++index) {
        ASSERT_TRUE(queue.put(std::vector<int>(static_cast<std::size_t>(index), 7)));
    }
    EXPECT_TRUE(queue.join_for(std::chrono::seconds(20)));
    ASSERT_TRUE(test::join_and_expect_exit(consumer));
}

TEST(QueueObjects, RedeliveryGivesATaskWithTheDecodedItem) {
    auto queue = JoinableQueue<std::string>::anonymous(4, 64, {.redelivery = true});
    ASSERT_TRUE(queue.put("job"));
    auto task = queue.get_task();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->item, "job");
    EXPECT_TRUE(queue.task_done(*task));
}

// The pipe's send_value / recv_value carry the same objects (conn.send([4, 5, 6])).
TEST(QueueObjects, PipeCarriesObjectsAndRefusesBytesThatAreNotOne) {
    auto [parent_end, child_end] = Pipe();
    EXPECT_EQ(test::run_child([&] {
                  bool ok = child_end.send_value(Mixed(std::vector<int>{4, 5, 6})).ok() &&
                            child_end.send_value(std::string("abc")).ok() &&
                            child_end.send("\x7f").ok();  // not a std::vector<int>
                  return ok ? 0 : 1;
              }),
              0);
    EXPECT_EQ(parent_end.recv_value<Mixed>().value(), Mixed(std::vector<int>{4, 5, 6}));
    EXPECT_EQ(parent_end.recv_value<std::string>().value(), "abc");
    EXPECT_EQ(parent_end.recv_value<std::vector<int>>().error(), errc::bad_message);
}

TEST(QueueObjects, MixedQueueExamplePrintsWhatTheNotesPrint) {
    test::ProgramOutput run =
        test::run_program(std::string(SHUTTLE_EXAMPLES_DIR) + "/notes_mixed_queue", {});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output, "1\nabc\n[4, 5, 6]\n");
}

}  // namespace
}  // namespace shuttle
