// The factory set every shared object repeats — create / open / open_or_create / anonymous /
// open_fd / remove — written once, as a CRTP base (Derived is the object's handle class).
//
//     class Lock : public detail::NamedObject<Lock, detail::LockHandle, CreateOptions> { ... };
//     class Barrier : public detail::NamedObject<Barrier, Handle, CreateOptions, uint32_t> ...
//     (sync/'s primitives spell theirs detail::SyncObject<Barrier, BarrierState, uint32_t>)
//
// The base derives from `Handle` (what the object's members need: its segment, its state) and
// declares the factories with the object's creation `Parameters` (a Semaphore's initial value, a
// queue's capacity, ...) and `Options`. Derived, as a friend of the base, supplies:
//
//   explicit Derived(Segment)                  attaches a handle to a created or opened segment
//   static Segment make_segment(std::string_view name, Parameters..., const Options&)
//                                              a new segment: named (`name` already validated)
//                                              or, for an empty name, anonymous
//   static SegmentExpectation expectation(...) what open() and open_fd() require (it takes the
//                                              Options if they describe the object, see below)
// and may supply (the base's defaults do nothing):
//   static void check_parameters(Parameters...)         before anything is created or opened
//                                                       (Error(invalid_argument))
//   static void check_opened(const Segment&[, const Options&])  refuses what open() found
//                                                       (Error(kind_mismatch), ...)
//   static void check_existing(const Derived&, Parameters...)   open_or_create() found one:
//                                                       Error(capacity_mismatch) if it is not
//                                                       what these parameters would create
//
// Options: a sync primitive's are the plain CreateOptions (the name's mode and removal), so its
// open_fd() and anonymous() take none, and its open() only for allow_foreign_owner. Richer options
// (a queue's: type tag, flags) also describe the object, so open(), open_fd() and anonymous() take
// them too.
#pragma once

#include <string_view>
#include <type_traits>
#include <utility>

#include "shuttle/error.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::detail {

template <class Derived, class Handle, class Options, class... Parameters>
class NamedObject : public Handle {
    /// Whether the options describe the object (checked by open()), or only its name.
    static constexpr bool options_describe_object = !std::is_same_v<Options, CreateOptions>;

  public:
    /// Creates a named object. Throws Error(invalid_name, already_exists, permission, no_space,
    /// invalid_argument). With `options.remove_on_destroy`, destroying this handle (in this
    /// process) also removes the name.
    static Derived create(std::string_view name, Parameters... parameters,
                          const Options& options = {}) {
        Segment::validate_name(name);  // an empty name is an error here, not "anonymous"
        Derived::check_parameters(parameters...);
        return Derived(Derived::make_segment(name, parameters..., options));
    }

    /// Attaches to a named object of this kind. Throws Error(not_found, kind_mismatch,
    /// type_mismatch, ...) if `name` is not one, Error(permission) if another user than the
    /// caller and root owns it, unless `options.allow_foreign_owner` (Segment::open()).
    static Derived open(std::string_view name, const Options& options = {}) {
        if constexpr (options_describe_object) {
            return opened(
                Segment::open(name, with_owner_rule(Derived::expectation(options), options)),
                options);
        } else {
            return opened(Segment::open(name, with_owner_rule(Derived::expectation(), options)));
        }
    }

    /// Opens `name`, creating it first if it does not exist; race-free between processes. The
    /// parameters are checked, but used only if it creates.
    static Derived open_or_create(std::string_view name, Parameters... parameters,
                                  const Options& options = {}) {
        Derived::check_parameters(parameters...);
        // A name can vanish between a failed create and the open (its remover was quicker):
        // then try again, a bounded number of times.
        for (int attempt = 0;; ++attempt) {
            try {
                Derived object = open(name, options);
                Derived::check_existing(object, parameters...);
                return object;
            } catch (const Error& error) {
                if (error.condition() != errc::not_found || attempt >= open_or_create_attempts) {
                    throw;
                }
            }
            try {
                return Derived(Derived::make_segment(name, parameters..., options));
            } catch (const Error& error) {
                if (error.condition() != errc::already_exists) throw;
            }
        }
    }

    /// An object in anonymous shared memory: create it before fork(), children inherit it (or
    /// hand its descriptor to an exec'd program: segment().fd(), open_fd()).
    static Derived anonymous(Parameters... parameters) requires(!options_describe_object) {
        Derived::check_parameters(parameters...);
        return Derived(Derived::make_segment({}, parameters..., Options{}));
    }
    static Derived anonymous(Parameters... parameters,
                             const Options& options = {}) requires options_describe_object {
        Derived::check_parameters(parameters...);
        return Derived(Derived::make_segment({}, parameters..., options));
    }

    /// Attaches the object behind a descriptor (an anonymous one's, handed to an exec'd
    /// program); takes ownership of `fd` only on success. Throws as open().
    static Derived open_fd(int fd) requires(!options_describe_object) {
        return opened(Segment::open_fd(fd, Derived::expectation()));
    }
    static Derived open_fd(int fd, const Options& options = {}) requires options_describe_object {
        return opened(Segment::open_fd(fd, Derived::expectation(options)), options);
    }

    /// Removes a name; attached handles keep working. False if there was no such name.
    static bool remove(std::string_view name) { return Segment::remove(name); }

  protected:
    using Handle::Handle;

    // The defaults of the optional hooks (see the top of this file).
    static void check_parameters(const Parameters&...) noexcept {}
    static void check_opened(const Segment&) noexcept {}
    static void check_opened(const Segment&, const Options&) noexcept {}
    static void check_existing(const Derived&, const Parameters&...) noexcept {}

  private:
    static constexpr int open_or_create_attempts = 100;

    static Derived opened(Segment segment) {
        Derived::check_opened(segment);
        return Derived(std::move(segment));
    }
    static Derived opened(Segment segment, const Options& options) {
        Derived::check_opened(segment, options);
        return Derived(std::move(segment));
    }
    /// `expected`, with the options' allow_foreign_owner if they have one (CreateOptions and
    /// QueueOptions do).
    static SegmentExpectation with_owner_rule(SegmentExpectation expected, const Options& options) {
        if constexpr (requires { options.allow_foreign_owner; }) {
            expected.allow_foreign_owner = options.allow_foreign_owner;
        }
        return expected;
    }
};

}  // namespace shuttle::detail
