// The codec: round trips of every built-in type, cereal and shuttle::codec user types, exact
// sizes, caller buffers without allocation, fingerprints, and the refusal of bytes that are not
// an encoding (the fuzz-like cases are in test_codec_fuzz.cpp).
#include <gtest/gtest.h>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstring>
#include <limits>

#include "codec_types.hpp"
#include "shuttle/codec.hpp"

namespace shuttle::test {
/// Allocations the calling thread made so far (test_codec_allocations.cpp).
std::size_t allocation_count() noexcept;
}  // namespace shuttle::test

namespace shuttle {
namespace {

using test_codec::Color;
using test_codec::Money;
using test_codec::Order;
using test_codec::Point;

std::vector<std::byte> bytes_of(std::initializer_list<int> values) {
    std::vector<std::byte> bytes;
    for (int value : values) bytes.push_back(static_cast<std::byte>(value));
    return bytes;
}

/// Encodes `value` both ways, checks the sizes agree, decodes it back and compares.
template <class T>
void expect_round_trip(const T& value) {
    SCOPED_TRACE(testing::PrintToString(value));
    const std::vector<std::byte> bytes = encode(value);
    EXPECT_EQ(bytes.size(), encoded_size(value));
    std::vector<std::byte> buffer(bytes.size() + 8);
    result<std::size_t> written = encode(value, std::span<std::byte>(buffer));
    ASSERT_TRUE(written) << make_error_code(written.error()).message();
    EXPECT_EQ(*written, bytes.size());
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), buffer.begin()));
    result<T> decoded = decode<T>(bytes);
    ASSERT_TRUE(decoded) << make_error_code(decoded.error()).message();
    EXPECT_EQ(*decoded, value);
}

TEST(Codec, TriviallyCopyableTypesRoundTripAsTheirBytes) {
    expect_round_trip(42);
    expect_round_trip(-1.5);
    expect_round_trip(std::numeric_limits<uint64_t>::max());
    expect_round_trip('x');
    expect_round_trip(Color::blue);
    expect_round_trip(Point{3, -4});
    EXPECT_EQ(encoded_size(Point{1, 2}), sizeof(Point));
    static_assert(bytewise_encodable<int> && bytewise_encodable<Point>);
    static_assert(!bytewise_encodable<bool> && !bytewise_encodable<std::optional<int>>);
    int value = 0x01020304;
    EXPECT_EQ(encode(value), bytes_of({4, 3, 2, 1}));  // little-endian, no framing
}

TEST(Codec, BoolIsOneCheckedByte) {
    expect_round_trip(true);
    expect_round_trip(false);
    EXPECT_EQ(encode(true), bytes_of({1}));
    EXPECT_EQ(decode<bool>(bytes_of({2})).error(), errc::bad_message);
}

TEST(Codec, StringsRoundTrip) {
    expect_round_trip(std::string());
    expect_round_trip(std::string("abc"));
    expect_round_trip(std::string(64, 'q'));
    expect_round_trip(std::string(100000, 'z'));
    expect_round_trip(std::string("nul\0inside", 10));
    expect_round_trip(std::u16string(u"h\u00e9llo"));
    EXPECT_EQ(encode(std::string("ab")), bytes_of({2, 'a', 'b'}));
    EXPECT_EQ(encoded_size(std::string(200, 'a')), 202u);  // a 2-byte varint length
}

