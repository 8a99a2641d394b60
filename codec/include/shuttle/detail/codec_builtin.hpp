// The codec of every supported type: value_codec<T> has
//   supported      whether T can be encoded at all
//   bytewise       whether T's encoding is exactly its sizeof(T) bytes (a memcpy)
//   min_size       the fewest bytes an encoding of T takes (bounds forged element counts)
//   fingerprint    a hash of T's structure (shuttle::type_fingerprint)
//   size(v)        the exact size of v's encoding
//   encode(w, v)   writes v
//   decode(r, v)   reads into v (reusing its storage); false if the bytes are not a T
// Wire format: docs/codec.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "shuttle/codec_io.hpp"
#include "shuttle/detail/codec_cereal.hpp"
#include "shuttle/detail/codec_fingerprint.hpp"
#include "shuttle/error.hpp"

namespace shuttle {

/// The customisation point for types you encode yourself: specialise it with two functions,
///     template <> struct shuttle::codec<Money> {
///         static void encode(shuttle::Writer& out, const Money& value);
///         static bool decode(shuttle::Reader& in, Money& value);  // false: not a Money
///     };
/// decode() must check what it reads (the Reader's reads are bounds-checked and return false
/// at the end of the bytes) and may throw std::exception (taken as "not a Money"). A
/// specialisation wins over every other way of encoding T.
template <class T>
struct codec {};

/// A name for T in its type fingerprint. Empty by default: trivially copyable types are known
/// by their size and kind, cereal and shuttle::codec types by the compiler's spelling of their
/// name. Specialise it to keep a fingerprint across a rename, or to change it with a format:
///     template <> inline constexpr std::string_view shuttle::type_tag<Order> = "Order/2";
template <class T>
inline constexpr std::string_view type_tag{};

namespace detail {

template <class T>
concept has_user_codec = requires(Writer& writer, Reader& reader, const T& in, T& out) {
    codec<T>::encode(writer, in);
    { codec<T>::decode(reader, out) } -> std::same_as<bool>;
};

template <class T>
constexpr uint64_t tag_hash() noexcept {
    return hash_text(type_tag<T>.empty() ? compiler_type_name<T>() : type_tag<T>);
}

/// Not encodable: T is none of the types below, not trivially copyable, has no cereal
/// functions and no shuttle::codec specialisation.
template <class T>
struct unsupported_codec {
    static constexpr bool supported = false;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint = 0;
};

/// A trivially copyable value: its bytes.
template <class T>
struct bytewise_codec {
    static_assert(!std::is_pointer_v<T> && !std::is_member_pointer_v<T>,
                  "a pointer means nothing in another process: encode what it points to");
    static constexpr bool supported = true;
    static constexpr bool bytewise = true;
    static constexpr std::size_t min_size = sizeof(T);
    static constexpr char kind = std::is_floating_point_v<T> ? 'f'
                                 : std::is_enum_v<T>         ? 'e'
                                 : std::is_integral_v<T>     ? (std::is_signed_v<T> ? 'i' : 'u')
                                                             : 'o';
    static constexpr uint64_t fingerprint = fingerprint_node(
        "trivial", {static_cast<uint64_t>(kind), sizeof(T), alignof(T), hash_text(type_tag<T>)});

    static std::size_t size(const T&) noexcept { return sizeof(T); }
    static void encode(Writer& writer, const T& value) noexcept { writer.write(value); }
    static bool decode(Reader& reader, T& value) noexcept { return reader.read(value); }
};

/// bool: one byte, 0 or 1 (any other byte would be an invalid bool).
struct bool_codec {
    static constexpr bool supported = true;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint = fingerprint_node("bool", {});

    static std::size_t size(bool) noexcept { return 1; }
    static void encode(Writer& writer, bool value) noexcept {
        writer.write(static_cast<uint8_t>(value ? 1 : 0));
    }
    static bool decode(Reader& reader, bool& value) noexcept {
        uint8_t byte;
        if (!reader.read(byte) || byte > 1) return false;
        value = byte != 0;
        return true;
    }
};

/// User types (cereal, or shuttle::codec): a 4-byte length, then what they write. The frame
/// confines a user decoder to its own bytes, and it must use all of them.
template <class T, class Functions>
struct framed_codec {
    static constexpr bool supported = true;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = sizeof(uint32_t);
    static constexpr uint64_t fingerprint = fingerprint_node(Functions::name, {tag_hash<T>()});

