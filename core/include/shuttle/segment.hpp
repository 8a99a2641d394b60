// A shared-memory segment: a versioned header at offset 0, a participant registry, then the
// body an object (queue, pipe, lock, ...) lays out. Named (attach by name from any process) or
// anonymous (a memfd mapped before fork(), inherited; its descriptor can be handed to exec).
//
// The layout is a protocol (see docs/layout.md). open() validates every header field and
// reports each mismatch precisely; values that steer memory accesses are read once, checked,
// and copied into the handle (SegmentInfo), so a corrupt segment never makes a reader go out of
// bounds.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "shuttle/detail/os.hpp"
#include "shuttle/error.hpp"

namespace shuttle {

inline constexpr uint64_t segment_magic = 0x3130454c54545553ull;  // "SUTTLE01" little-endian
inline constexpr uint32_t segment_layout_version = 5;  // 3: leases; 4: batches; 5: doorbells
inline constexpr std::size_t cache_line = 64;
inline constexpr uint32_t max_registry_capacity = 4096;
/// The longest segment name (Segment::valid_name).
inline constexpr std::size_t max_name_length = 200;

/// What a segment holds; checked on open so a pipe is never opened as a queue.
enum class ObjectKind : uint32_t {
    queue = 1,
    byte_queue = 2,
    pipe = 3,
    lock = 4,
    rlock = 5,
    semaphore = 6,
    event = 7,
    condition = 8,
    barrier = 9,
    unbounded_queue = 20,  // the head of an unbounded queue (its chunks are queues / byte queues)
    test = 100,
};

/// The header at offset 0 of every segment. Fixed-width fields only, no pointers.
struct alignas(cache_line) SegmentHeader {
    std::atomic<uint64_t> magic;  // written last (release): readers check it first (acquire)
    uint32_t layout_version;
    uint32_t kind;
    uint64_t segment_size;  // header + registry + body
    uint64_t element_size;
    uint64_t element_align;
    uint64_t type_tag;
    uint64_t capacity;
    uint64_t max_message_size;
    uint64_t flags;
    uint64_t creator;        // ProcessIdentity of the creator
    uint64_t pid_namespace;  // the creator's pid namespace
    uint32_t registry_capacity;
    uint32_t header_size;
    uint64_t body_offset;
    uint64_t body_size;
    uint64_t created_unix_seconds;  // informational only: never validated
};
static_assert(sizeof(SegmentHeader) <= 256, "the header must fit its 256-byte area");
inline constexpr uint64_t segment_header_area = 256;

/// One participant (a process, or a thread of one) of a shared object. A cache line each so
/// participants never false-share. `identity` 0 means free. The other fields belong to the
/// object that owns the segment (announced ticket, a private wake-up futex, waiter state, ...).
struct alignas(cache_line) RegistryEntry {
    std::atomic<uint64_t> identity;
    std::atomic<uint64_t> pid_namespace;
    std::atomic<uint64_t> announced;  // e.g. the ticket a participant is about to claim
    std::atomic<uint32_t> wake_word;  // a futex only this participant sleeps on
    std::atomic<uint32_t> state;
    std::atomic<uint64_t> words[4];
};
static_assert(sizeof(RegistryEntry) == cache_line, "one registry entry per cache line");

/// What a segment holds, as its header says: the object's kind, its element type (size,
/// alignment, tag), capacity, maximum message size and flags.
struct ObjectDescription {
    ObjectKind kind = ObjectKind::test;
    uint64_t element_size = 0;
    uint64_t element_align = 0;
    uint64_t type_tag = 0;
    uint64_t capacity = 0;
    uint64_t max_message_size = 0;
    uint64_t flags = 0;
};

/// An object's element type as its segment records it: the fields a new segment's description
/// (SegmentInfo) and an open()'s requirements (SegmentExpectation) both start with, set in one
/// place.
struct ElementType {
    ObjectKind kind = ObjectKind::test;
    uint64_t element_size = 0;
    uint64_t element_align = 0;
    uint64_t type_tag = 0;

