// Value<T>: Python's multiprocessing.Value for processes — one T in shared memory, with the
// robust Lock that guards it (get_lock()) in the same segment.
//
//     auto counter = shuttle::Value<int>::anonymous(0);     // Value('i', 0), before fork()
//     {   // with counter.get_lock(): counter.value += 1
//         std::lock_guard guard(counter.get_lock());
//         counter.store(counter.load() + 1);
//     }
//     counter.fetch_add(1);                                 // the same, one atomic instruction
//
// T is trivially copyable (as a ctypes type), at most 64-byte aligned. Named (create / open /
// open_or_create / remove: opening with another T is refused, Error(type_mismatch)) or
// anonymous (before fork(): children inherit it). Handles are movable, not copyable, valid in a
// fork()ed child; every member but the moves is thread- and process-safe.
//
// load() and store() are always safe from any process. For a lock-free T (int, double, any
// T of 1, 2, 4 or 8 bytes: is_lock_free) they are atomic instructions, and so are exchange,
// compare_exchange, fetch_add / fetch_sub (arithmetic T) and what atomic() offers (a
// std::atomic_ref<T>: fetch_and, ...): these never block and never need the lock. For any
// other T, load() and store() take the lock themselves (or run within the caller's hold of it), as
// Python's synchronized value does. A read-modify-write like "+= 1" is atomic only under get_lock()
// or as fetch_add — and under the lock only against processes that take the lock too: a
// lock-free fetch_add elsewhere does not (keep to one discipline per value).
//
// WHEN A PROCESS DIES holding get_lock() (SIGKILL included): the lock is recovered by the next
// acquirer, which sees get_lock().previous_owner_died() == true until mark_consistent() (see
// lock.hpp). A lock-free T is never torn; another T written by a store() that was cut short
// may be half old, half new: the flag says so. Atomic operations are never left half done.
#pragma once

#include <atomic>
#include <string_view>

#include "shuttle/detail/shared_cells.hpp"

namespace shuttle {

template <class T>
class Value : public detail::Cells<T> {
    using Base = detail::Cells<T>;

  public:
    Value() = default;

    /// Creates a named value holding `initial`. Throws Error(already_exists, invalid_name,
    /// permission, no_space). `options.remove_on_destroy` unlinks the name with this handle.
    static Value create(std::string_view name, const T& initial = T{},
                        const CreateOptions& options = {}) {
        return Value(make(detail::named_object(name), initial, options));
    }
    /// Attaches to a named value. Throws Error(not_found, kind_mismatch (not a Value),
    /// type_mismatch (another T), permission (owned by another user who is not root, unless
    /// `options.allow_foreign_owner`: another user may have planted it under this name), ...).
    static Value open(std::string_view name, const CreateOptions& options = {}) {
        return Value(detail::open_cells(name, Base::spec(detail::value_kind, "Value"), 1,
                                        options.allow_foreign_owner));
    }
    /// Opens `name`, creating it with `initial` first if it does not exist. Race-free.
    static Value open_or_create(std::string_view name, const T& initial = T{},
                                const CreateOptions& options = {}) {
        return detail::open_or_create_cells([&] { return create(name, initial, options); },
                                            [&] { return open(name, options); });
    }
    /// A value in anonymous shared memory: create before fork(), children inherit it.
    static Value anonymous(const T& initial = T{}) { return Value(make({}, initial, {})); }
    /// Unlinks a name; attached handles keep working. False if there was no such name.
    static bool remove(std::string_view name) { return Segment::remove(name); }

    /// Python's v.value. Lock-free T: an atomic load, never blocks. Other T: under the lock
    /// (blocks while another thread holds it; `order` is then the lock's).
    T load(std::memory_order order = std::memory_order_seq_cst) const {
        return this->load_at(0, order);
    }
    /// Python's v.value = desired. As load().
    void store(const T& desired, std::memory_order order = std::memory_order_seq_cst) {
        this->store_at(0, desired, order);
    }

    // ---- lock-free T only (a static_assert says so otherwise); never block ----
    T exchange(const T& desired, std::memory_order order = std::memory_order_seq_cst) {
        return this->atomic_at(0).exchange(desired, order);
    }
    /// Stores `desired` if the value equals `expected` (bytewise); else loads it into
    /// `expected`. True if stored.
    bool compare_exchange(T& expected, const T& desired,
                          std::memory_order order = std::memory_order_seq_cst) {
        return this->atomic_at(0).compare_exchange_strong(expected, desired, order);
    }
    /// Adds `operand` atomically; returns the value before.
    T fetch_add(T operand, std::memory_order order =
                               std::memory_order_seq_cst) requires detail::arithmetic_cell<T> {
        return this->atomic_at(0).fetch_add(operand, order);
    }
    T fetch_sub(T operand, std::memory_order order =
                               std::memory_order_seq_cst) requires detail::arithmetic_cell<T> {
        return this->atomic_at(0).fetch_sub(operand, order);
    }
    /// The shared T as a std::atomic_ref, for the other atomic operations (fetch_and, ...;
    /// not wait/notify: libstdc++'s are private to a process). Valid as long as this handle.
    std::atomic_ref<T> atomic() const noexcept { return this->atomic_at(0); }

  private:
    explicit Value(Segment segment) : Base(std::move(segment), "Value") {}

    static Segment make(std::string_view name, const T& initial, const CreateOptions& options) {
        return detail::create_cells(
            name, Base::spec(detail::value_kind, "Value"), 1,
            [&](std::byte* data) { new (data) T(initial); }, options);
    }
};

}  // namespace shuttle
