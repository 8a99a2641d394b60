#include <gtest/gtest.h>

#include "shuttle/error.hpp"

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
    EXPECT_THROW(throw_error(errc::shut_down), ShutDown);
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

}  // namespace
}  // namespace shuttle
