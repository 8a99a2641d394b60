// The segments of Value and Array: a robust Lock's state, then the elements.
#include "shuttle/detail/shared_cells.hpp"

#include <limits>

#include <fmt/format.h>

namespace shuttle::detail {
namespace {

/// The body `info` needs: the lock, then capacity elements; nullopt if that overflows.
BodySizeFunction body_size_for(const CellsSpec& spec) {
    return [size = spec.element.element_size](const SegmentInfo& info) -> std::optional<uint64_t> {
        if (info.element_size != size || size == 0) return std::nullopt;
        const uint64_t limit = std::numeric_limits<int64_t>::max() - cells_data_offset;
        if (info.capacity > limit / size) return std::nullopt;
        return cells_data_offset + info.capacity * size;
    };
}

}  // namespace

std::string_view named_object(std::string_view name) {
    Segment::validate_name(name);
    return name;
}

Segment create_cells(std::string_view name, const CellsSpec& spec, uint64_t count,
                     const std::function<void(std::byte*)>& fill, const CreateOptions& options) {
    SegmentInfo info;
    spec.element.describe(info);
    info.capacity = count;
    auto init = [&](Segment& segment) {
        lock_init(*reinterpret_cast<LockState*>(segment.body()), false);
        fill(segment.body() + cells_data_offset);
    };
    if (name.empty()) return Segment::create_anonymous(info, body_size_for(spec), init);
    return Segment::create(name, info, body_size_for(spec), init, options);
}

Segment open_cells(std::string_view name, const CellsSpec& spec, std::optional<uint64_t> count,
                   bool allow_foreign_owner) {
    SegmentExpectation expected;
    expected.allow_foreign_owner = allow_foreign_owner;
    spec.element.describe(expected);
    expected.capacity = count;
    expected.known_flags = 0;
    expected.body_size = body_size_for(spec);
    return Segment::open(name, expected);
}

void throw_index_out_of_range(const char* what, std::size_t index, std::size_t size) {
    throw Error(errc::invalid_argument,
                fmt::format("Array::{}: index {} is out of range (size {})", what, index, size));
}

void throw_size_mismatch(const char* what, std::size_t values, std::size_t size) {
    throw Error(errc::invalid_argument,
                fmt::format("Array::{}: {} values for an array of {}", what, values, size));
}

}  // namespace shuttle::detail
