// A minimal object used to test segments: `capacity` 64-bit counters.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "shuttle/segment.hpp"

namespace shuttle::test {

inline std::optional<uint64_t> counters_body_size(const SegmentInfo& info) {
    if (info.capacity == 0 || info.capacity > (1u << 20) || info.element_size != 8) {
        return std::nullopt;
    }
    return info.capacity * info.element_size;
}

inline SegmentInfo counters_info(uint64_t capacity = 4) {
    SegmentInfo info;
    info.kind = ObjectKind::test;
    info.element_size = 8;
    info.element_align = 8;
    info.type_tag = 0x1234;
    info.capacity = capacity;
    info.registry_capacity = 2;
    return info;
}

inline SegmentExpectation counters_expectation(std::optional<uint64_t> capacity = std::nullopt) {
    SegmentExpectation expected;
    expected.kind = ObjectKind::test;
    expected.element_size = 8;
    expected.element_align = 8;
    expected.type_tag = 0x1234;
    expected.capacity = capacity;
    expected.body_size = counters_body_size;
    return expected;
}

inline std::atomic<uint64_t>* counters(const Segment& segment) {
    return reinterpret_cast<std::atomic<uint64_t>*>(segment.body());
}

inline Segment create_counters(const std::string& name, uint64_t capacity = 4,
                               CreateOptions options = {}) {
    return Segment::create(
        name, counters_info(capacity), counters_body_size,
        [](Segment& s) { counters(s)[0].store(42); }, options);
}

}  // namespace shuttle::test
