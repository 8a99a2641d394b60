// detail::NamedObject with options that describe the object (as a queue's do: open() checks
// them) and an open_or_create() that checks what it finds: the forms the sync primitives do not
// use, on a small object of counters.
#include <unistd.h>

#include <string_view>

#include "counters_segment.hpp"
#include "shuttle/detail/named_object.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

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

template <class F>
errc error_of(F body) {
    try {
        body();
    } catch (const Error& error) {
        return error.condition();
    }
    return errc::ok;
}

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

}  // namespace
}  // namespace shuttle
