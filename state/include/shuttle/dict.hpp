// Dict<K, V>: Python's Manager().dict() for processes — a hash map in shared memory whose keys
// and values go through the codec (shuttle/codec.hpp: strings, vectors, variants, cereal types).
//
//     auto accounts = shuttle::Dict<std::string, int64_t>::anonymous();   // before fork()
//     accounts.set("alice", 100);                                          // d['alice'] = 100
//     std::optional<int64_t> balance = accounts.get("alice");             // d.get('alice')
//     accounts.update("alice", [](std::optional<int64_t> old) { return old.value_or(0) + 5; });
//     for (auto& [name, cents] : accounts.items()) ...                     // a snapshot
//
// Named (create / open / open_or_create / remove; opening with other K or V is
// Error(type_mismatch)) or anonymous (before fork(): children inherit it). Handles are movable,
// not copyable, valid in a fork()ed child; every member but the moves is thread- and
// process-safe.
//
// EACH CALL IS ATOMIC: it holds the container's robust Lock (get_lock()) for its duration, so it
// blocks while another thread or process is inside a call (microseconds: the codec's work is
// done before the lock where it can be). A process killed at any instruction inside a call leaves
// the container as if the call had been made whole or not at all; the next call from any process
// finishes or discards it (docs/state.md "Dict and List"). update() is an atomic
// read-modify-write; for several calls as one step hold get_lock() around them (calls inside
// run within that hold) — then only each call, not the group, is crash-atomic.
//
// Memory grows with use up to ContainerOptions::max_bytes (default 1 GiB of reserved address
// space); past it, or when /dev/shm is full, a mutating call throws Error(no_space) and changes
// nothing. Garbage (replaced and erased entries) is compacted away as it accumulates.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "shuttle/codec.hpp"
#include "shuttle/detail/shared_store.hpp"

namespace shuttle {

namespace detail {
/// Encodes `value` into this thread's buffer number `slot` (reused: no allocation once warm).
template <class T>
Bytes encode_scratch(const T& value, int slot) {
    thread_local std::vector<std::byte> buffers[2];
    std::vector<std::byte>& buffer = buffers[slot];
    buffer.resize(encoded_size(value));
    (void)encode(value, std::span<std::byte>(buffer));
    return buffer;
}

/// Decodes `bytes` into `out`, or throws Error(bad_message) naming `what`.
template <class T>
void decode_or_throw(Bytes bytes, T& out, const char* what) {
    if (!decode(bytes, out)) throw_undecodable(what);
}
}  // namespace detail

template <class K, class V>
class Dict : public detail::Container<Dict<K, V>, detail::DictStore> {
    static_assert(encodable<K> && encodable<V>, "Dict<K, V>: the codec must know K and V");

  public:
    using key_type = K;
    using mapped_type = V;

    Dict() = default;

    // create(name, options), open(name), open_or_create(name, options), remove(name):
    // detail::Container's.

    /// A dict in anonymous shared memory: create before fork(), children inherit it.
    static Dict anonymous(const ContainerOptions& options = {}) {
        return Dict(detail::DictStore::create({}, tag(), options));
    }

    /// d.get(key): the value, or an empty optional. Blocks while another call runs. Throws
    /// Error(bad_message) if the stored bytes do not decode as V (a corrupt segment).
    std::optional<V> get(const K& key) const {
        detail::Bytes encoded = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        return find_locked(encoded);
    }
    /// The value into `out` (reusing its storage); false (out unchanged) if absent.
    bool get(const K& key, V& out) const {
        detail::Bytes encoded = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        std::optional<detail::Bytes> stored = store_.find(encoded);
        if (!stored) return false;
        detail::decode_or_throw(*stored, out, "Dict");
        return true;
    }
    /// d.get(key, fallback).
    V get_or(const K& key, V fallback) const {
        get(key, fallback);
        return fallback;
    }
    /// key in d.
    bool contains(const K& key) const {
        detail::Bytes encoded = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        return store_.find(encoded).has_value();
    }

    /// d[key] = value. Throws Error(no_space) (nothing changed).
    void set(const K& key, const V& value) {
        detail::Bytes encoded_key = detail::encode_scratch(key, 0);
        detail::Bytes encoded_value = detail::encode_scratch(value, 1);
        detail::Store::Guard guard(store_);
        store_.assign(encoded_key, encoded_value);
    }
    /// d[key] = change(d.get(key)) as one atomic step: `change` (called once, holding the lock:
    /// keep it short, and call no Dict or List from it) gets the current value or an empty
    /// optional and returns the new one. Returns the new value. If `change` throws, nothing
    /// changes.
    template <class Change>
    V update(const K& key, Change change) {
        detail::Bytes encoded_key = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        const std::optional<V> current = find_locked(encoded_key);
        V next = change(current);
        store_.assign(encoded_key, detail::encode_scratch(next, 1));
        return next;
    }
    /// del d[key]; false if it was absent.
    bool erase(const K& key) {
        detail::Bytes encoded = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        return store_.erase(encoded);
    }
    /// d.pop(key, None): removes and returns the value, as one atomic step.
    std::optional<V> pop(const K& key) {
        detail::Bytes encoded = detail::encode_scratch(key, 0);
        detail::Store::Guard guard(store_);
        std::optional<V> value = find_locked(encoded);
        if (value) store_.erase(encoded);
        return value;
    }
    // clear(), size(), empty(): detail::Container's.

    /// A consistent snapshot of every (key, value), copied under the lock (no order promised).
    std::vector<std::pair<K, V>> items() const {
        std::vector<std::pair<K, V>> copy;
        detail::Store::Guard guard(store_);
        copy.reserve(store_.size());
        store_.for_each([&](detail::Bytes key, detail::Bytes value) {
            auto& item = copy.emplace_back();
            detail::decode_or_throw(key, item.first, "Dict");
            detail::decode_or_throw(value, item.second, "Dict");
        });
        return copy;
    }
    std::vector<K> keys() const {
        std::vector<K> copy;
        detail::Store::Guard guard(store_);
        copy.reserve(store_.size());
        store_.for_each([&](detail::Bytes key, detail::Bytes) {
            detail::decode_or_throw(key, copy.emplace_back(), "Dict");
        });
        return copy;
    }

    // get_lock(), valid(), name(), memory_in_use(), max_bytes(): detail::Container's.

  private:
    using Base = detail::Container<Dict<K, V>, detail::DictStore>;
    friend Base;
    using Base::store_;
    explicit Dict(detail::DictStore store) : Base(std::move(store)) {}
    static constexpr uint64_t tag() noexcept { return type_fingerprint<std::pair<K, V>>(); }

    /// The value stored under `encoded`, decoded; the caller holds a Guard.
    std::optional<V> find_locked(detail::Bytes encoded) const {
        std::optional<detail::Bytes> stored = store_.find(encoded);
        if (!stored) return std::nullopt;
        std::optional<V> value(std::in_place);
        detail::decode_or_throw(*stored, *value, "Dict");
        return value;
    }
};

}  // namespace shuttle
