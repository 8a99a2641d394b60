#include <gtest/gtest.h>

#include "shuttle/error.hpp"
#include "shuttle/queue.hpp"

namespace shuttle {
namespace {

TEST(Error, ResultCarriesValueOrCode) {
    result<int> good = 5;
    ASSERT_TRUE(good);
    EXPECT_EQ(*good, 5);
    EXPECT_EQ(good.value(), 5);
    result<int> bad = errc::empty;
    EXPECT_FALSE(bad);
    EXPECT_EQ(bad.error(), errc::empty);
    EXPECT_THROW(bad.value(), Empty);
}

TEST(Error, ExceptionsMatchTheirCodes) {
    EXPECT_THROW(throw_error(errc::full), Full);
    EXPECT_THROW(throw_error(errc::eof), EOFError);
    EXPECT_THROW(throw_error(errc::closed), Closed);
    try {
        throw_error(errc::not_found, "segment 'x'");
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::not_found);
        EXPECT_EQ(error.code(), make_error_code(errc::not_found));
        EXPECT_NE(std::string(error.what()).find("segment 'x'"), std::string::npos);
        EXPECT_STREQ(error.code().category().name(), "shuttle");
    }
}

TEST(Error, StatusAndErrorCodeInterop) {
    status ok;
    EXPECT_TRUE(ok);
    status closed = errc::closed;
    EXPECT_EQ(closed, errc::closed);
    EXPECT_THROW(closed.value(), Closed);
    std::error_code code = errc::timeout;  // is_error_code_enum
    EXPECT_EQ(code.message(), "timed out");
}

// A message reads as a sentence, never ": full": the queue's *_nowait name their subject, and an
// error thrown without context is its code's message alone.
TEST(Error, MessagesNameTheirSubject) {
    const auto what_of = [](auto&& action) -> std::string {
        try {
            action();
        } catch (const Error& error) {
            return error.what();
        }
        return "(nothing thrown)";
    };
    EXPECT_EQ(what_of([] { throw_error(errc::full); }), "full");
    EXPECT_EQ(what_of([] { throw_error(errc::not_found, "segment 'x'"); }),
              "segment 'x': no such segment");
    EXPECT_EQ(what_of([] { throw_error_about("queue", errc::closed); }), "queue is closed");
    EXPECT_EQ(what_of([] { throw_error_about("queue", errc::timeout); }), "queue: timed out");

    auto queue = Queue<int>::anonymous(1);
    EXPECT_EQ(what_of([&] { (void)queue.get_nowait(); }), "queue is empty");
    queue.put_nowait(1);
    EXPECT_THROW(queue.put_nowait(2), Full);
    EXPECT_EQ(what_of([&] { queue.put_nowait(2); }), "queue is full");

    auto bytes = ByteQueue::anonymous(1, 16);
    std::byte buffer[16];
    EXPECT_THROW((void)bytes.get_nowait(buffer), Empty);
    EXPECT_EQ(what_of([&] { (void)bytes.get_nowait(buffer); }), "queue is empty");
    bytes.put_nowait("x");
    EXPECT_EQ(what_of([&] { bytes.put_nowait("y"); }), "queue is full");
    EXPECT_EQ(bytes.get_nowait(buffer), 1u);
}

}  // namespace
}  // namespace shuttle