TEST(Codec, ContainersRoundTrip) {
    expect_round_trip(std::vector<int>{});
    expect_round_trip(std::vector<int>{4, 5, 6});
    expect_round_trip(std::vector<std::string>{"a", "", "ccc"});
    expect_round_trip(std::vector<bool>{true, false, true});
    expect_round_trip(std::array<int, 3>{7, 8, 9});
    expect_round_trip(std::array<std::string, 2>{"x", "yz"});
    expect_round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
    expect_round_trip(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
    EXPECT_EQ(encode(std::vector<int16_t>{1, 2}), bytes_of({2, 1, 0, 2, 0}));
}

TEST(Codec, OptionalPairTupleVariantRoundTrip) {
    expect_round_trip(std::optional<int>());
    expect_round_trip(std::optional<std::string>("set"));
    expect_round_trip(std::pair<int, std::string>(1, "one"));
    expect_round_trip(std::tuple<bool, std::string, double>(true, "t", 2.5));
    expect_round_trip(std::tuple<>());
    using Mixed = std::variant<int, std::string, std::vector<int>>;  // the notes' mixed queue
    expect_round_trip(Mixed(1));
    expect_round_trip(Mixed(std::string("abc")));
    expect_round_trip(Mixed(std::vector<int>{4, 5, 6}));
    EXPECT_EQ(encode(Mixed(std::string("ab"))), bytes_of({1, 2, 'a', 'b'}));
}

TEST(Codec, NestedTypesRoundTrip) {
    using Nested = std::vector<
        std::map<std::string, std::optional<std::vector<std::variant<int, std::string>>>>>;
    Nested value(2);
    value[0]["empty"] = std::nullopt;
    value[0]["full"] = std::vector<std::variant<int, std::string>>{1, "two", 3};
    value[1]["x"] = std::vector<std::variant<int, std::string>>{};
    expect_round_trip(value);
    expect_round_trip(std::pair<Point, std::vector<std::pair<std::string, Color>>>(
        {1, 2}, {{"red", Color::red}, {"blue", Color::blue}}));
}

TEST(Codec, CerealTypesRoundTripAlsoInsideBuiltIns) {
    Order order{"widget", 3, {1.5, 2.5}, true};
    expect_round_trip(order);
    expect_round_trip(std::vector<Order>{order, Order{"", 0, {}, false}});
    expect_round_trip(std::variant<int, Order>(order));
    // The 4-byte frame, then cereal's fields: a varint length and the name's bytes first.
    const std::vector<std::byte> bytes = encode(order);
    EXPECT_EQ(bytes[4], std::byte{6});
    EXPECT_EQ(std::memcmp(&bytes[5], "widget", 6), 0);
}

TEST(Codec, UserCodecTypesRoundTrip) {
    expect_round_trip(Money{"EUR", 1250});
    expect_round_trip(std::map<std::string, Money>{{"a", Money{"USD", 1}}});
    static_assert(detail::has_user_codec<Money> && encodable<Money>);
}

TEST(Codec, DecodingIntoAValueReusesIt) {
    std::string text;
    text.reserve(100);
    const char* storage = text.data();
    ASSERT_TRUE(decode(encode(std::string(64, 'a')), text));
    EXPECT_EQ(text, std::string(64, 'a'));
    EXPECT_EQ(text.data(), storage);
}

TEST(Codec, EncodingIntoACallerBufferAllocatesNothing) {
    std::byte buffer[256];
    const std::string text(64, 's');
    const std::vector<int> numbers{1, 2, 3};
    const std::variant<int, std::string, std::vector<int>> mixed(text);
    const std::size_t before = test::allocation_count();
    ASSERT_TRUE(encode(12345, buffer));
    ASSERT_TRUE(encode(Point{1, 2}, buffer));
    ASSERT_TRUE(encode(text, buffer));
    ASSERT_TRUE(encode(numbers, buffer));
    ASSERT_TRUE(encode(mixed, buffer));
    EXPECT_EQ(encoded_size(text) + encoded_size(mixed), 65u + 66u);
    EXPECT_EQ(test::allocation_count(), before);
    // The counter counts: a decode into a fresh string of 64 bytes allocates once.
    ASSERT_TRUE(encode(text, buffer));
    ASSERT_TRUE(decode<std::string>(std::span<const std::byte>(buffer, 65)));
    EXPECT_GE(test::allocation_count(), before + 1);
}

TEST(Codec, ATooSmallBufferIsRefused) {
    const std::string text(64, 's');
    std::vector<std::byte> buffer(encoded_size(text));
    EXPECT_TRUE(encode(text, std::span<std::byte>(buffer)));
    buffer.pop_back();
    EXPECT_EQ(encode(text, std::span<std::byte>(buffer)).error(), errc::buffer_too_small);
    EXPECT_EQ(encode(Order{"o", 1, {}, false}, std::span<std::byte>()).error(),
              errc::buffer_too_small);
    EXPECT_EQ(encode(7, std::span<std::byte>(buffer.data(), 3)).error(), errc::buffer_too_small);
}

TEST(Codec, BytesThatAreNotAnEncodingAreRefused) {
    EXPECT_EQ(decode<int>(bytes_of({1, 2, 3})).error(), errc::bad_message);        // short
    EXPECT_EQ(decode<int>(bytes_of({1, 2, 3, 4, 5})).error(), errc::bad_message);  // trailing
    EXPECT_EQ(decode<std::string>(bytes_of({3, 'a', 'b'})).error(), errc::bad_message);
    EXPECT_EQ(decode<std::string>(bytes_of({})).error(), errc::bad_message);
    EXPECT_EQ(decode<std::string>(bytes_of({0x80, 0})).error(), errc::bad_message);  // overlong
    EXPECT_EQ(decode<std::optional<int>>(bytes_of({2, 0, 0, 0, 0})).error(), errc::bad_message);
    using Mixed = std::variant<int, std::string, std::vector<int>>;
    EXPECT_EQ(decode<Mixed>(bytes_of({3, 0})).error(), errc::bad_message);  // no alternative 3
    EXPECT_EQ((decode<std::map<int8_t, int8_t>>(bytes_of({2, 1, 5, 1, 6})).error()),
              errc::bad_message);  // key 1 twice
    EXPECT_EQ((decode<std::map<int8_t, int8_t>>(bytes_of({2, 2, 5, 1, 6})).error()),
              errc::bad_message);  // keys out of order: a std::map has one encoding
    EXPECT_TRUE((decode<std::unordered_map<int8_t, int8_t>>(bytes_of({2, 2, 5, 1, 6}))));
    // A varint of ten bytes whose value does not fit 64 bits.
    EXPECT_EQ(decode<std::vector<uint8_t>>(
                  bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}))
                  .error(),
              errc::bad_message);
}