    /// Writes the four fields into `description` (a SegmentInfo or a SegmentExpectation).
    template <class Description>
    Description& describe(Description& description) const {
        description.kind = kind;
        description.element_size = element_size;
        description.element_align = element_align;
        description.type_tag = type_tag;
        return description;
    }
};

namespace detail {
/// Calls `field(header_field, description_field)` for each field a header and an
/// ObjectDescription share: the one place that pairs them, for reading and for writing.
template <class Header, class Description, class Field>
void for_each_description_field(Header& header, Description& description, Field field) {
    field(header.kind, description.kind);
    field(header.element_size, description.element_size);
    field(header.element_align, description.element_align);
    field(header.type_tag, description.type_tag);
    field(header.capacity, description.capacity);
    field(header.max_message_size, description.max_message_size);
    field(header.flags, description.flags);
}
}  // namespace detail

/// The description in `header`, each field read once.
inline ObjectDescription description_of(const SegmentHeader& header) noexcept {
    ObjectDescription description;
    detail::for_each_description_field(header, description, [](const auto& stored, auto& field) {
        field = static_cast<std::remove_reference_t<decltype(field)>>(stored);
    });
    return description;
}

/// The validated, private copy of a segment's header fields.
struct SegmentInfo : ObjectDescription {
    uint32_t registry_capacity = 0;
    uint64_t body_size = 0;
    detail::ProcessIdentity creator = 0;
    uint64_t pid_namespace = 0;
    uint64_t created_unix_seconds = 0;  // as the creator's clock said; set by create
};

/// Returns the body size an object of `info` needs, or nullopt if a value is out of range.
/// The same function serves create (the caller's values) and open (the header's values).
using BodySizeFunction = std::function<std::optional<uint64_t>(const SegmentInfo&)>;

/// What open() requires of a segment. Unset optionals accept whatever the segment has.
struct SegmentExpectation {
    ObjectKind kind = ObjectKind::test;
    uint64_t element_size = 0;
    uint64_t element_align = 0;
    uint64_t type_tag = 0;
    std::optional<uint64_t> capacity;
    std::optional<uint64_t> max_message_size;
    /// The flag bits this kind of object defines: a segment with any other bit set is corrupt.
    /// Unset: the segment layer accepts any flags and the object checks them itself.
    std::optional<uint64_t> known_flags;
    BodySizeFunction body_size;
    /// Whether open() may attach a named segment whose owner is neither the caller nor root.
    /// Off (the default), such a segment is refused with errc::permission: another user may
    /// have planted it under the name the caller expected (squatting). open_fd() does not
    /// check: a descriptor handed over is trusted.
    bool allow_foreign_owner = false;
};

/// Permission bits for a new named segment: owner-only unless asked otherwise.
struct CreateOptions {
    unsigned mode = 0600;
    /// Whether destroying the creating handle (in the creating process) also unlinks the name.
    bool remove_on_destroy = false;
    /// open() / open_or_create(): join a segment owned by a user other than the caller and
    /// root (refused with errc::permission otherwise; SegmentExpectation::allow_foreign_owner).
    bool allow_foreign_owner = false;
};

/// Owns one mapping of a segment. Movable, not copyable; valid in a fork()ed child.
/// Thread-safe for concurrent use of the mapped memory; the handle itself is not synchronised.
class Segment {
  public:
    using Initialiser = std::function<void(Segment&)>;

    Segment() = default;
    Segment(Segment&& other) noexcept;
    Segment& operator=(Segment&& other) noexcept;
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;
    ~Segment();

    /// Creates a named segment. `init` runs on the still-invisible segment (registry zeroed,
    /// body zeroed); the name appears atomically once it has returned, so no process can open a
    /// half-initialised segment and a creator that dies midway leaves nothing behind.
    /// Throws Error(already_exists, invalid_name, permission, no_space, invalid_argument).
    static Segment create(std::string_view name, const SegmentInfo& info,
                          const BodySizeFunction& body_size, const Initialiser& init,
                          const CreateOptions& options = {});

