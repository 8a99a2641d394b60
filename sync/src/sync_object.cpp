// The segments that hold the sync primitives: one fixed-size state struct each.
#include "shuttle/detail/sync_state.hpp"

namespace shuttle::detail {
namespace {

SegmentInfo info_for(const ObjectSpec& spec) {
    SegmentInfo info;
    info.kind = spec.kind;
    info.element_size = spec.state_size;
    info.element_align = spec.state_align;
    info.type_tag = spec.type_tag;
    info.capacity = spec.capacity;
    info.flags = spec.flags;
    info.registry_capacity = spec.registry_capacity;
    return info;
}

BodySizeFunction body_size_for(const ObjectSpec& spec) {
    return [size = spec.state_size](const SegmentInfo& info) -> std::optional<uint64_t> {
        if (info.element_size != size) return std::nullopt;
        return size;
    };
}

}  // namespace

Segment create_object(std::string_view name, const ObjectSpec& spec,
                      const Segment::Initialiser& init, const CreateOptions& options) {
    if (name.empty()) return Segment::create_anonymous(info_for(spec), body_size_for(spec), init);
    return Segment::create(name, info_for(spec), body_size_for(spec), init, options);
}

std::string_view named(std::string_view name) {
    Segment::validate_name(name);  // an empty name is not "anonymous" here
    return name;
}

Segment open_object(std::string_view name, const ObjectSpec& spec) {
    SegmentExpectation expected;
    expected.kind = spec.kind;
    expected.element_size = spec.state_size;
    expected.element_align = spec.state_align;
    expected.type_tag = spec.type_tag;
    expected.body_size = body_size_for(spec);
    return Segment::open(name, expected);
}

}  // namespace shuttle::detail
