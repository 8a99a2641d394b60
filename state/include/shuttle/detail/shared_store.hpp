// What Dict<K, V> and List<T> share: a growing heap of encoded entries in one shared-memory
// file, a robust Lock, and a redo log that makes every mutation all-or-nothing even if the
// process making it is SIGKILLed at any instruction. Not used directly (docs/state.md).
//
// File layout (offsets from the file's start; every handle maps `max_bytes` of address space
// once, so growing the file never moves anything):
//
//   | SegmentHeader | body: StoreControl (lock, allocator, roots, redo log) | heap ... |
//
// The heap is a copying region [heap_begin, heap_top) of 8-aligned entries (EntryHeader, key
// bytes, value bytes) and tables (arrays of 64-bit words). Everything at or above heap_top is
// free scratch space: a mutation writes its new entries and tables there, then commits by
// logging the few root and table words it changes (at most max_log_entries) in the redo log,
// publishing the log's length (the commit point), applying the words and clearing the length.
// A holder that dies before the commit point leaves only scratch bytes nobody reads; after it,
// the next lock holder (previous_owner_died()) applies the log again (the words are absolute
// values: idempotent) and calls mark_consistent().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>

#include "shuttle/detail/shared_cells.hpp"

namespace shuttle {

/// Options for creating a Dict or List.
struct ContainerOptions {
    /// The most memory the container's file may use; the address space is reserved up front,
    /// the memory is allocated as the container grows. Its entries and tables may span a third
    /// of it (the rest is room for compaction's copies, so a full container can always be
    /// emptied and refilled). A mutation that needs more throws Error(no_space) and changes
    /// nothing. At most 1 TiB.
    uint64_t max_bytes = uint64_t{1} << 30;
    unsigned mode = 0600;
    /// Whether destroying the creating handle (in the creating process) also unlinks the name.
    bool remove_on_destroy = false;
    /// open() / open_or_create(): join a container owned by a user other than the caller and
    /// root (refused with errc::permission otherwise: another user may have planted it).
    bool allow_foreign_owner = false;
};

namespace detail {

// Object kinds of Dict and List segments (after Value's and Array's).
inline constexpr ObjectKind dict_kind = static_cast<ObjectKind>(12);
inline constexpr ObjectKind list_kind = static_cast<ObjectKind>(13);

using Bytes = std::span<const std::byte>;

/// The roots: the words that say what the container holds. Changed only through the redo log.
enum Root : unsigned {
    heap_begin,      // first live heap byte
    heap_top,        // first free heap byte
    garbage,         // bytes in [heap_begin, heap_top) no longer reachable
    count,           // Dict: entries; List: elements
    table,           // Dict: the slot table's offset; List: the element array's offset (0: none)
    table_capacity,  // words in the table
    tombstones,      // Dict: erased slots still in the table
    root_count = 8,
};

inline constexpr unsigned max_log_entries = 12;

struct LogEntry {
    uint64_t offset;  // of an 8-aligned word in the file
    uint64_t value;
};

/// The body of a Dict or List segment.
struct alignas(cache_line) StoreControl {
    LockState lock;                           // offset 0 (EmbeddedLock)
    alignas(cache_line) uint64_t data_start;  // the first heap byte (constant)
    uint64_t file_size;                       // bytes allocated in the file (grows, never shrinks)
    uint64_t roots[root_count];
    std::atomic<uint64_t> log_length;  // 0: no pending log; else its entries are committed
    LogEntry log[max_log_entries];
};

/// An entry in the heap: sizes, then the key's bytes, then the value's, padded to 8.
struct EntryHeader {
    uint32_t key_size;
    uint32_t value_size;
};

/// The segment, its lock, the reserved mapping and the transaction machinery.
class Store {
  public:
    Store() = default;
    Store(Store&& other) noexcept;
    Store& operator=(Store&& other) noexcept;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store();

    bool valid() const noexcept { return base_ != nullptr; }
    const std::string& name() const noexcept { return lock_.name(); }
    /// The robust Lock every call takes (see Dict / List).
    Lock& get_lock() noexcept { return lock_; }
    /// Bytes of the file in use now (grows with the container, up to max_bytes()).
    uint64_t memory_in_use() const noexcept { return control().file_size; }
    uint64_t max_bytes() const noexcept { return reservation_; }

    /// Holds the lock for one call (or runs within the caller's hold of get_lock()), and first
    /// repairs what a holder that died left: replays a committed log, then mark_consistent().
    class Guard {
      public:
        explicit Guard(const Store& store);
        ~Guard();
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;

      private:
        const Store& store_;
        bool taken_;
    };

