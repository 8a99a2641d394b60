// The segments that hold the sync primitives (one fixed-size state struct each, at the start of
// the body) and the handle every primitive builds on (with detail/named_object.hpp's factories).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "shuttle/detail/named_object.hpp"
#include "shuttle/detail/sync_state.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::detail {

/// The segment of a primitive of `kind` whose body is one `State`: the state's size and
/// alignment are the element's, `type_tag` a second check (bumped if the state's meaning changes
/// without its size changing). Capacity, flags and registry as the primitive needs.
template <class State>
SegmentInfo state_segment(ObjectKind kind, uint64_t type_tag) noexcept {
    SegmentInfo info;
    info.kind = kind;
    info.element_size = sizeof(State);
    info.element_align = alignof(State);
    info.type_tag = type_tag;
    return info;
}

/// Named (`name` non-empty) or anonymous segment as `info` says, initialised by `init`.
Segment create_object(std::string_view name, const SegmentInfo& info,
                      const Segment::Initialiser& init, const CreateOptions& options);
/// What open() requires of a segment like `info`: its kind, state size, alignment and tag (any
/// capacity and flags).
SegmentExpectation expectation_for(const SegmentInfo& info);

/// A handle's hold on its primitive: the segment, and the `State` at the start of its body.
/// Movable, not copyable; valid in a fork()ed child.
/// Every operation on an empty handle (default-constructed or moved from) throws this:
/// Error(errc::closed).
[[noreturn]] void throw_empty_handle();

template <class State>
class SharedState {
  public:
    /// False for an empty handle (default-constructed or moved from), on which every operation
    /// throws Error(errc::closed).
    bool valid() const noexcept { return state_ != nullptr; }
    /// The name ("" when anonymous).
    const std::string& name() const noexcept { return segment_.name(); }
    Segment& segment() noexcept { return segment_; }
    /// The shared state, for diagnostics and for objects that embed it. Error(closed) if empty.
    State& state() const { return shared(); }

  protected:
    SharedState() = default;
    explicit SharedState(Segment segment)
        : segment_(std::move(segment)), state_(reinterpret_cast<State*>(segment_.body())) {}
    // A moved-from handle is empty: it never reaches the state it handed on.
    SharedState(SharedState&& other) noexcept
        : segment_(std::move(other.segment_)), state_(std::exchange(other.state_, nullptr)) {}
    SharedState& operator=(SharedState&& other) noexcept {
        if (this != &other) {
            segment_ = std::move(other.segment_);
            state_ = std::exchange(other.state_, nullptr);
        }
        return *this;
    }
    ~SharedState() = default;

    /// The state; Error(closed) for an empty handle.
    State& shared() const {
        if (state_ == nullptr) throw_empty_handle();
        return *state_;
    }

    Segment segment_;
    State* state_ = nullptr;
};

/// The base of a primitive: its handle on `State`, with NamedObject's factories taking
/// `Parameters` and CreateOptions.
template <class Derived, class State, class... Parameters>
using SyncObject = NamedObject<Derived, SharedState<State>, CreateOptions, Parameters...>;

}  // namespace shuttle::detail
