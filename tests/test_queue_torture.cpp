// The torture test: hundreds of SIGKILLs (random, and at every put/get/task_done window) on
// producers and consumers of one queue, over named/anonymous x capacity 10/1024 x typed/byte x
// plain/joinable. No survivor may hang; every accepted item is received exactly once, or is
// journaled as lost, or died in the hands of a killed consumer; per-producer order holds.
#include <fmt/format.h>

#include "torture.hpp"

namespace shuttle {
namespace {

using TortureConfigurations = ::testing::Types<
    Config<Queue<Item>, false, 10>, Config<Queue<Item>, false, 1024>, Config<Queue<Item>, true, 10>,
    Config<Queue<Item>, true, 1024>, Config<JoinableQueue<Item>, false, 10>,
    Config<JoinableQueue<Item>, false, 1024>, Config<JoinableQueue<Item>, true, 10>,
    Config<JoinableQueue<Item>, true, 1024>, Config<ByteQueue, false, 10>,
    Config<ByteQueue, false, 1024>, Config<ByteQueue, true, 10>, Config<ByteQueue, true, 1024>,
    Config<JoinableByteQueue, false, 10>, Config<JoinableByteQueue, false, 1024>,
    Config<JoinableByteQueue, true, 10>, Config<JoinableByteQueue, true, 1024>>;

template <class C>
class TortureTest : public QueueTest<C> {};
TYPED_TEST_SUITE(TortureTest, TortureConfigurations, ConfigNames);

// At-least-once redelivery (QueueOptions::redelivery): consumers use get_task() and
// task_done(task), and the kill windows include the lease's.
using RedeliveryTortureConfigurations =
    ::testing::Types<Config<JoinableQueue<Item>, false, 10>,
                     Config<JoinableQueue<Item>, true, 1024>, Config<JoinableByteQueue, true, 10>,
                     Config<JoinableByteQueue, false, 1024>>;
template <class C>
class RedeliveryTortureTest : public QueueTest<C, true> {};
TYPED_TEST_SUITE(RedeliveryTortureTest, RedeliveryTortureConfigurations, ConfigNames);

TYPED_TEST(TortureTest, SurvivesHundredsOfKills) {
    torture<TypeParam>(this->queue_, *this->name_, false);
}

TYPED_TEST(RedeliveryTortureTest, RedeliversEveryTaskOfAKilledHolder) {
    torture<TypeParam>(this->queue_, *this->name_, true);
}

}  // namespace
}  // namespace shuttle
