// Fuzz-like cases: random bytes, every truncation and random corruptions of valid encodings,
// fed to decode for every built-in type (and the two kinds of user types). Decoding must return
// a value or errc::bad_message, never crash (the ASan+UBSan build runs these too), and a decode
// that succeeds must have read a canonical encoding: encoding the value again gives the same
// bytes.
#include <gtest/gtest.h>

#include <random>

#include "codec_types.hpp"
#include "shuttle/codec.hpp"

namespace shuttle {
namespace {

using test_codec::Color;
using test_codec::Money;
using test_codec::Order;
using test_codec::Point;

using Nested =
    std::vector<std::map<std::string, std::optional<std::vector<std::variant<int, std::string>>>>>;

/// Decodes `bytes` as a T: bad_message or a value that re-encodes to the same bytes.
template <class T>
void expect_decode_is_safe(const std::vector<std::byte>& bytes, bool canonical = true) {
    T value{};
    status decoded = decode(bytes, value);
    if (!decoded) {
        ASSERT_EQ(decoded.error(), errc::bad_message);
        return;
    }
    if (canonical) {
        ASSERT_EQ(encode(value), bytes);
    }
}

template <class T>
void fuzz(const std::vector<T>& samples, bool canonical = true) {
    std::mt19937_64 random(20240617);
    // Random bytes of every length up to 48, and a few longer ones.
    for (int round = 0; round < 3000; ++round) {
        std::vector<std::byte> bytes(round < 2000 ? round % 49 : 49 + random() % 400);
        for (auto& byte : bytes) {
            // Small values half the time: they make plausible lengths, indexes and flags.
            byte = static_cast<std::byte>(random() % 2 ? random() % 4 : random());
        }
        expect_decode_is_safe<T>(bytes, canonical);
    }
    for (const T& sample : samples) {
        const std::vector<std::byte> encoding = encode(sample);
        // Every strict prefix is refused: encodings are self-delimiting.
        for (std::size_t length = 0; length < encoding.size(); ++length) {
            T value{};
            std::vector<std::byte> prefix(encoding.begin(), encoding.begin() + length);
            ASSERT_EQ(decode(prefix, value).error(), errc::bad_message) << "length " << length;
        }
        // Corruptions: one byte replaced, bytes appended.
        for (int round = 0; round < 300 && !encoding.empty(); ++round) {
            std::vector<std::byte> corrupt = encoding;
            corrupt[random() % corrupt.size()] = static_cast<std::byte>(random());
            if (round % 3 == 0) corrupt.push_back(static_cast<std::byte>(random()));
            expect_decode_is_safe<T>(corrupt, canonical);
        }
    }
}

TEST(CodecFuzz, TriviallyCopyableAndBool) {
    fuzz<int32_t>({0, -1, 123456});
    fuzz<double>({0.0, -2.5});
    fuzz<Point>({{1, 2}});
    fuzz<Color>({Color::green});
    fuzz<bool>({true, false});
}

TEST(CodecFuzz, Strings) {
    fuzz<std::string>({"", "abc", std::string(200, 'x')});
    fuzz<std::u16string>({u"", u"wide"});
}

TEST(CodecFuzz, Containers) {
    fuzz<std::vector<int>>({{}, {1, 2, 3}});
    fuzz<std::vector<std::string>>({{"a", "", "bc"}});
    fuzz<std::vector<bool>>({{true, false}});
    fuzz<std::array<std::string, 2>>({{"x", "yz"}});
    fuzz<std::map<std::string, int>>({{{"a", 1}, {"b", 2}}});
    // An unordered map's iteration order may differ from its encoding's: values only.
    fuzz<std::unordered_map<int, std::string>>({{{1, "one"}, {2, "two"}}}, false);
}

TEST(CodecFuzz, OptionalPairTupleVariant) {
    fuzz<std::optional<std::string>>({std::nullopt, "set"});
    fuzz<std::pair<int, std::string>>({{1, "one"}});
    fuzz<std::tuple<bool, std::string, double>>({{true, "t", 2.5}});
    fuzz<std::variant<int, std::string, std::vector<int>>>(
        {1, std::string("abc"), std::vector<int>{4, 5, 6}});
}

TEST(CodecFuzz, Nested) {
    Nested value(2);
    value[0]["full"] = std::vector<std::variant<int, std::string>>{1, "two"};
    value[1]["none"] = std::nullopt;
    fuzz<Nested>({value});
}

TEST(CodecFuzz, UserTypes) {
    fuzz<Order>({Order{"widget", 3, {1.5}, true}});
    fuzz<std::vector<Order>>({{Order{"a", 1, {}, false}, Order{"b", 2, {3.0}, true}}});
    fuzz<Money>({Money{"EUR", 100}});
}

}  // namespace
}  // namespace shuttle
