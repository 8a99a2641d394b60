// List<T>: Python's Manager().list() for processes — a list in shared memory whose elements go
// through the codec (shuttle/codec.hpp).
//
//     auto numbers = shuttle::List<int>::anonymous({1, 2, 3});   // before fork()
//     numbers.append(4);                                        // l.append(4)
//     numbers.set(0, numbers.get(0) - 1);                       // l[0] -= 1 (two calls)
//     numbers.update(0, [](int x) { return x - 1; });           // the same, one atomic call
//     std::vector<int> copy = numbers.snapshot();               // l[:]
//
// Indexes are Python's: 0..size()-1, or negative from the end (-1 is the last); one out of
// range is Error(invalid_argument). Naming, handles, atomicity, crash safety and memory as
// Dict (dict.hpp): each call is atomic and all-or-nothing even if its process is killed inside
// it; mutating calls throw Error(no_space) past max_bytes and change nothing.
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "shuttle/dict.hpp"

namespace shuttle {

template <class T>
class List : public detail::Container<List<T>, detail::ListStore> {
    static_assert(encodable<T>, "List<T>: the codec must know T");

  public:
    using value_type = T;

    List() = default;

    // create(name, options), open(name), open_or_create(name, options), remove(name):
    // detail::Container's (as Dict's).

    /// A list in anonymous shared memory holding `initial`: create before fork().
    static List anonymous(std::span<const T> initial = {}, const ContainerOptions& options = {}) {
        List list(detail::ListStore::create({}, tag(), options));
        list.extend(initial);
        return list;
    }
    static List anonymous(std::initializer_list<T> initial, const ContainerOptions& options = {}) {
        return anonymous(std::span<const T>(initial.begin(), initial.size()), options);
    }

    /// l[index]. Throws Error(invalid_argument) out of range, Error(bad_message) if the stored
    /// bytes do not decode as T.
    T get(int64_t index) const {
        T value{};
        get(index, value);
        return value;
    }
    /// l[index] into `out`, reusing its storage.
    void get(int64_t index, T& out) const {
        detail::Store::Guard guard(store_);
        detail::decode_or_throw(store_.at(checked(index, "get")), out, "List");
    }
    /// l[index] = value.
    void set(int64_t index, const T& value) {
        detail::Bytes encoded = detail::encode_scratch(value, 1);
        detail::Store::Guard guard(store_);
        store_.assign(checked(index, "set"), encoded);
    }
    /// l[index] = change(l[index]) as one atomic step (`change` runs holding the lock: keep it
    /// short, call no Dict or List from it). Returns the new value.
    template <class Change>
    T update(int64_t index, Change change) {
        detail::Store::Guard guard(store_);
        const uint64_t at = checked(index, "update");
        T current{};
        detail::decode_or_throw(store_.at(at), current, "List");
        T next = change(std::as_const(current));
        store_.assign(at, detail::encode_scratch(next, 1));
        return next;
    }
    /// l.append(value).
    void append(const T& value) {
        detail::Bytes encoded = detail::encode_scratch(value, 1);
        detail::Store::Guard guard(store_);
        store_.append(encoded);
    }
    /// l.extend(values): each appended in turn (each append atomic, not the whole).
    void extend(std::span<const T> values) {
        for (const T& value : values) append(value);
    }
    /// l.insert(index, value): before `index`; an index past either end inserts at that end,
    /// as Python's does.
    void insert(int64_t index, const T& value) {
        detail::Bytes encoded = detail::encode_scratch(value, 1);
        detail::Store::Guard guard(store_);
        const auto size = static_cast<int64_t>(store_.size());
        if (index < 0) index = std::max<int64_t>(0, index + size);
        store_.insert(static_cast<uint64_t>(std::min(index, size)), encoded);
    }
    /// l.pop(index) (default the last) as one atomic step; an empty optional if the list is
    /// empty, Error(invalid_argument) if `index` is out of range of a non-empty list.
    std::optional<T> pop(int64_t index = -1) {
        detail::Store::Guard guard(store_);
        if (store_.size() == 0) return std::nullopt;
        const uint64_t at = checked(index, "pop");
        std::optional<T> value(std::in_place);
        detail::decode_or_throw(store_.at(at), *value, "List");
        store_.erase(at);
        return value;
    }
    /// del l[index].
    void erase(int64_t index) {
        detail::Store::Guard guard(store_);
        store_.erase(checked(index, "erase"));
    }
    // clear(), size(), empty(): detail::Container's.
    /// l[:]: a consistent copy of every element, taken under the lock.
    std::vector<T> snapshot() const {
        std::vector<T> copy;
        detail::Store::Guard guard(store_);
        copy.reserve(store_.size());
        store_.for_each([&](detail::Bytes value) {
            detail::decode_or_throw(value, copy.emplace_back(), "List");
        });
        return copy;
    }

    // get_lock(), valid(), name(), memory_in_use(), max_bytes(): detail::Container's.

  private:
    using Base = detail::Container<List<T>, detail::ListStore>;
    friend Base;
    using Base::store_;
    explicit List(detail::ListStore store) : Base(std::move(store)) {}
    static constexpr uint64_t tag() noexcept { return type_fingerprint<std::vector<T>>(); }

    /// `index` as an offset into the list (Python's negative indexes), or throws. Under the lock.
    uint64_t checked(int64_t index, const char* operation) const {
        const auto size = static_cast<int64_t>(store_.size());
        const int64_t at = index < 0 ? index + size : index;
        if (at < 0 || at >= size) detail::throw_list_index(operation, index, store_.size());
        return static_cast<uint64_t>(at);
    }
};

}  // namespace shuttle