  protected:
    struct Spec {
        ObjectKind kind;
        const char* what;  // "Dict" or "List", for messages
    };
    static Store create(std::string_view name, const Spec& spec, uint64_t type_tag,
                        const ContainerOptions& options);
    static Store open(std::string_view name, const Spec& spec, uint64_t type_tag,
                      bool allow_foreign_owner);

    /// A change under way: scratch allocations above heap_top, then commit().
    class Transaction {
      public:
        explicit Transaction(Store& store);
        /// `bytes` (rounded up to 8) of scratch space; grows the file if needed. Throws
        /// Error(no_space) (nothing committed, nothing lost).
        uint64_t allocate(uint64_t bytes);
        /// Copies an entry (key, value) into scratch space; returns its offset.
        uint64_t add_entry(Bytes key, Bytes value);
        /// Records that the word at `offset` becomes `value` at commit.
        void set(uint64_t offset, uint64_t value);
        void set_root(Root root, uint64_t value);
        /// Counts `bytes` as garbage (an overwritten entry or a replaced table).
        void add_garbage(uint64_t bytes) noexcept { garbage_ += bytes; }
        /// Drops every entry and table: the heap starts over, empty, at its first byte. Call
        /// before any allocate().
        void drop_everything() noexcept;
        /// Allocations from now on go to the free space below heap_begin if `bytes` fit there
        /// (a compaction's copy), else above heap_top; heap_begin moves to where they start.
        void relocate(uint64_t bytes);
        /// Logs the changes and heap_top / heap_begin, publishes the log, applies it.
        void commit();

      private:
        Store& store_;
        uint64_t cursor_;
        uint64_t limit_;
        uint64_t new_begin_;
        uint64_t garbage_;
        bool relocating_ = false;
        unsigned length_ = 0;
        LogEntry pending_[max_log_entries];
    };

    StoreControl& control() const noexcept {
        return *reinterpret_cast<StoreControl*>(base_ + body_offset_);
    }
    uint64_t root(Root which) const noexcept { return control().roots[which]; }
    uint64_t* word(uint64_t offset) const noexcept {
        return reinterpret_cast<uint64_t*>(base_ + offset);
    }
    /// The entry at `offset`, checked against the file (a corrupt offset is Error(corrupt)).
    const EntryHeader& entry(uint64_t offset) const;
    Bytes entry_key(uint64_t offset) const;
    Bytes entry_value(uint64_t offset) const;
    static uint64_t entry_bytes(uint64_t key_size, uint64_t value_size) noexcept;
    uint64_t entry_bytes_at(uint64_t offset) const;
    /// The table words at root(table), checked against the file.
    uint64_t* table_words() const;
    /// A new table (or element array) of `words` in `transaction`, the old one becoming garbage;
    /// if `move_entries` (a compaction), the transaction first moves to where the live entries
    /// and the new table will be copied.
    uint64_t allocate_table(Transaction& transaction, uint64_t words, bool move_entries) const;
    /// Whether enough of the heap is garbage that a compaction pays off.
    bool worth_compacting() const noexcept;
    const char* what() const noexcept { return what_; }

  private:
    Store(Segment segment, const char* what);
    void repair() const;
    void grow_to(uint64_t size);

    mutable EmbeddedLock lock_;
    std::byte* base_ = nullptr;  // the reserved mapping of the whole file
    uint64_t reservation_ = 0;
    uint64_t body_offset_ = 0;
    const char* what_ = "";
};

/// The factories of a kind of store (Derived::spec says which).
template <class Derived>
class StoreOf : public Store {
  public:
    static Derived create(std::string_view name, uint64_t type_tag,
                          const ContainerOptions& options) {
        return Derived(Store::create(name, Derived::spec, type_tag, options));
    }
    static Derived open(std::string_view name, uint64_t type_tag, bool allow_foreign_owner) {
        return Derived(Store::open(name, Derived::spec, type_tag, allow_foreign_owner));
    }

  protected:
    StoreOf() = default;
    explicit StoreOf(Store store) : Store(std::move(store)) {}
};

/// Dict's operations on encoded keys and values. Every member but the factories needs a Guard.
class DictStore : public StoreOf<DictStore> {
  public:
    static constexpr Spec spec{dict_kind, "Dict"};
    DictStore() = default;

    /// The value's bytes (valid while the Guard is held), or an empty optional.
    std::optional<Bytes> find(Bytes key) const;
    /// Inserts or replaces. Throws Error(no_space) (nothing changed).
    void assign(Bytes key, Bytes value);
    /// False if the key was absent.
    bool erase(Bytes key);
    uint64_t size() const noexcept { return root(count); }
    void clear();
    /// Calls visit(key, value) for each entry, in table order.
    template <class Visit>
    void for_each(Visit visit) const {
        if (root(table) == 0) return;
        const uint64_t* slots = table_words();
        for (uint64_t index = 0; index < root(table_capacity); ++index) {
            if (slots[index] > tombstone) {
                const uint64_t offset = slots[index] & offset_mask;
                visit(entry_key(offset), entry_value(offset));
            }
        }
    }

