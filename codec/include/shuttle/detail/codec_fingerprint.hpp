// Compile-time hashing for type fingerprints: FNV-1a over names and numbers, and the compiler's
// spelling of a type's name (the default tag of user types).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace shuttle::detail {

inline constexpr uint64_t fnv_offset_basis = 0xcbf29ce484222325ull;
inline constexpr uint64_t fnv_prime = 0x100000001b3ull;

constexpr uint64_t hash_text(std::string_view text, uint64_t hash = fnv_offset_basis) noexcept {
    for (char character : text) {
        hash ^= static_cast<uint8_t>(character);
        hash *= fnv_prime;
    }
    return hash;
}

constexpr uint64_t hash_number(uint64_t hash, uint64_t number) noexcept {
    for (int byte = 0; byte < 8; ++byte) {
        hash ^= (number >> (8 * byte)) & 0xff;
        hash *= fnv_prime;
    }
    return hash;
}

/// The fingerprint of a node of a type's structure: its name, then its parts in order (sizes,
/// the fingerprints of its element types).
constexpr uint64_t fingerprint_node(std::string_view name,
                                    std::initializer_list<uint64_t> parts) noexcept {
    uint64_t hash = hash_text(name);
    hash = hash_number(hash, parts.size());
    for (uint64_t part : parts) hash = hash_number(hash, part);
    return hash;
}

/// T as the compiler spells it ("geo::Point"), from __PRETTY_FUNCTION__ (GCC and Clang both
/// print "... [with T = geo::Point; ...]" or "... [T = geo::Point]").
template <class T>
constexpr std::string_view compiler_type_name() noexcept {
    std::string_view function = __PRETTY_FUNCTION__;
    const auto start = function.find("T = ");
    if (start == std::string_view::npos) return function;
    function.remove_prefix(start + 4);
    return function.substr(0, function.find_first_of(";]"));
}

}  // namespace shuttle::detail