    static std::size_t size(const T& value) {
        Writer counter;
        encode(counter, value);
        return counter.size();
    }
    static void encode(Writer& writer, const T& value) {
        std::byte* length_at = writer.reserve(sizeof(uint32_t));
        const std::size_t start = writer.size();
        Functions::encode(writer, value);
        const std::size_t length = writer.size() - start;
        if (length > std::numeric_limits<uint32_t>::max()) {
            throw Error(errc::too_large, "shuttle codec: a user type encodes to more than 4 GiB");
        }
        const auto length32 = static_cast<uint32_t>(length);
        if (length_at != nullptr) std::memcpy(length_at, &length32, sizeof length32);
    }
    static bool decode(Reader& reader, T& value) {
        uint32_t length;
        if (!reader.read(length)) return false;
        const std::byte* bytes = reader.take(length);
        if (bytes == nullptr) return false;
        Reader inner({bytes, length});
        try {
            if (!Functions::decode(inner, value)) return false;
        } catch (const std::exception&) {
            return false;
        }
        return inner.remaining() == 0;
    }
};

template <class T>
struct user_functions {
    static constexpr std::string_view name = "codec";
    static void encode(Writer& writer, const T& value) { codec<T>::encode(writer, value); }
    static bool decode(Reader& reader, T& value) { return codec<T>::decode(reader, value); }
};

template <class T>
struct cereal_functions {
    static constexpr std::string_view name = "cereal";
    static void encode(Writer& writer, const T& value) {
        CerealOutput archive(writer);
        archive(value);
    }
    static bool decode(Reader& reader, T& value) {
        CerealInput archive(reader);
        archive(value);
        return true;
    }
};

template <class T>
using leaf_codec = std::conditional_t<
    has_user_codec<T>, framed_codec<T, user_functions<T>>,
    std::conditional_t<std::is_same_v<T, bool>, bool_codec,
                       std::conditional_t<std::is_trivially_copyable_v<T>, bytewise_codec<T>,
                                          std::conditional_t<cereal_serializable<T>,
                                                             framed_codec<T, cereal_functions<T>>,
                                                             unsupported_codec<T>>>>>;

/// Types that are not one of the std templates below.
template <class T>
struct value_codec : leaf_codec<T> {};

template <class... Codecs>
inline constexpr bool all_supported = (Codecs::supported && ...);

/// Elements of a container must take at least a byte, so a count can be checked against the
/// bytes left.
template <class Codec>
constexpr std::size_t element_min_size() noexcept {
    static_assert(Codec::min_size > 0,
                  "a container's elements must encode to at least one byte (an empty "
                  "std::tuple<> cannot be counted)");
    return Codec::min_size;
}

// ---- std::basic_string -----------------------------------------------------------------------

template <class Char, class Traits, class Allocator>
struct value_codec<std::basic_string<Char, Traits, Allocator>> {
    using String = std::basic_string<Char, Traits, Allocator>;
    static constexpr bool supported = std::is_trivially_copyable_v<Char>;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint = fingerprint_node("std::basic_string", {sizeof(Char)});

    static std::size_t size(const String& value) noexcept {
        return varint_size(value.size()) + value.size() * sizeof(Char);
    }
    static void encode(Writer& writer, const String& value) noexcept {
        writer.write_varint(value.size());
        writer.write_bytes(value.data(), value.size() * sizeof(Char));
    }
    static bool decode(Reader& reader, String& value) {
        std::size_t count;
        if (!reader.read_count(count, sizeof(Char))) return false;
        const std::byte* bytes = reader.take(count * sizeof(Char));
        if (bytes == nullptr) return false;
        if constexpr (std::is_same_v<Char, char>) {
            value.assign(reinterpret_cast<const char*>(bytes), count);
        } else {
            value.resize(count);
            if (count != 0) std::memcpy(value.data(), bytes, count * sizeof(Char));
        }
        return true;
    }
};

// ---- std::vector and std::array --------------------------------------------------------------

/// Elements one after the other (bytewise ones in one copy).
template <class Element>
struct elements {
    using Codec = value_codec<Element>;

