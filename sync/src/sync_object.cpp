// The segments that hold the sync primitives: one fixed-size state struct each.
#include "shuttle/detail/sync_object.hpp"

namespace shuttle::detail {
namespace {

BodySizeFunction body_size_for(const SegmentInfo& info) {
    return [size = info.element_size](const SegmentInfo& found) -> std::optional<uint64_t> {
        if (found.element_size != size) return std::nullopt;
        return size;
    };
}

}  // namespace

void throw_empty_handle() {
    throw Error(errc::closed,
                "an empty handle (default-constructed or moved from): attach it with create, "
                "open, open_or_create or anonymous first");
}

Segment create_object(std::string_view name, const SegmentInfo& info,
                      const Segment::Initialiser& init, const CreateOptions& options) {
    if (name.empty()) return Segment::create_anonymous(info, body_size_for(info), init);
    return Segment::create(name, info, body_size_for(info), init, options);
}

SegmentExpectation expectation_for(const SegmentInfo& info) {
    SegmentExpectation expected;
    expected.kind = info.kind;
    expected.element_size = info.element_size;
    expected.element_align = info.element_align;
    expected.type_tag = info.type_tag;
    expected.body_size = body_size_for(info);
    return expected;
}

}  // namespace shuttle::detail
