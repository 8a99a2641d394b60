// Array<T>: Python's multiprocessing.Array for processes — a fixed number of T in shared
// memory, with the robust Lock that guards them (get_lock()) in the same segment.
//
//     auto samples = shuttle::Array<double>::anonymous(10);   // Array('d', 10): ten 0.0
//     samples.store(3, 2.5);                                  // samples[3] = 2.5
//     samples.fetch_add(3, 1.0);                              // lock-free
//     {   // with samples.get_lock(): several elements as one step
//         std::lock_guard guard(samples.get_lock());
//         samples[0] = samples[1] + samples[2];
//     }
//     std::vector<double> copy = samples.snapshot();          // samples[:]
//
// Everything Value<T> says about T, naming, handles, lock-free operations and dying holders
// holds here per element (see value.hpp). The size is fixed at creation; open() takes any size.
//
// Element access, two ways:
//   * load / store / exchange / compare_exchange / fetch_xxx(index, ...): always safe from any
//     process, atomic per element (lock-free T) or under the lock (other T). The index is
//     checked: Error(invalid_argument) beyond size().
//   * operator[] (unchecked, like std::vector's), at() (checked, Error(invalid_argument)) and
//     elements(): plain references into the shared memory, for use under get_lock(). Plain
//     accesses must not race with another process's lock-free operations on the same element
//     (a data race): use one way per element, or load/store under the lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "shuttle/detail/shared_cells.hpp"

namespace shuttle {

namespace detail {
/// Throw Error(invalid_argument) naming the index (or count of values) and the size.
[[noreturn]] void throw_index_out_of_range(const char* what, std::size_t index, std::size_t size);
[[noreturn]] void throw_size_mismatch(const char* what, std::size_t values, std::size_t size);
}  // namespace detail

template <class T>
class Array : public detail::Cells<T> {
    using Base = detail::Cells<T>;

  public:
    Array() = default;

    /// Creates a named array of `size` elements, each T{} (zero for numbers). Throws
    /// Error(already_exists, invalid_name, permission, no_space).
    static Array create(std::string_view name, std::size_t size,
                        const CreateOptions& options = {}) {
        return Array(make(detail::named_object(name), size, {}, options));
    }
    /// Creates a named array holding a copy of `initial`.
    static Array create(std::string_view name, std::span<const T> initial,
                        const CreateOptions& options = {}) {
        return Array(make(detail::named_object(name), initial.size(), initial, options));
    }
    static Array create(std::string_view name, std::initializer_list<T> initial,
                        const CreateOptions& options = {}) {
        return create(name, std::span<const T>(initial.begin(), initial.size()), options);
    }
    /// Attaches to a named array of any size. Throws Error(not_found, kind_mismatch (not an
    /// Array), type_mismatch (another T), permission (owned by another user who is not root,
    /// unless `options.allow_foreign_owner`), ...).
    static Array open(std::string_view name, const CreateOptions& options = {}) {
        return Array(detail::open_cells(name, Base::spec(detail::array_kind, "Array"), std::nullopt,
                                        options.allow_foreign_owner));
    }
    /// Opens `name`, creating it with `size` elements first if it does not exist; an existing
    /// array of another size is Error(capacity_mismatch). Race-free.
    static Array open_or_create(std::string_view name, std::size_t size,
                                const CreateOptions& options = {}) {
        return detail::open_or_create_cells(
            [&] { return create(name, size, options); },
            [&] {
                return Array(detail::open_cells(name, Base::spec(detail::array_kind, "Array"), size,
                                                options.allow_foreign_owner));
            });
    }
    /// An array in anonymous shared memory: create before fork(), children inherit it.
    static Array anonymous(std::size_t size) { return Array(make({}, size, {}, {})); }
    static Array anonymous(std::span<const T> initial) {
        return Array(make({}, initial.size(), initial, {}));
    }
    static Array anonymous(std::initializer_list<T> initial) {
        return anonymous(std::span<const T>(initial.begin(), initial.size()));
    }
    static bool remove(std::string_view name) { return Segment::remove(name); }

    /// Python's len(a). Fixed at creation.
    std::size_t size() const noexcept { return this->count_; }