    template <class Range>
    static std::size_t size(const Range& range) {
        if constexpr (Codec::bytewise) {
            return std::size(range) * sizeof(Element);
        } else {
            std::size_t total = 0;
            for (const auto& element : range) total += Codec::size(element);
            return total;
        }
    }
    template <class Range>
    static void encode(Writer& writer, const Range& range) {
        if constexpr (Codec::bytewise) {
            writer.write_bytes(std::data(range), std::size(range) * sizeof(Element));
        } else {
            for (const auto& element : range) Codec::encode(writer, element);
        }
    }
    /// Reads into `range`, already sized.
    template <class Range>
    static bool decode(Reader& reader, Range& range) {
        if constexpr (Codec::bytewise) {
            return reader.read_bytes(std::data(range), std::size(range) * sizeof(Element));
        } else if constexpr (std::is_same_v<Element, bool>) {  // std::vector<bool>'s proxies
            for (auto&& element : range) {
                bool value;
                if (!bool_codec::decode(reader, value)) return false;
                element = value;
            }
            return true;
        } else {
            for (auto& element : range) {
                if (!Codec::decode(reader, element)) return false;
            }
            return true;
        }
    }
};

template <class Element, class Allocator>
struct value_codec<std::vector<Element, Allocator>> {
    using Vector = std::vector<Element, Allocator>;
    static constexpr bool supported = value_codec<Element>::supported;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint =
        fingerprint_node("std::vector", {value_codec<Element>::fingerprint});

    static std::size_t size(const Vector& value) {
        return varint_size(value.size()) + elements<Element>::size(value);
    }
    static void encode(Writer& writer, const Vector& value) {
        writer.write_varint(value.size());
        elements<Element>::encode(writer, value);
    }
    static bool decode(Reader& reader, Vector& value) {
        std::size_t count;
        if (!reader.read_count(count, element_min_size<value_codec<Element>>())) return false;
        value.resize(count);
        return elements<Element>::decode(reader, value);
    }
};

template <class Element, std::size_t Count>
struct value_codec<std::array<Element, Count>> {
    using Array = std::array<Element, Count>;
    static constexpr bool supported = value_codec<Element>::supported;
    static constexpr bool bytewise = value_codec<Element>::bytewise;
    static constexpr std::size_t min_size = Count * value_codec<Element>::min_size;
    static constexpr uint64_t fingerprint =
        fingerprint_node("std::array", {Count, value_codec<Element>::fingerprint});

    static std::size_t size(const Array& value) { return elements<Element>::size(value); }
    static void encode(Writer& writer, const Array& value) {
        elements<Element>::encode(writer, value);
    }
    static bool decode(Reader& reader, Array& value) {
        return elements<Element>::decode(reader, value);
    }
};

// ---- std::optional ---------------------------------------------------------------------------

template <class Element>
struct value_codec<std::optional<Element>> {
    using Codec = value_codec<Element>;
    static constexpr bool supported = Codec::supported;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint = fingerprint_node("std::optional", {Codec::fingerprint});

    static std::size_t size(const std::optional<Element>& value) {
        return 1 + (value ? Codec::size(*value) : 0);
    }
    static void encode(Writer& writer, const std::optional<Element>& value) {
        bool_codec::encode(writer, value.has_value());
        if (value) Codec::encode(writer, *value);
    }
    static bool decode(Reader& reader, std::optional<Element>& value) {
        bool engaged;
        if (!bool_codec::decode(reader, engaged)) return false;
        if (!engaged) {
            value.reset();
            return true;
        }
        if (!value) value.emplace();
        return Codec::decode(reader, *value);
    }
};

// ---- std::pair and std::tuple ----------------------------------------------------------------

/// The members of a pair or tuple, in order.
template <class Tuple, class... Members>
struct tuple_codec {
    static constexpr bool supported = all_supported<value_codec<Members>...>;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = (std::size_t{0} + ... + value_codec<Members>::min_size);

    static std::size_t size(const Tuple& value) {
        return std::apply(
            [](const auto&... member) {
                return (std::size_t{0} + ... + value_codec<Members>::size(member));
            },
            value);
    }
    static void encode(Writer& writer, const Tuple& value) {
        std::apply(
            [&](const auto&... member) { (value_codec<Members>::encode(writer, member), ...); },
            value);
    }
    static bool decode(Reader& reader, Tuple& value) {
        return std::apply(
            [&](auto&... member) { return (value_codec<Members>::decode(reader, member) && ...); },
            value);
    }
};

template <class First, class Second>
struct value_codec<std::pair<First, Second>>
    : tuple_codec<std::pair<First, Second>, First, Second> {
    static constexpr uint64_t fingerprint = fingerprint_node(
        "std::pair", {value_codec<First>::fingerprint, value_codec<Second>::fingerprint});
};

template <class... Members>
struct value_codec<std::tuple<Members...>> : tuple_codec<std::tuple<Members...>, Members...> {
    static constexpr uint64_t fingerprint =
        fingerprint_node("std::tuple", {value_codec<Members>::fingerprint...});
};

// ---- std::variant ----------------------------------------------------------------------------

template <class... Alternatives>
struct value_codec<std::variant<Alternatives...>> {
    using Variant = std::variant<Alternatives...>;
    static constexpr bool supported = all_supported<value_codec<Alternatives>...>;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;
    static constexpr uint64_t fingerprint =
        fingerprint_node("std::variant", {value_codec<Alternatives>::fingerprint...});

