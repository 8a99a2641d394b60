// What Value<T> and Array<T> share: one segment holding a robust Lock's state, then `count`
// elements of a trivially copyable T, and the operations on one element. Not used directly.
//
// Body layout (docs/state.md): | LockState (64 B) | T[count] from offset 64 |. The header's
// element_size / element_align / type_tag are sizeof(T) / alignof(T) / the codec's
// type_fingerprint<T>(), its capacity is `count`: opening with another T is type_mismatch.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "shuttle/codec.hpp"
#include "shuttle/detail/sync_state.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/segment.hpp"

namespace shuttle::detail {

// Object kinds of Value and Array segments. (Numbers after ObjectKind's own: candidates for
// ObjectKind::value and ObjectKind::array in segment.hpp.)
inline constexpr ObjectKind value_kind = static_cast<ObjectKind>(10);
inline constexpr ObjectKind array_kind = static_cast<ObjectKind>(11);

/// Where the elements start in the body: after the lock, on a cache line of their own.
inline constexpr uint64_t cells_data_offset = cache_line;
static_assert(sizeof(LockState) <= cells_data_offset, "the lock must fit before the elements");

/// Element types with fetch_add / fetch_sub.
template <class T>
concept arithmetic_cell =
    (std::is_integral_v<T> && !std::is_same_v<T, bool>) || std::is_floating_point_v<T>;

/// `name`, after checking it is a valid segment name (an empty one is not "anonymous" here).
std::string_view named_object(std::string_view name);

/// What a segment of cells holds.
struct CellsSpec {
    ElementType element;
    const char* what;  // "Value" or "Array", for messages
};

/// Creates the segment (named, or anonymous if `name` is empty) with an unlocked Lock, and
/// lets `fill` construct the `count` elements at the data pointer it is given.
Segment create_cells(std::string_view name, const CellsSpec& spec, uint64_t count,
                     const std::function<void(std::byte*)>& fill, const CreateOptions& options);
/// Opens a named segment of `spec`; `count` (if given) must match (else capacity_mismatch).
/// One owned by a user other than the caller and root is refused (permission) unless
/// `allow_foreign_owner` (SegmentExpectation::allow_foreign_owner).
Segment open_cells(std::string_view name, const CellsSpec& spec, std::optional<uint64_t> count,
                   bool allow_foreign_owner);

/// open(), or create() if the name does not exist (retrying, a bounded number of times, if it
/// vanishes in between). Value and Array have factory sets of their own (their create() forms
/// differ from detail::NamedObject's single parameter list).
template <class Create, class Open>
auto open_or_create_cells(Create create, Open open) {
    for (int attempt = 0;; ++attempt) {
        try {
            return open();
        } catch (const Error& error) {
            if (error.condition() != errc::not_found || attempt >= 100) throw;
        }
        try {
            return create();
        } catch (const Error& error) {
            if (error.condition() != errc::already_exists) throw;
        }
    }
}

/// A shuttle::Lock whose state is the first bytes of another object's segment; the lock handle
/// owns that segment, so get_lock() hands out a real Lock. (Built through Lock's protected
/// members: the sync API has no public constructor for an embedded Lock.)
class EmbeddedLock : public Lock {
  public:
    EmbeddedLock() = default;
    EmbeddedLock(Segment segment, const char* what) {
        segment_ = std::move(segment);
        state_ = reinterpret_cast<LockState*>(segment_.body());
        what_ = what;
    }
    EmbeddedLock(EmbeddedLock&& other) noexcept : Lock(std::move(other)) { other.state_ = nullptr; }
    EmbeddedLock& operator=(EmbeddedLock&& other) noexcept {
        Lock::operator=(std::move(other));
        other.state_ = nullptr;
        return *this;
    }
};

/// `count` elements of T behind a robust Lock, and the operations on element `index` (not
/// checked here). Lock-free T (std::atomic_ref<T>::is_always_lock_free) is read and written
/// with atomic instructions on the shared element; any other T under the Lock.
template <class T>
class Cells {
    static_assert(std::is_trivially_copyable_v<T>,
                  "Value<T> and Array<T> hold T's bytes in shared memory: T must be trivially "
                  "copyable (as ctypes types are)");
    static_assert(!std::is_pointer_v<T>, "a pointer means nothing in another process");
    static_assert(alignof(T) <= cells_data_offset, "T's alignment must be at most 64");

  public:
    /// Whether load/store/fetch_add... are single atomic instructions (no lock).
    static constexpr bool is_lock_free = std::atomic_ref<T>::is_always_lock_free;

    Cells() = default;
    Cells(Cells&& other) noexcept
        : count_(std::exchange(other.count_, 0)),
          lock_(std::move(other.lock_)),
          data_(std::exchange(other.data_, nullptr)) {}
    Cells& operator=(Cells&& other) noexcept {
        count_ = std::exchange(other.count_, 0);
        lock_ = std::move(other.lock_);
        data_ = std::exchange(other.data_, nullptr);
        return *this;
    }

    Lock& get_lock() noexcept { return lock_; }
    bool valid() const noexcept { return data_ != nullptr; }
    const std::string& name() const noexcept { return lock_.name(); }
    Segment& segment() noexcept { return lock_.segment(); }

  protected:
    static CellsSpec spec(ObjectKind kind, const char* what) noexcept {
        return {{kind, sizeof(T), alignof(T), type_fingerprint<T>()}, what};
    }
    explicit Cells(Segment segment, const char* what)
        : count_(segment.info().capacity),
          lock_(std::move(segment), what),
          data_(reinterpret_cast<T*>(lock_.segment().body() + cells_data_offset)) {}

    T load_at(std::size_t index, std::memory_order order) const {
        if constexpr (is_lock_free) {
            return std::atomic_ref<T>(data_[index]).load(order);
        } else {
            return locked([&] { return data_[index]; });
        }
    }
    void store_at(std::size_t index, const T& desired, std::memory_order order) {
        if constexpr (is_lock_free) {
            std::atomic_ref<T>(data_[index]).store(desired, order);
        } else {
            locked([&] { data_[index] = desired; });
        }
    }
    std::atomic_ref<T> atomic_at(std::size_t index) const noexcept {
        static_assert(is_lock_free,
                      "this atomic operation needs a T whose std::atomic_ref is lock-free: "
                      "another T would fall back to a lock private to each process");
        return std::atomic_ref<T>(data_[index]);
    }

    /// Runs `body` holding the lock (or within the caller's hold of it: the lock is not
    /// re-entrant, so a caller inside `with get_lock()` must not take it again).
    template <class Body>
    auto locked(Body body) const {
        if (lock_.held_by_caller()) return body();
        std::lock_guard guard(lock_);
        return body();
    }

    // Declared before lock_: read from the segment before it moves into the lock.
    std::size_t count_ = 0;
    mutable EmbeddedLock lock_;
    T* data_ = nullptr;
};

}  // namespace shuttle::detail