    // ---- checked, always safe (see the top of this file) ----
    T load(std::size_t index, std::memory_order order = std::memory_order_seq_cst) const {
        return this->load_at(checked(index, "load"), order);
    }
    void store(std::size_t index, const T& desired,
               std::memory_order order = std::memory_order_seq_cst) {
        this->store_at(checked(index, "store"), desired, order);
    }
    T exchange(std::size_t index, const T& desired,
               std::memory_order order = std::memory_order_seq_cst) {
        return this->atomic_at(checked(index, "exchange")).exchange(desired, order);
    }
    bool compare_exchange(std::size_t index, T& expected, const T& desired,
                          std::memory_order order = std::memory_order_seq_cst) {
        return this->atomic_at(checked(index, "compare_exchange"))
            .compare_exchange_strong(expected, desired, order);
    }
    T fetch_add(
        std::size_t index, T operand,
        std::memory_order order = std::memory_order_seq_cst) requires detail::arithmetic_cell<T> {
        return this->atomic_at(checked(index, "fetch_add")).fetch_add(operand, order);
    }
    T fetch_sub(
        std::size_t index, T operand,
        std::memory_order order = std::memory_order_seq_cst) requires detail::arithmetic_cell<T> {
        return this->atomic_at(checked(index, "fetch_sub")).fetch_sub(operand, order);
    }

    /// Element `index` as a std::atomic_ref (lock-free T), for the other atomic operations.
    std::atomic_ref<T> atomic(std::size_t index) const {
        return this->atomic_at(checked(index, "atomic"));
    }

    /// A copy of every element, taken under the lock (Python's a[:]). Blocks while another
    /// thread holds the lock.
    std::vector<T> snapshot() const {
        return this->locked([&] {
            std::vector<T> copy(size());
            for (std::size_t index = 0; index < copy.size(); ++index) copy[index] = read(index);
            return copy;
        });
    }
    /// Replaces every element under the lock (Python's a[:] = values). Throws
    /// Error(invalid_argument) unless values.size() == size().
    void assign(std::span<const T> values) {
        if (values.size() != size()) detail::throw_size_mismatch("assign", values.size(), size());
        this->locked([&] {
            for (std::size_t index = 0; index < values.size(); ++index) write(index, values[index]);
        });
    }

    // ---- plain references, for use under get_lock() ----
    /// Unchecked (an index >= size() is undefined behaviour, as std::vector's).
    T& operator[](std::size_t index) noexcept { return this->data_[index]; }
    const T& operator[](std::size_t index) const noexcept { return this->data_[index]; }
    /// Checked: Error(invalid_argument) if index >= size().
    T& at(std::size_t index) { return this->data_[checked(index, "at")]; }
    const T& at(std::size_t index) const { return this->data_[checked(index, "at")]; }
    std::span<T> elements() noexcept { return {this->data_, size()}; }

  private:
    explicit Array(Segment segment) : Base(std::move(segment), "Array") {}

    static Segment make(std::string_view name, std::size_t size, std::span<const T> initial,
                        const CreateOptions& options) {
        return detail::create_cells(
            name, Base::spec(detail::array_kind, "Array"), size,
            [&](std::byte* data) {
                T* elements = reinterpret_cast<T*>(data);
                for (std::size_t index = 0; index < size; ++index) {
                    new (elements + index) T(initial.empty() ? T{} : initial[index]);
                }
            },
            options);
    }

    std::size_t checked(std::size_t index, const char* what) const {
        if (index >= size()) detail::throw_index_out_of_range(what, index, size());
        return index;
    }
    /// Under the lock: atomic for lock-free T (lock-free writers do not take the lock).
    T read(std::size_t index) const {
        if constexpr (Base::is_lock_free) {
            return std::atomic_ref<T>(this->data_[index]).load(std::memory_order_relaxed);
        } else {
            return this->data_[index];
        }
    }
    void write(std::size_t index, const T& value) {
        if constexpr (Base::is_lock_free) {
            std::atomic_ref<T>(this->data_[index]).store(value, std::memory_order_relaxed);
        } else {
            this->data_[index] = value;
        }
    }
};

}  // namespace shuttle
