// Types the codec tests encode: a trivially copyable struct and enum, a cereal type, and a
// type with its own shuttle::codec<T>.
#pragma once

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "shuttle/codec.hpp"

namespace shuttle::test_codec {

enum class Color : uint8_t { red, green, blue };

struct Point {
    int32_t x;
    int32_t y;
    friend bool operator==(const Point&, const Point&) = default;
};

/// A user type encoded by cereal.
struct Order {
    std::string item;
    int32_t quantity = 0;
    std::vector<double> prices;
    bool urgent = false;

    template <class Archive>
    void serialize(Archive& archive) {
        archive(item, quantity, prices, urgent);
    }
    friend bool operator==(const Order&, const Order&) = default;
};

/// A user type with its own two functions (shuttle::codec<Money> below).
struct Money {
    std::string currency;  // three letters
    int64_t cents = 0;
    friend bool operator==(const Money&, const Money&) = default;
};

inline std::ostream& operator<<(std::ostream& out, Color color) {
    return out << "Color(" << static_cast<int>(color) << ")";
}
inline std::ostream& operator<<(std::ostream& out, const Point& point) {
    return out << "Point(" << point.x << ", " << point.y << ")";
}
inline std::ostream& operator<<(std::ostream& out, const Order& order) {
    return out << "Order(" << order.item << ", " << order.quantity << ")";
}
inline std::ostream& operator<<(std::ostream& out, const Money& money) {
    return out << "Money(" << money.currency << " " << money.cents << ")";
}

}  // namespace shuttle::test_codec

template <>
struct shuttle::codec<shuttle::test_codec::Money> {
    static void encode(Writer& out, const test_codec::Money& money) {
        out.write_bytes(money.currency.data(), money.currency.size());
        out.write(money.cents);
    }
    /// Refuses anything but three letters then eight bytes; "XXX" throws (a decoder may).
    static bool decode(Reader& in, test_codec::Money& money) {
        char letters[3];
        if (!in.read_bytes(letters, 3) || !in.read(money.cents)) return false;
        money.currency.assign(letters, 3);
        if (money.currency == "XXX") throw std::invalid_argument("no such currency");
        return true;
    }
};

template <>
inline constexpr std::string_view shuttle::type_tag<shuttle::test_codec::Money> = "money/1";
