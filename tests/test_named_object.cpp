// detail::NamedObject, the factory set of every shared object: what the sync primitives gain
// from it (open_fd; open_or_create's parameter check on an existing name), and the forms they
// do not use, on a small object of counters: options that describe the object (as a queue's
// do: open() checks them) and an open_or_create() that checks what it finds.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <string_view>

#include "counters_segment.hpp"
#include "shuttle/barrier.hpp"
#include "shuttle/detail/named_object.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using test::error_of;
using test::NameGuard;
using test::run_child;

struct CounterOptions {
    uint64_t type_tag = 0x1234;
    unsigned mode = 0600;
    bool remove_on_destroy = false;
};

class CountersHandle {
  public:
    std::atomic<uint64_t>& operator[](uint64_t index) const {
        return test::counters(segment_)[index];
    }
    uint64_t capacity() const noexcept { return segment_.info().capacity; }
    int fd() const noexcept { return segment_.fd(); }

  protected:
    CountersHandle() = default;
    explicit CountersHandle(Segment segment) : segment_(std::move(segment)) {}

    Segment segment_;
};

class Counters : public detail::NamedObject<Counters, CountersHandle, CounterOptions, uint64_t> {
  public:
    Counters() = default;

  private:
    friend NamedObject;
    explicit Counters(Segment segment) : NamedObject(std::move(segment)) {}

    static Segment make_segment(std::string_view name, uint64_t capacity,
                                const CounterOptions& options) {
        SegmentInfo info = test::counters_info(capacity);
        info.type_tag = options.type_tag;
        auto init = [](Segment& segment) { test::counters(segment)[0].store(42); };
        if (name.empty()) return Segment::create_anonymous(info, test::counters_body_size, init);
        return Segment::create(name, info, test::counters_body_size, init,
                               {options.mode, options.remove_on_destroy});
    }
    static SegmentExpectation expectation(const CounterOptions& options) {
        SegmentExpectation expected = test::counters_expectation();
        expected.type_tag = options.type_tag;
        return expected;
    }
    static void check_existing(const Counters& existing, uint64_t capacity) {
        if (existing.capacity() != capacity) {
            throw Error(errc::capacity_mismatch, "counters exist with another capacity");
        }
    }
};

TEST(NamedObject, OptionsThatDescribeTheObjectAreCheckedOnOpen) {
    NameGuard name(test::unique_name("counters"));
    Counters created = Counters::create(*name, 4, {.type_tag = 7});
    EXPECT_EQ(error_of([&] { Counters::open(*name); }), errc::type_mismatch);
    EXPECT_EQ(error_of([&] { Counters::open_or_create(*name, 4); }), errc::type_mismatch);
    // Another process attaches with the same options and sees the creator's object.
    EXPECT_EQ(run_child([&] {
                  Counters opened = Counters::open(*name, {.type_tag = 7});
                  return opened[0].fetch_add(1) == 42 ? 0 : 1;
              }),
              0);
    EXPECT_EQ(created[0].load(), 43u);
}

TEST(NamedObject, OpenOrCreateCreatesOnceThenChecksWhatItFinds) {
    NameGuard name(test::unique_name("counters"));
    EXPECT_EQ(run_child([&] {
                  Counters counters = Counters::open_or_create(*name, 4, {.type_tag = 7});
                  counters[1].store(5);
                  return 0;
              }),
              0);
    Counters found = Counters::open_or_create(*name, 4, {.type_tag = 7});
    EXPECT_EQ(found[1].load(), 5u);
    EXPECT_EQ(error_of([&] { Counters::open_or_create(*name, 8, {.type_tag = 7}); }),
              errc::capacity_mismatch);
}

TEST(NamedObject, AnonymousTakesTheOptionsAndOpenFdChecksThem) {
    Counters anonymous = Counters::anonymous(4, {.type_tag = 7});
    const int refused = ::dup(anonymous.fd());
    EXPECT_EQ(error_of([&] { Counters::open_fd(refused); }), errc::type_mismatch);
    ::close(refused);
    Counters attached = Counters::open_fd(::dup(anonymous.fd()), {.type_tag = 7});
    attached[2].store(9);
    EXPECT_EQ(anonymous[2].load(), 9u);
}

// An anonymous primitive's descriptor, handed to an exec'd program, attaches it there.
TEST(NamedObject, ExecedProgramAttachesAnEventByDescriptor) {
    Event event = Event::anonymous();
    event.segment().set_inheritable(true);
    const std::string fd = std::to_string(event.segment().fd());
    EXPECT_EQ(run_child([&] {
                  execl(SHUTTLE_TEST_HELPER, SHUTTLE_TEST_HELPER, "event-set", fd.c_str(),
                        static_cast<char*>(nullptr));
                  return 127;
              }),
              0);
    EXPECT_TRUE(event.is_set());
}

// open_fd checks what open checks, and leaves the descriptor to the caller when it refuses.
TEST(NamedObject, OpenFdChecksTheKind) {
    Lock lock = Lock::anonymous();
    const int lock_fd = ::dup(lock.segment().fd());
    EXPECT_EQ(error_of([&] { Event::open_fd(lock_fd); }), errc::kind_mismatch);
    EXPECT_GE(::fcntl(lock_fd, F_GETFD), 0) << "a refused descriptor was closed";
    ::close(lock_fd);

    Semaphore plain = Semaphore::anonymous(1);
    const int plain_fd = ::dup(plain.segment().fd());
    EXPECT_EQ(error_of([&] { BoundedSemaphore::open_fd(plain_fd); }), errc::kind_mismatch);
    ::close(plain_fd);

    BoundedSemaphore bounded = BoundedSemaphore::anonymous(3);
    Semaphore any = Semaphore::open_fd(::dup(bounded.segment().fd()));
    EXPECT_EQ(any.bound(), 3u);
    EXPECT_TRUE(any.try_acquire());
    EXPECT_EQ(bounded.value(), 2u);  // one semaphore behind both handles
}

// open_or_create refuses parameters create would refuse, even when the name exists; otherwise
// it attaches what is there (the parameters are used only to create).
TEST(NamedObject, OpenOrCreateChecksItsParametersEvenWhenTheNameExists) {
    NameGuard name(test::unique_name("barrier"));
    Barrier barrier = Barrier::create(*name, 2);
    EXPECT_EQ(error_of([&] { Barrier::open_or_create(*name, 0); }), errc::invalid_argument);
    EXPECT_EQ(Barrier::open_or_create(*name, 5).parties(), 2u);
    EXPECT_EQ(error_of([&] { Barrier::create("", 2); }), errc::invalid_name);
}

}  // namespace
}  // namespace shuttle
