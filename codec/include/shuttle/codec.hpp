// The codec: any supported T to bytes and back, for messages of any type (queues, pipes, the
// pool) and the keys and values of shared containers.
//
//     std::byte buffer[256];
//     auto size = shuttle::encode(std::string("abc"), buffer);         // result<size_t>
//     auto text = shuttle::decode<std::string>({buffer, *size});       // result<std::string>
//
// Supported T (nested arbitrarily):
//   * trivially copyable types: their bytes (one memcpy); bool is checked to be 0 or 1;
//   * std::string (any basic_string of a trivially copyable character), std::vector,
//     std::array, std::optional, std::pair, std::tuple, std::variant, std::map,
//     std::unordered_map;
//   * types with cereal functions (serialize, or save and load: https://uscilab.github.io/cereal);
//   * types with a shuttle::codec<T> specialisation (two functions; see codec_builtin.hpp).
// Decoding needs default-constructible types (as cereal does).
//
// Decoding never trusts the bytes: every length is checked against the bytes left before
// anything is allocated or copied, a variant index, an optional's or a bool's byte are checked,
// and trailing bytes are an error. Bytes that are not an encoding of T give errc::bad_message,
// never undefined behaviour (a trivially copyable struct takes any bytes of its size, so a
// struct whose members have invalid values, such as a bool member, must not be decoded from
// untrusted bytes). type_fingerprint<T>() lets an object refuse to open with another T.
//
// Thread and process safety: every function is pure (no shared state); encode and decode of
// user types call the user's functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shuttle/codec_io.hpp"
#include "shuttle/detail/codec_builtin.hpp"
#include "shuttle/error.hpp"

namespace shuttle {

/// Whether the codec can encode and decode T.
template <class T>
concept encodable = detail::value_codec<T>::supported;

/// Whether T's encoding is exactly its sizeof(T) bytes (trivially copyable types but bool and
/// the std templates): a queue can keep fixed-size slots for it.
template <class T>
inline constexpr bool bytewise_encodable = detail::value_codec<T>::bytewise;

namespace detail {
template <class T>
constexpr void require_encodable() {
    static_assert(encodable<T>,
                  "shuttle codec: T cannot be encoded: make it trivially copyable, give it cereal "
                  "functions (serialize, or save and load), or specialise shuttle::codec<T> "
                  "(docs/codec.md)");
}
}  // namespace detail

/// A 64-bit hash of T's structure: the codec's format version, the names of the std
/// templates, the kind, size and alignment of trivially copyable leaves, and the tag of user
/// types (shuttle::type_tag<T>, by default the compiler's spelling of their name). Two types
/// with the same encoding rules have the same fingerprint; never 0.
template <class T>
constexpr uint64_t type_fingerprint() noexcept {
    detail::require_encodable<T>();
    const uint64_t hash =
        detail::fingerprint_node("shuttle.codec/1", {detail::value_codec<T>::fingerprint});
    return hash == 0 ? 1 : hash;
}

/// The exact number of bytes encode(value, ...) writes. Cheap for built-in types (no pass over
/// the bytes of strings or bytewise vectors); a counting pass for cereal and codec types.
template <class T>
std::size_t encoded_size(const T& value) {
    detail::require_encodable<T>();
    return detail::value_codec<T>::size(value);
}

/// Encodes `value` into `out` and returns the bytes written, or errc::buffer_too_small (the
/// contents of `out` are then unspecified; encoded_size() tells what is needed). Allocates
/// nothing for built-in types. Throws only what a user type's functions throw, and
/// Error(invalid_argument) for a std::variant valueless by exception.
template <class T>
result<std::size_t> encode(const T& value, std::span<std::byte> out) {
    detail::require_encodable<T>();
    Writer writer(out);
    detail::value_codec<T>::encode(writer, value);
    if (!writer.fits()) return errc::buffer_too_small;
    return writer.size();
}

/// Encodes `value` into a new vector of exactly its size.
template <class T>
std::vector<std::byte> encode(const T& value) {
    std::vector<std::byte> bytes(encoded_size(value));
    Writer writer(bytes);
    detail::value_codec<T>::encode(writer, value);
    return bytes;
}

/// Decodes all of `in` into `out`, reusing its storage (a string's or vector's capacity).
/// errc::bad_message if `in` is not exactly one encoding of a T; `out` is then valid but its
/// value unspecified. Never reads outside `in`.
template <class T>
status decode(std::span<const std::byte> in, T& out) {
    detail::require_encodable<T>();
    Reader reader(in);
    if (!detail::value_codec<T>::decode(reader, out) || reader.remaining() != 0) {
        return errc::bad_message;
    }
    return {};
}

/// Decodes all of `in` as a T: the value, or errc::bad_message.
template <class T>
result<T> decode(std::span<const std::byte> in) {
    T value{};
    if (status decoded = decode(in, value); !decoded) return decoded.error();
    return value;
}

}  // namespace shuttle