    static std::size_t size(const Variant& value) {
        return varint_size(value.index()) +
               std::visit(
                   [](const auto& held) {
                       return value_codec<std::decay_t<decltype(held)>>::size(held);
                   },
                   checked(value));
    }
    static void encode(Writer& writer, const Variant& value) {
        writer.write_varint(checked(value).index());
        std::visit(
            [&](const auto& held) {
                value_codec<std::decay_t<decltype(held)>>::encode(writer, held);
            },
            value);
    }
    static bool decode(Reader& reader, Variant& value) {
        uint64_t index;
        if (!reader.read_varint(index) || index >= sizeof...(Alternatives)) return false;
        return decode_alternative(reader, value, static_cast<std::size_t>(index),
                                  std::index_sequence_for<Alternatives...>{});
    }

  private:
    static const Variant& checked(const Variant& value) {
        if (value.valueless_by_exception()) {
            throw Error(errc::invalid_argument,
                        "shuttle codec: a std::variant valueless by exception has no encoding");
        }
        return value;
    }
    template <std::size_t... Index>
    static bool decode_alternative(Reader& reader, Variant& value, std::size_t index,
                                   std::index_sequence<Index...>) {
        bool decoded = false;
        ((index == Index ? (decoded = decode_as<Index>(reader, value), true) : false) || ...);
        return decoded;
    }
    template <std::size_t Index>
    static bool decode_as(Reader& reader, Variant& value) {
        using Alternative = std::variant_alternative_t<Index, Variant>;
        if (value.index() != Index) value.template emplace<Index>();  // else reuse its storage
        return value_codec<Alternative>::decode(reader, *std::get_if<Index>(&value));
    }
};

// ---- std::map and std::unordered_map ---------------------------------------------------------

template <class Map, class Key, class Mapped, bool Sorted>
struct map_codec {
    using KeyCodec = value_codec<Key>;
    using MappedCodec = value_codec<Mapped>;
    static constexpr bool supported = KeyCodec::supported && MappedCodec::supported;
    static constexpr bool bytewise = false;
    static constexpr std::size_t min_size = 1;

    static std::size_t size(const Map& map) {
        std::size_t total = varint_size(map.size());
        for (const auto& [key, mapped] : map) {
            total += KeyCodec::size(key) + MappedCodec::size(mapped);
        }
        return total;
    }
    static void encode(Writer& writer, const Map& map) {
        writer.write_varint(map.size());
        for (const auto& [key, mapped] : map) {
            KeyCodec::encode(writer, key);
            MappedCodec::encode(writer, mapped);
        }
    }
    /// A key twice is refused, and so are a sorted map's keys out of order: no encoder
    /// writes those (a std::map has one encoding).
    static bool decode(Reader& reader, Map& map) {
        std::size_t count;
        if (!reader.read_count(count, element_min_size<KeyCodec>() + MappedCodec::min_size)) {
            return false;
        }
        map.clear();
        for (std::size_t entry = 0; entry < count; ++entry) {
            Key key{};
            Mapped mapped{};
            if (!KeyCodec::decode(reader, key) || !MappedCodec::decode(reader, mapped))
                return false;
            if constexpr (Sorted) {
                if (!map.empty() && !map.key_comp()(std::prev(map.end())->first, key)) return false;
                map.emplace_hint(map.end(), std::move(key), std::move(mapped));
            } else if (!map.try_emplace(std::move(key), std::move(mapped)).second) {
                return false;
            }
        }
        return true;
    }
};

template <class Key, class Mapped, class Compare, class Allocator>
struct value_codec<std::map<Key, Mapped, Compare, Allocator>>
    : map_codec<std::map<Key, Mapped, Compare, Allocator>, Key, Mapped, true> {
    static constexpr uint64_t fingerprint = fingerprint_node(
        "std::map", {value_codec<Key>::fingerprint, value_codec<Mapped>::fingerprint});
};

template <class Key, class Mapped, class Hash, class Equal, class Allocator>
struct value_codec<std::unordered_map<Key, Mapped, Hash, Equal, Allocator>>
    : map_codec<std::unordered_map<Key, Mapped, Hash, Equal, Allocator>, Key, Mapped, false> {
    static constexpr uint64_t fingerprint = fingerprint_node(
        "std::unordered_map", {value_codec<Key>::fingerprint, value_codec<Mapped>::fingerprint});
};

}  // namespace detail
}  // namespace shuttle
