// Dict and List storage: the growing heap, the redo log and the two containers' tables
// (shared_store.hpp, docs/state.md "Dict and List").
#include "shuttle/detail/shared_store.hpp"

#include <cerrno>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "shuttle/detail/os.hpp"

namespace shuttle::detail {
namespace {

constexpr uint64_t max_reservation = uint64_t{1} << 40;  // slot words keep offsets in 40 bits
constexpr uint64_t min_growth = uint64_t{64} << 10;
constexpr uint64_t page = 4096;
constexpr uint64_t no_index = std::numeric_limits<uint64_t>::max();

constexpr uint64_t round_up(uint64_t value, uint64_t to) noexcept {
    return (value + to - 1) / to * to;
}

/// The smallest power of two >= max(8, wanted).
uint64_t table_size_for(uint64_t wanted) noexcept {
    uint64_t size = 8;
    while (size < wanted) size *= 2;
    return size;
}

/// Orders the stores around a commit point as the program says: a process killed between two
/// statements has made exactly the earlier ones (the kernel drains its stores when it dies).
inline void keep_program_order() noexcept {
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

BodySizeFunction store_body_size() {
    return [](const SegmentInfo& info) -> std::optional<uint64_t> {
        if (info.element_size != 1 || info.element_align != 8) return std::nullopt;
        if (info.capacity > max_reservation) return std::nullopt;
        return sizeof(StoreControl);
    };
}

}  // namespace

Store::Store(Segment segment, const char* what) : what_(what) {
    reservation_ = segment.info().capacity;
    body_offset_ =
        static_cast<uint64_t>(segment.body() - reinterpret_cast<std::byte*>(&segment.header()));
    int error = 0;
    void* address = map_shared(segment.fd(), reservation_, error);
    if (address == nullptr) {
        throw Error(errc::no_space, fmt::format("{}: cannot reserve {} bytes of address space: {}",
                                                what, reservation_, std::strerror(error)));
    }
    base_ = static_cast<std::byte*>(address);
    lock_ = EmbeddedLock(std::move(segment), what);
}

Store::Store(Store&& other) noexcept
    : lock_(std::move(other.lock_)),
      base_(std::exchange(other.base_, nullptr)),
      reservation_(std::exchange(other.reservation_, 0)),
      body_offset_(other.body_offset_),
      what_(other.what_) {}

Store& Store::operator=(Store&& other) noexcept {
    if (this != &other) {
        if (base_ != nullptr) unmap(base_, reservation_);
        lock_ = std::move(other.lock_);
        base_ = std::exchange(other.base_, nullptr);
        reservation_ = std::exchange(other.reservation_, 0);
        body_offset_ = other.body_offset_;
        what_ = other.what_;
    }
    return *this;
}

Store::~Store() {
    if (base_ != nullptr) unmap(base_, reservation_);
}

Store Store::create(std::string_view name, const Spec& spec, uint64_t type_tag,
                    const ContainerOptions& options) {
    if (options.max_bytes > max_reservation) {
        throw Error(errc::invalid_argument, fmt::format("{}: max_bytes {} exceeds {}", spec.what,
                                                        options.max_bytes, max_reservation));
    }
    SegmentInfo info;
    info.kind = spec.kind;
    info.element_size = 1;
    info.element_align = 8;
    info.type_tag = type_tag;
    info.capacity = options.max_bytes;
    auto init = [&](Segment& segment) {
        if (segment.mapped_size() + page > options.max_bytes) {
            throw Error(errc::invalid_argument,
                        fmt::format("{}: max_bytes {} leaves no room for entries", spec.what,
                                    options.max_bytes));
        }
        auto& control = *reinterpret_cast<StoreControl*>(segment.body());
        lock_init(control.lock, false);
        control.file_size = segment.mapped_size();
        control.data_start = round_up(segment.mapped_size(), cache_line);
        control.roots[heap_begin] = control.data_start;
        control.roots[heap_top] = control.data_start;
    };
    Segment segment =
        name.empty() ? Segment::create_anonymous(info, store_body_size(), init)
                     : Segment::create(
                           named_object(name), info, store_body_size(), init,
                           {.mode = options.mode, .remove_on_destroy = options.remove_on_destroy});
    return Store(std::move(segment), spec.what);
}

Store Store::open(std::string_view name, const Spec& spec, uint64_t type_tag,
                  bool allow_foreign_owner) {
    SegmentExpectation expected;
    expected.allow_foreign_owner = allow_foreign_owner;
    expected.kind = spec.kind;
    expected.element_size = 1;
    expected.element_align = 8;
    expected.type_tag = type_tag;
    expected.known_flags = 0;
    expected.body_size = store_body_size();
    Store store(Segment::open(name, expected), spec.what);
    // Values that steer accesses are checked once here; the heap's own offsets on every use.
    const StoreControl& control = store.control();
    const uint64_t file_size = control.file_size;
    detail::FileStatus actual;
    if (int error = detail::file_status(store.lock_.segment().fd(), actual)) {
        throw_system_error(error, "fstat");
    }
    if (file_size > store.reservation_ || file_size > actual.size ||
        control.data_start < store.body_offset_ + sizeof(StoreControl) ||
        control.data_start > file_size) {
        throw Error(errc::corrupt,
                    fmt::format("{} {}: heap bounds out of range", spec.what, store.name()));
    }
    return store;
}

// ---- the lock and repair ----

Store::Guard::Guard(const Store& store) : store_(store), taken_(!store.lock_.held_by_caller()) {
    if (taken_) store.lock_.lock();
    // A committed log still present means its writer died after the commit point: replay it.
    // (A live holder always clears it before unlocking.)
    if (store.control().log_length.load(std::memory_order_acquire) != 0) {
        try {
            store.repair();
        } catch (...) {
            if (taken_) store.lock_.unlock();
            throw;
        }
    }
    if (taken_ && store.lock_.previous_owner_died()) store.lock_.mark_consistent();
}

Store::Guard::~Guard() {
    if (taken_) store_.lock_.unlock();
}

void Store::repair() const {
    StoreControl& control = this->control();
    const uint64_t length = control.log_length.load(std::memory_order_acquire);
    if (length > max_log_entries) {
        throw Error(errc::corrupt, fmt::format("{}: redo log length {}", what_, length));
    }
    const uint64_t file_size = control.file_size;
    for (uint64_t index = 0; index < length; ++index) {
        const LogEntry entry = control.log[index];
        if (entry.offset % 8 != 0 || entry.offset < body_offset_ || entry.offset > file_size - 8) {
            throw Error(errc::corrupt,
                        fmt::format("{}: redo log word at {} out of range", what_, entry.offset));
        }
        *word(entry.offset) = entry.value;
        SHUTTLE_KILL_POINT("store.repair.applying");
    }
    keep_program_order();
    control.log_length.store(0, std::memory_order_release);
}

void Store::grow_to(uint64_t size) {
    StoreControl& control = this->control();
    uint64_t target =
        std::max(size, std::max(control.file_size * 2, control.file_size + min_growth));
    target = std::min(round_up(target, page), reservation_);
    if (int error = allocate_file(lock_.segment().fd(), target)) {
        if (error == ENOSPC) {
            throw Error(
                errc::no_space,
                fmt::format("{}: no memory to grow to {} bytes (posix_fallocate)", what_, target));
        }
        throw_system_error(error, "posix_fallocate");
    }
    SHUTTLE_KILL_POINT("store.grow.allocated");
    control.file_size = target;  // never shrinks: a repeat after a crash only re-allocates
}

// ---- entries and tables ----

uint64_t Store::entry_bytes(uint64_t key_size, uint64_t value_size) noexcept {
    return round_up(sizeof(EntryHeader) + key_size + value_size, 8);
}

const EntryHeader& Store::entry(uint64_t offset) const {
    const uint64_t file_size = control().file_size;
    const auto& header = *reinterpret_cast<const EntryHeader*>(base_ + offset);
    if (offset % 8 != 0 || offset < control().data_start ||
        offset > file_size - sizeof(EntryHeader) ||
        uint64_t{header.key_size} + header.value_size > file_size - offset - sizeof(EntryHeader)) {
        throw Error(errc::corrupt, fmt::format("{}: entry at {} out of range", what_, offset));
    }
    return header;
}

Bytes Store::entry_key(uint64_t offset) const {
    const EntryHeader& header = entry(offset);
    return {base_ + offset + sizeof(EntryHeader), header.key_size};
}

Bytes Store::entry_value(uint64_t offset) const {
    const EntryHeader& header = entry(offset);
    return {base_ + offset + sizeof(EntryHeader) + header.key_size, header.value_size};
}

uint64_t Store::entry_bytes_at(uint64_t offset) const {
    const EntryHeader& header = entry(offset);
    return entry_bytes(header.key_size, header.value_size);
}

uint64_t* Store::table_words() const {
    const uint64_t offset = root(table);
    const uint64_t words = root(table_capacity);
    const uint64_t file_size = control().file_size;
    if (offset % 8 != 0 || offset < control().data_start || offset > file_size ||
        words > (file_size - offset) / 8) {
        throw Error(errc::corrupt, fmt::format("{}: table at {} out of range", what_, offset));
    }
    return word(offset);
}

uint64_t Store::allocate_table(Transaction& transaction, uint64_t words, bool move_entries) const {
    const uint64_t old_words = root(table_capacity);
    if (move_entries) {
        // The copy: the live entries (all but garbage and the old table) and the new table.
        const uint64_t used = root(heap_top) - root(heap_begin);
        transaction.relocate(used - root(garbage) - old_words * 8 + words * 8);
    } else {
        transaction.add_garbage(old_words * 8);
    }
    return transaction.allocate(words * 8);
}

bool Store::worth_compacting() const noexcept {
    const uint64_t dead = root(garbage);
    return dead >= 1024 && dead * 2 >= root(heap_top) - root(heap_begin);
}

// ---- transactions ----

Store::Transaction::Transaction(Store& store)
    : store_(store),
      cursor_(store.root(heap_top)),
      limit_(store.reservation_),
      new_begin_(store.root(heap_begin)),
      garbage_(store.root(garbage)) {}

uint64_t Store::Transaction::allocate(uint64_t bytes) {
    bytes = round_up(bytes, 8);
    // The heap in use may span a third of the room: a compaction's copy then always fits below
    // or above it (docs/state.md, "Memory"). A compaction copies live data only: never refused.
    const uint64_t most = (store_.reservation_ - store_.control().data_start) / 3;
    const uint64_t used = cursor_ - new_begin_;
    if (bytes > limit_ - cursor_ || (!relocating_ && (used > most || bytes > most - used))) {
        throw Error(errc::no_space,
                    fmt::format("{}: full: {} more bytes would exceed the {} bytes its entries "
                                "may use (a third of max_bytes {})",
                                store_.what_, bytes, most, store_.reservation_));
    }
    if (cursor_ + bytes > store_.control().file_size) store_.grow_to(cursor_ + bytes);
    const uint64_t offset = cursor_;
    cursor_ += bytes;
    return offset;
}

uint64_t Store::Transaction::add_entry(Bytes key, Bytes value) {
    if (key.size() > std::numeric_limits<uint32_t>::max() ||
        value.size() > std::numeric_limits<uint32_t>::max()) {
        throw Error(errc::too_large, fmt::format("{}: an entry above 4 GiB", store_.what_));
    }
    const uint64_t offset = allocate(entry_bytes(key.size(), value.size()));
    std::byte* at = store_.base_ + offset;
    const EntryHeader header{static_cast<uint32_t>(key.size()),
                             static_cast<uint32_t>(value.size())};
    std::memcpy(at, &header, sizeof header);
    if (!key.empty()) std::memcpy(at + sizeof header, key.data(), key.size());
    if (!value.empty()) std::memcpy(at + sizeof header + key.size(), value.data(), value.size());
    return offset;
}

void Store::Transaction::set(uint64_t offset, uint64_t value) {
    for (unsigned index = 0; index < length_; ++index) {
        if (pending_[index].offset == offset) {
            pending_[index].value = value;
            return;
        }
    }
    if (length_ == max_log_entries) throw Error(errc::system, "redo log overflow");  // a bug
    pending_[length_++] = {offset, value};
}

void Store::Transaction::set_root(Root which, uint64_t value) {
    const auto* root_word = &store_.control().roots[which];
    set(static_cast<uint64_t>(reinterpret_cast<const std::byte*>(root_word) - store_.base_), value);
}

void Store::Transaction::relocate(uint64_t bytes) {
    const StoreControl& control = store_.control();
    if (bytes <= store_.root(heap_begin) - control.data_start) {
        cursor_ = control.data_start;
        limit_ = store_.root(heap_begin);
    }
    new_begin_ = cursor_;
    garbage_ = 0;
    relocating_ = true;
}

void Store::Transaction::drop_everything() noexcept {
    cursor_ = new_begin_ = store_.control().data_start;
    limit_ = store_.reservation_;
    garbage_ = 0;
}

void Store::Transaction::commit() {
    if (cursor_ != store_.root(heap_top)) set_root(heap_top, cursor_);
    if (new_begin_ != store_.root(heap_begin)) set_root(heap_begin, new_begin_);
    if (garbage_ != store_.root(garbage)) set_root(garbage, garbage_);
    StoreControl& control = store_.control();
    for (unsigned index = 0; index < length_; ++index) control.log[index] = pending_[index];
    SHUTTLE_KILL_POINT("store.commit.logged");
    // The commit point: from here the change is made, by us or by the next holder's repair().
    control.log_length.store(length_, std::memory_order_release);
    keep_program_order();
    SHUTTLE_KILL_POINT("store.commit.published");
    for (unsigned index = 0; index < length_; ++index) {
        *store_.word(pending_[index].offset) = pending_[index].value;
        SHUTTLE_KILL_POINT("store.commit.applying");
    }
    keep_program_order();
    SHUTTLE_KILL_POINT("store.commit.applied");
    control.log_length.store(0, std::memory_order_release);
}

// ---- Dict ----

uint64_t DictStore::hash(Bytes key) noexcept {
    // 8 bytes at a time, multiply-xorshift, murmur3's finaliser: fixed here (a protocol), not
    // std::hash (whose values may differ between the programs sharing a dict).
    uint64_t hash = 0x9e3779b97f4a7c15ull ^ key.size();
    std::size_t at = 0;
    for (; at + 8 <= key.size(); at += 8) {
        uint64_t chunk;
        std::memcpy(&chunk, key.data() + at, 8);
        hash = (hash ^ chunk) * 0xff51afd7ed558ccdull;
        hash ^= hash >> 32;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, key.data() + at, key.size() - at);
    hash = (hash ^ tail) * 0xc4ceb9fe1a85ec53ull;
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 33;
    return hash;
}

DictStore::Probe DictStore::probe(Bytes key, uint64_t key_hash) const {
    const uint64_t* slots = table_words();
    const uint64_t mask = root(table_capacity) - 1;
    const uint64_t tag = key_hash & ~offset_mask;
    uint64_t first_free = no_index;
    uint64_t index = key_hash & mask;
    for (uint64_t step = 0; step <= mask; ++step, index = (index + 1) & mask) {
        const uint64_t slot = slots[index];
        if (slot == 0) return {first_free != no_index ? first_free : index, false};
        if (slot == tombstone) {
            if (first_free == no_index) first_free = index;
        } else if ((slot & ~offset_mask) == tag) {
            Bytes stored = entry_key(slot & offset_mask);
            if (stored.size() == key.size() &&
                std::memcmp(stored.data(), key.data(), key.size()) == 0) {
                return {index, true};
            }
        }
    }
    if (first_free == no_index) throw Error(errc::corrupt, "Dict: the table has no free slot");
    return {first_free, false};
}

std::optional<Bytes> DictStore::find(Bytes key) const {
    if (root(table) == 0) return std::nullopt;
    const Probe found = probe(key, hash(key));
    if (!found.found) return std::nullopt;
    return entry_value(table_words()[found.index] & offset_mask);
}

uint64_t DictStore::rebuild(Transaction& transaction, uint64_t entries, bool move_entries) {
    const uint64_t old_table = root(table);
    const uint64_t old_capacity = root(table_capacity);
    const uint64_t capacity = table_size_for(entries * 2);
    const uint64_t new_table = allocate_table(transaction, capacity, move_entries);
    uint64_t* slots = word(new_table);
    std::memset(slots, 0, capacity * 8);
    if (old_table != 0) {
        const uint64_t* old_slots = table_words();
        for (uint64_t index = 0; index < old_capacity; ++index) {
            if (old_slots[index] <= tombstone) continue;
            uint64_t offset = old_slots[index] & offset_mask;
            Bytes key = entry_key(offset);
            if (move_entries) offset = transaction.add_entry(key, entry_value(offset));
            const uint64_t key_hash = hash(key);
            uint64_t at = key_hash & (capacity - 1);
            while (slots[at] != 0) at = (at + 1) & (capacity - 1);
            slots[at] = (key_hash & ~offset_mask) | offset;
        }
    }
    transaction.set_root(table, new_table);
    transaction.set_root(table_capacity, capacity);
    transaction.set_root(tombstones, 0);
    return new_table;
}

void DictStore::maybe_compact() {
    if (!worth_compacting()) return;
    Transaction transaction(*this);
    rebuild(transaction, size(), true);
    transaction.commit();
}

void DictStore::assign(Bytes key, Bytes value) {
    maybe_compact();
    if (root(table) == 0 || (size() + root(tombstones) + 1) * 4 > root(table_capacity) * 3) {
        Transaction transaction(*this);
        rebuild(transaction, size() + 1, false);
        transaction.commit();
    }
    const uint64_t key_hash = hash(key);
    const Probe found = probe(key, key_hash);
    const uint64_t old_slot = table_words()[found.index];
    Transaction transaction(*this);
    const uint64_t offset = transaction.add_entry(key, value);
    SHUTTLE_KILL_POINT("store.entry.written");
    transaction.set(root(table) + found.index * 8, (key_hash & ~offset_mask) | offset);
    if (found.found) {
        transaction.add_garbage(entry_bytes_at(old_slot & offset_mask));
    } else {
        transaction.set_root(count, size() + 1);
        if (old_slot == tombstone) transaction.set_root(tombstones, root(tombstones) - 1);
    }
    transaction.commit();
}

bool DictStore::erase(Bytes key) {
    if (root(table) == 0) return false;
    const Probe found = probe(key, hash(key));
    if (!found.found) return false;
    Transaction transaction(*this);
    transaction.set(root(table) + found.index * 8, tombstone);
    transaction.add_garbage(entry_bytes_at(table_words()[found.index] & offset_mask));
    transaction.set_root(count, size() - 1);
    transaction.set_root(tombstones, root(tombstones) + 1);
    transaction.commit();
    return true;
}

void DictStore::clear() {
    Transaction transaction(*this);
    transaction.drop_everything();
    transaction.set_root(table, 0);
    transaction.set_root(table_capacity, 0);
    transaction.set_root(count, 0);
    transaction.set_root(tombstones, 0);
    transaction.commit();
}

// ---- List ----

void ListStore::rewrite(Transaction& transaction, uint64_t capacity, uint64_t skip, uint64_t at,
                        uint64_t added, uint64_t new_size, bool move_entries) {
    const uint64_t array = allocate_table(transaction, capacity, move_entries);
    uint64_t* elements = word(array);
    const uint64_t* old_elements = size() != 0 ? table_words() : nullptr;
    uint64_t next = 0;
    for (uint64_t index = 0; index <= size(); ++index) {
        if (index == at) elements[next++] = added;
        if (index == size() || index == skip) continue;
        uint64_t offset = old_elements[index];
        if (move_entries) offset = transaction.add_entry({}, entry_value(offset));
        elements[next++] = offset;
    }
    transaction.set_root(table, array);
    transaction.set_root(table_capacity, capacity);
    transaction.set_root(count, new_size);
}

void ListStore::maybe_compact() {
    if (!worth_compacting()) return;
    Transaction transaction(*this);
    rewrite(transaction, table_size_for(size()), no_index, no_index, 0, size(), true);
    transaction.commit();
}

void ListStore::append(Bytes value) {
    maybe_compact();
    Transaction transaction(*this);
    const uint64_t offset = transaction.add_entry({}, value);
    SHUTTLE_KILL_POINT("store.entry.written");
    if (size() < root(table_capacity)) {
        transaction.set(root(table) + size() * 8, offset);
        transaction.set_root(count, size() + 1);
    } else {
        rewrite(transaction, table_size_for(size() * 2), no_index, size(), offset, size() + 1,
                false);
    }
    transaction.commit();
}

void ListStore::assign(uint64_t index, Bytes value) {
    maybe_compact();
    Transaction transaction(*this);
    const uint64_t offset = transaction.add_entry({}, value);
    SHUTTLE_KILL_POINT("store.entry.written");
    transaction.add_garbage(entry_bytes_at(table_words()[index]));
    transaction.set(root(table) + index * 8, offset);
    transaction.commit();
}

void ListStore::insert(uint64_t index, Bytes value) {
    maybe_compact();
    Transaction transaction(*this);
    const uint64_t offset = transaction.add_entry({}, value);
    SHUTTLE_KILL_POINT("store.entry.written");
    const uint64_t capacity =
        size() < root(table_capacity) ? root(table_capacity) : table_size_for(size() * 2);
    rewrite(transaction, capacity, no_index, index, offset, size() + 1, false);
    transaction.commit();
}

void ListStore::erase(uint64_t index) {
    Transaction transaction(*this);
    transaction.add_garbage(entry_bytes_at(table_words()[index]));
    if (index + 1 == size()) {
        transaction.set_root(count, size() - 1);
    } else {
        rewrite(transaction, root(table_capacity), index, no_index, 0, size() - 1, false);
    }
    transaction.commit();
}

void ListStore::clear() {
    Transaction transaction(*this);
    transaction.drop_everything();
    transaction.set_root(table, 0);
    transaction.set_root(table_capacity, 0);
    transaction.set_root(count, 0);
    transaction.commit();
}

void throw_undecodable(const char* what) {
    throw Error(errc::bad_message, fmt::format("{}: stored bytes do not decode as its type", what));
}

void throw_list_index(const char* operation, int64_t index, uint64_t size) {
    throw Error(errc::invalid_argument, fmt::format("List::{}: index {} is out of range (size {})",
                                                    operation, index, size));
}

}  // namespace shuttle::detail