    /// Attaches a named segment, validating every header field against `expected` (the rules
    /// per field are in docs/layout.md). The file must be a regular file (a symbolic link,
    /// directory or FIFO is not_shuttle; none is followed or waited on) whose owner is the
    /// caller or root, unless `expected.allow_foreign_owner` (else permission).
    /// Throws Error(not_found, invalid_name, permission, not_shuttle, version_mismatch,
    /// kind_mismatch, type_mismatch, capacity_mismatch, truncated, corrupt).
    static Segment open(std::string_view name, const SegmentExpectation& expected);

    /// An anonymous segment (memfd): inherited across fork(), or handed to an exec'd program
    /// as a descriptor (see fd(), set_inheritable()).
    static Segment create_anonymous(const SegmentInfo& info, const BodySizeFunction& body_size,
                                    const Initialiser& init);

    /// Attaches the segment behind a descriptor (e.g. a memfd passed to an exec'd program).
    /// Takes ownership of `fd` only on success.
    static Segment open_fd(int fd, const SegmentExpectation& expected);

    /// Removes a name. Processes that have it mapped keep working. Returns false if absent.
    static bool remove(std::string_view name);

    /// The segment name rule, the one rule of every named object (docs/segments.md): 1 to
    /// max_name_length characters, words of [A-Za-z0-9_-] joined by single dots. So no slash
    /// (a name is never a path: "/x" and "a/b" are refused, not rewritten), no leading,
    /// trailing or doubled dot ("." / ".." / ".hidden" / "a..b" / "a."), nothing else.
    static bool valid_name(std::string_view name) noexcept;
    /// Returns `name` unchanged if valid_name(name), else throws Error(invalid_name) saying why.
    static std::string validate_name(std::string_view name);

    bool valid() const noexcept { return base_ != nullptr; }
    const std::string& name() const noexcept { return name_; }  // empty when anonymous
    const SegmentInfo& info() const noexcept { return info_; }
    int fd() const noexcept { return fd_; }
    /// Lets an exec'd child inherit fd() (close-on-exec is on by default).
    void set_inheritable(bool inheritable);

    SegmentHeader& header() const noexcept { return *static_cast<SegmentHeader*>(base_); }
    RegistryEntry* registry() const noexcept {
        return reinterpret_cast<RegistryEntry*>(static_cast<std::byte*>(base_) +
                                                segment_header_area);
    }
    std::byte* body() const noexcept { return static_cast<std::byte*>(base_) + body_offset_; }
    uint64_t body_size() const noexcept { return info_.body_size; }
    uint64_t mapped_size() const noexcept { return mapped_size_; }

    /// Unlinks the name now (no-op for anonymous segments).
    void unlink();

    /// Layout arithmetic shared by create and open.
    static uint64_t body_offset_for(uint32_t registry_capacity) noexcept;

  private:
    static Segment build(int fd, std::string name, const SegmentInfo& info,
                         const BodySizeFunction& body_size, const Initialiser& init);
    static Segment attach(int fd, std::string name, const SegmentExpectation& expected);
    void reset() noexcept;

    std::string name_;
    int fd_ = -1;
    void* base_ = nullptr;
    uint64_t mapped_size_ = 0;
    uint64_t body_offset_ = 0;
    SegmentInfo info_{};
    pid_t remove_on_destroy_pid_ = 0;  // the creating process, when it asked for removal
};

namespace detail {

/// A named segment's file, opened and checked; the caller owns `fd`.
struct SegmentFile {
    int fd = -1;
    FileStatus status;
};

/// Opens the file of segment `name` (a valid name) as Segment::open() does: O_NOFOLLOW |
/// O_NONBLOCK, then fstat: a regular file owned by the caller or root (or anyone, with
/// `allow_foreign_owner`). Throws Error(not_found — naming a missing segment directory —,
/// permission, not_shuttle, system). Shared by open() and inspection (shuttle/inspect.hpp).
SegmentFile open_segment_file(const std::string& name, bool writable, bool allow_foreign_owner);

/// Throws the Error for errno `error` of a file operation described by `what` (ENOENT ->
/// not_found, EACCES -> permission, ...); an ENOENT because the segment directory itself is
/// missing says so.
[[noreturn]] void fail_file_operation(int error, const std::string& what);

}  // namespace detail

}  // namespace shuttle