TEST(Codec, AForgedCountAllocatesNothingBeyondTheMessage) {
    // 2^62 strings claimed by 9 bytes: refused before any allocation.
    std::vector<std::byte> varint(10);
    Writer writer(varint);
    writer.write_varint(uint64_t{1} << 62);
    varint.resize(writer.size());
    const std::size_t before = test::allocation_count();
    EXPECT_EQ(decode<std::vector<std::string>>(varint).error(), errc::bad_message);
    EXPECT_EQ(decode<std::string>(varint).error(), errc::bad_message);
    EXPECT_EQ(test::allocation_count(), before);
}

TEST(Codec, UserTypesThatDoNotDecodeAreRefused) {
    std::vector<std::byte> bytes = encode(Order{"abc", 1, {2.0}, true});
    // The bool is the last byte of the frame: 2 is not a bool.
    bytes.back() = std::byte{2};
    EXPECT_EQ(decode<Order>(bytes).error(), errc::bad_message);
    // A frame longer than the message.
    bytes = encode(Order{"abc", 1, {}, false});
    bytes[0] = std::byte{100};
    EXPECT_EQ(decode<Order>(bytes).error(), errc::bad_message);
    // A user decoder that says no, or throws, or leaves bytes of its frame unread.
    EXPECT_EQ(decode<Money>(encode(Money{"", 5})).error(), errc::bad_message);     // no currency
    EXPECT_EQ(decode<Money>(encode(Money{"XXX", 5})).error(), errc::bad_message);  // throws
    bytes = encode(Money{"EUR", 5});
    bytes.push_back(std::byte{0});  // one byte more in the frame, which the decoder leaves
    uint32_t frame;
    std::memcpy(&frame, bytes.data(), 4);
    ++frame;
    std::memcpy(bytes.data(), &frame, 4);
    EXPECT_EQ(decode<Money>(bytes).error(), errc::bad_message);
}

TEST(Codec, FingerprintsFollowTheStructure) {
    static_assert(type_fingerprint<int>() == type_fingerprint<int32_t>());
    static_assert(type_fingerprint<int>() != type_fingerprint<unsigned>());
    static_assert(type_fingerprint<int>() != type_fingerprint<float>());
    static_assert(type_fingerprint<int>() != type_fingerprint<int64_t>());
    static_assert(type_fingerprint<std::string>() != type_fingerprint<std::vector<char>>());
    static_assert(type_fingerprint<std::vector<int>>() != type_fingerprint<std::vector<long>>());
    static_assert(type_fingerprint<std::pair<int, std::string>>() !=
                  type_fingerprint<std::tuple<int, std::string>>());
    static_assert(type_fingerprint<std::variant<int, std::string>>() !=
                  type_fingerprint<std::variant<std::string, int>>());
    static_assert(type_fingerprint<std::optional<int>>() != type_fingerprint<int>());
    static_assert(type_fingerprint<Order>() != type_fingerprint<Money>());
    static_assert(type_fingerprint<std::vector<Order>>() != type_fingerprint<std::vector<Money>>());
    static_assert(detail::compiler_type_name<Order>() == "shuttle::test_codec::Order");
    // Money has a tag: its fingerprint is the tag's, whatever the type is called.
    static_assert(type_fingerprint<Money>() ==
                  detail::fingerprint_node(
                      "shuttle.codec/1",
                      {detail::fingerprint_node("codec", {detail::hash_text("money/1")})}));
    // The fingerprint is a protocol (a queue stores it in its segment): these values must not
    // change unless the format does (then the format version "shuttle.codec/1" changes too).
    EXPECT_EQ(type_fingerprint<int32_t>(), 0x27f2b85d8094c173ull);
    EXPECT_EQ((type_fingerprint<std::variant<int, std::string, std::vector<int>>>()),
              0x0005069cc088f613ull);
}

}  // namespace
}  // namespace shuttle
