// The two ends of an encoding: Writer (into a caller's span, or counting only) and Reader (from
// a span, every read bounds-checked). Built-in codecs and user codecs (shuttle::codec<T>) write
// and read through them; nothing here allocates.
//
// Wire rules (docs/codec.md): little-endian, no alignment, no padding; lengths and counts are
// LEB128 varints in their one canonical (shortest) form.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace shuttle {

static_assert(std::endian::native == std::endian::little,
              "the codec writes trivially copyable values as their bytes: little-endian only");

/// Bytes a varint of `value` takes (1 to 10).
constexpr std::size_t varint_size(uint64_t value) noexcept {
    return static_cast<std::size_t>(std::bit_width(value | 1) + 6) / 7;
}

/// Writes an encoding into a caller-provided span. Writes past its end are not made, only
/// counted: size() is then the size the encoding needs and fits() is false. A Writer over an
/// empty span counts (encoded_size() of user types uses that). Not thread-safe; no allocation.
class Writer {
  public:
    Writer() = default;
    explicit Writer(std::span<std::byte> out) noexcept
        : begin_(out.data()), cursor_(out.data()), end_(out.data() + out.size()) {}

    /// Appends `size` bytes from `data` (which may be null when size is 0).
    void write_bytes(const void* data, std::size_t size) noexcept {
        if (size <= static_cast<std::size_t>(end_ - cursor_)) {
            if (size != 0) std::memcpy(cursor_, data, size);
            cursor_ += size;
        } else {
            end_ = cursor_;  // stop writing: a later smaller write must not land after a gap
            overflow_ += size;
        }
    }

    /// Appends a trivially copyable value's bytes.
    template <class T>
    void write(const T& value) noexcept {
        static_assert(std::is_trivially_copyable_v<T>, "write() copies bytes");
        write_bytes(&value, sizeof(T));
    }

    /// Appends `value` as a LEB128 varint (1 to 10 bytes).
    void write_varint(uint64_t value) noexcept {
        std::byte bytes[10];
        std::size_t length = 0;
        while (value >= 0x80) {
            bytes[length++] = static_cast<std::byte>(value | 0x80);
            value >>= 7;
        }
        bytes[length++] = static_cast<std::byte>(value);
        write_bytes(bytes, length);
    }

    /// Where the next byte goes, if `size` more bytes fit (else null and nothing is reserved):
    /// for a length written after its contents.
    std::byte* reserve(std::size_t size) noexcept {
        std::byte* at = cursor_;
        if (size > static_cast<std::size_t>(end_ - cursor_)) {
            write_bytes(nullptr, size);  // counts it as overflow
            return nullptr;
        }
        cursor_ += size;
        return at;
    }

    /// Bytes written, plus the ones that did not fit.
    std::size_t size() const noexcept {
        return static_cast<std::size_t>(cursor_ - begin_) + overflow_;
    }
    /// Whether everything written fitted in the span.
    bool fits() const noexcept { return overflow_ == 0; }

  private:
    std::byte* begin_ = nullptr;
    std::byte* cursor_ = nullptr;
    std::byte* end_ = nullptr;
    std::size_t overflow_ = 0;
};

/// Reads an encoding from a span. Every read checks the bytes left first and returns false
/// (consuming nothing) when they are too few; nothing here allocates or throws.
class Reader {
  public:
    explicit Reader(std::span<const std::byte> in) noexcept
        : cursor_(in.data()), end_(in.data() + in.size()) {}

    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - cursor_); }

    /// Copies the next `size` bytes to `out`.
    [[nodiscard]] bool read_bytes(void* out, std::size_t size) noexcept {
        if (size > remaining()) return false;
        if (size != 0) std::memcpy(out, cursor_, size);
        cursor_ += size;
        return true;
    }

    /// The next `size` bytes, in place (no copy), or null if fewer are left.
    [[nodiscard]] const std::byte* take(std::size_t size) noexcept {
        if (size > remaining()) return nullptr;
        const std::byte* at = cursor_;
        cursor_ += size;
        return at;
    }

    /// Reads a trivially copyable value's bytes. Every bit pattern must be a valid T (not for
    /// bool or enums whose values are checked: the codec checks those itself).
    template <class T>
    [[nodiscard]] bool read(T& value) noexcept {
        static_assert(std::is_trivially_copyable_v<T>, "read() copies bytes");
        return read_bytes(&value, sizeof(T));
    }

    /// Reads a varint in its canonical form: more than 10 bytes, a value above 2^64 - 1, or a
    /// needless trailing zero byte are refused.
    [[nodiscard]] bool read_varint(uint64_t& value) noexcept {
        if (cursor_ != end_ && static_cast<uint8_t>(*cursor_) < 0x80) {  // one byte: most sizes
            value = static_cast<uint8_t>(*cursor_++);
            return true;
        }
        uint64_t result = 0;
        const std::byte* at = cursor_;
        for (unsigned shift = 0; shift < 64 && at != end_; shift += 7) {
            const auto byte = static_cast<uint8_t>(*at++);
            if (shift == 63 && byte > 1) return false;  // bits beyond 64
            result |= static_cast<uint64_t>(byte & 0x7f) << shift;
            if (byte < 0x80) {
                if (byte == 0 && shift != 0) return false;  // not the shortest form
                value = result;
                cursor_ = at;
                return true;
            }
        }
        return false;  // ran out of bytes, or a 10th byte with its continuation bit set
    }

    /// Reads an element count and checks that `count` elements of at least `min_element_size`
    /// bytes each can still follow (so a forged count never makes a decoder allocate more
    /// than the message could hold).
    [[nodiscard]] bool read_count(std::size_t& count, std::size_t min_element_size) noexcept {
        uint64_t value;
        const std::byte* start = cursor_;
        if (!read_varint(value) || value > remaining() / min_element_size) {
            cursor_ = start;
            return false;
        }
        count = static_cast<std::size_t>(value);
        return true;
    }

  private:
    const std::byte* cursor_;
    const std::byte* end_;
};

}  // namespace shuttle