    static uint64_t hash(Bytes key) noexcept;

  private:
    friend StoreOf;
    using StoreOf::StoreOf;
    static constexpr uint64_t tombstone = 1;
    static constexpr uint64_t offset_mask = (uint64_t{1} << 40) - 1;
    struct Probe {
        uint64_t index;  // the key's slot, or where it would go
        bool found;
    };
    Probe probe(Bytes key, uint64_t key_hash) const;
    /// Rebuilds the table for `entries` live entries into `transaction` (compacting the
    /// entries too if `move_entries`); returns the new table's offset.
    uint64_t rebuild(Transaction& transaction, uint64_t entries, bool move_entries);
    void maybe_compact();
};

/// List's operations on encoded elements. Every member but the factories needs a Guard.
class ListStore : public StoreOf<ListStore> {
  public:
    static constexpr Spec spec{list_kind, "List"};
    ListStore() = default;

    uint64_t size() const noexcept { return root(count); }
    /// Element `index` (< size(); checked by the caller).
    Bytes at(uint64_t index) const { return entry_value(table_words()[index]); }
    void append(Bytes value);
    void assign(uint64_t index, Bytes value);
    void insert(uint64_t index, Bytes value);
    void erase(uint64_t index);
    void clear();
    template <class Visit>
    void for_each(Visit visit) const {
        for (uint64_t index = 0; index < size(); ++index) visit(at(index));
    }

  private:
    friend StoreOf;
    using StoreOf::StoreOf;
    /// A new element array of `capacity` words holding the elements with `skip` left out and
    /// `added` put at `at` (either may be absent: ~0); commits size `new_size`.
    void rewrite(Transaction& transaction, uint64_t capacity, uint64_t skip, uint64_t at,
                 uint64_t added, uint64_t new_size, bool move_entries);
    void maybe_compact();
};

/// What Dict and List handles share: the store, the named factories and the accessors.
/// Derived supplies tag() (its type fingerprint) and a constructor from StoreType.
template <class Derived, class StoreType>
class Container {
  public:
    /// Creates a named, empty container. Throws Error(already_exists, invalid_name,
    /// permission, no_space, invalid_argument (max_bytes)).
    static Derived create(std::string_view name, const ContainerOptions& options = {}) {
        return Derived(StoreType::create(named_object(name), Derived::tag(), options));
    }
    /// Attaches to a named container. Throws Error(not_found, kind_mismatch (a Dict opened as
    /// a List, ...), type_mismatch (other K, V or T), permission (owned by another user who
    /// is not root, unless `options.allow_foreign_owner`), ...).
    static Derived open(std::string_view name, const ContainerOptions& options = {}) {
        return Derived(StoreType::open(name, Derived::tag(), options.allow_foreign_owner));
    }
    /// Opens `name`, creating it empty first if it does not exist. Race-free.
    static Derived open_or_create(std::string_view name, const ContainerOptions& options = {}) {
        return open_or_create_cells([&] { return create(name, options); },
                                    [&] { return open(name, options); });
    }
    /// Unlinks a name; attached handles keep working. False if there was no such name.
    static bool remove(std::string_view name) { return Segment::remove(name); }

    /// Python's d.clear() / del l[:]: removes everything, as one atomic call; the memory is
    /// reused. Blocks while another call runs.
    void clear() {
        Store::Guard guard(store_);
        store_.clear();
    }
    /// len(d) / len(l). Blocks while another call runs.
    std::size_t size() const {
        Store::Guard guard(store_);
        return store_.size();
    }
    bool empty() const { return size() == 0; }

    /// The robust Lock every call takes, for several calls as one step (calls made while this
    /// thread holds it run within that hold). Non-blocking.
    Lock& get_lock() noexcept { return store_.get_lock(); }
    bool valid() const noexcept { return store_.valid(); }
    const std::string& name() const noexcept { return store_.name(); }
    /// Bytes of shared memory in use (grows with the contents, up to max_bytes()). Non-blocking.
    uint64_t memory_in_use() const noexcept { return store_.memory_in_use(); }
    uint64_t max_bytes() const noexcept { return store_.max_bytes(); }

  protected:
    Container() = default;
    explicit Container(StoreType store) : store_(std::move(store)) {}

    StoreType store_;
};

/// Throws Error(bad_message) naming the container: the bytes stored do not decode as its type.
[[noreturn]] void throw_undecodable(const char* what);
/// Throws Error(invalid_argument): index out of range.
[[noreturn]] void throw_list_index(const char* operation, int64_t index, uint64_t size);

}  // namespace detail
}  // namespace shuttle
