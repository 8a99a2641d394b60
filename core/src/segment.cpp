#include "shuttle/segment.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace shuttle {
namespace {

using detail::FileResult;

errc errc_from_errno(int error) {
    switch (error) {
        case ENOENT: return errc::not_found;
        case EEXIST: return errc::already_exists;
        case EACCES:
        case EPERM: return errc::permission;
        case ENOSPC:
        case EFBIG:
        case ENOMEM: return errc::no_space;
        case ENAMETOOLONG: return errc::invalid_name;
        default: return errc::system;
    }
}

using detail::fail_file_operation;

std::string describe(const std::string& name) {
    return name.empty() ? std::string("anonymous segment") : fmt::format("segment '{}'", name);
}

/// fstat of a descriptor about to be mapped: a regular file (a memfd is one), else not_shuttle.
detail::FileStatus regular_file_status(int fd, const std::string& what) {
    detail::FileStatus status;
    if (int error = detail::file_status(fd, status)) fail_file_operation(error, "fstat " + what);
    if (!status.regular) {
        throw Error(
            errc::not_shuttle,
            fmt::format("{} is {}, not a shuttle segment", what,
                        status.directory ? "a directory"
                                         : "not a regular file (a FIFO, socket or device)"));
    }
    return status;
}

/// Header + registry + body, with overflow checks; nullopt if it does not fit 64 bits.
std::optional<uint64_t> total_size(uint32_t registry_capacity, uint64_t body_size) {
    uint64_t offset = Segment::body_offset_for(registry_capacity);
    if (body_size > UINT64_MAX - offset) return std::nullopt;
    return offset + body_size;
}

}  // namespace

void detail::fail_file_operation(int error, const std::string& what) {
    if (error == ENOENT && !shm_directory_exists()) {
        throw Error(errc::not_found,
                    fmt::format("{}: the segment directory '{}' does not exist (SHUTTLE_SHM_DIR "
                                "must name an existing directory; unset, it is /dev/shm)",
                                what, shm_directory()));
    }
    errc code = errc_from_errno(error);
    if (code == errc::system) throw_system_error(error, what);
    throw Error(code, fmt::format("{}: {}", what, std::strerror(error)));
}

detail::SegmentFile detail::open_segment_file(const std::string& name, bool writable,
                                              bool allow_foreign_owner) {
    const std::string what = describe(name);
    const FileResult file = open_shm_file(name, writable);
    if (file.fd < 0) {
        // O_NOFOLLOW refuses a symbolic link (ELOOP); a directory refuses writing (EISDIR); a
        // socket refuses opening at all (ENXIO).
        if (file.error == ELOOP) {
            throw Error(errc::not_shuttle,
                        fmt::format("{} is a symbolic link, not a shuttle segment (links are "
                                    "not followed)",
                                    what));
        }
        if (file.error == EISDIR) {
            throw Error(errc::not_shuttle,
                        fmt::format("{} is a directory, not a shuttle segment", what));
        }
        if (file.error == ENXIO) {  // a socket, or a device without its driver
            throw Error(errc::not_shuttle,
                        fmt::format("{} is not a regular file (a socket or device), not a "
                                    "shuttle segment",
                                    what));
        }
        fail_file_operation(file.error, "cannot open " + what);
    }
    SegmentFile opened{file.fd, {}};
    try {
        opened.status = regular_file_status(file.fd, what);
        const uint32_t caller = current_user();
        if (!allow_foreign_owner && opened.status.owner != caller &&
            opened.status.owner != root_user) {
            throw Error(errc::permission,
                        fmt::format("{} belongs to user {}, neither you (user {}) nor root: "
                                    "refused, as it could have been planted under this name by "
                                    "another user (to join it all the same, open it with "
                                    "allow_foreign_owner)",
                                    what, opened.status.owner, caller));
        }
    } catch (...) {
        close_fd(file.fd);
        throw;
    }
    return opened;
}

uint64_t Segment::body_offset_for(uint32_t registry_capacity) noexcept {
    return segment_header_area + uint64_t{registry_capacity} * sizeof(RegistryEntry);
}

bool Segment::valid_name(std::string_view name) noexcept {
    // Words of [A-Za-z0-9_-] joined by single dots: no leading, trailing or doubled dot, so no
    // "." or ".." component and no hidden file; no slash, so the name is never a path.
    if (name.empty() || name.size() > max_name_length) return false;
    bool word_started = false;  // whether the current dot-separated word has a character
    for (char c : name) {
        if (c == '.') {
            if (!word_started) return false;
            word_started = false;
            continue;
        }
        const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!allowed) return false;
        word_started = true;
    }
    return word_started;
}

std::string Segment::validate_name(std::string_view name) {
    if (!valid_name(name)) {
        // Printable characters are quoted as given; anything else (a newline, a NUL) is escaped
        // so the message itself cannot be garbled by the name.
        std::string shown;
        for (char c : name.substr(0, max_name_length + 1)) {
            if (c >= 0x20 && c < 0x7f) {
                shown += c;
            } else {
                shown += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
            }
        }
        throw Error(
            errc::invalid_name,
            fmt::format("invalid segment name '{}'{}: a name is 1-{} characters, words of "
                        "[A-Za-z0-9_-] joined by single dots (no slash, no leading, "
                        "trailing or double dot)",
                        shown, name.size() > max_name_length ? "..." : "", max_name_length));
    }
    return std::string(name);
}

Segment::Segment(Segment&& other) noexcept {
    *this = std::move(other);
}

Segment& Segment::operator=(Segment&& other) noexcept {
    if (this != &other) {
        reset();
        name_ = std::move(other.name_);
        fd_ = std::exchange(other.fd_, -1);
        base_ = std::exchange(other.base_, nullptr);
        mapped_size_ = std::exchange(other.mapped_size_, 0);
        body_offset_ = other.body_offset_;
        info_ = other.info_;
        remove_on_destroy_pid_ = std::exchange(other.remove_on_destroy_pid_, 0);
    }
    return *this;
}

Segment::~Segment() {
    reset();
}

void Segment::reset() noexcept {
    if (remove_on_destroy_pid_ != 0 && remove_on_destroy_pid_ == detail::current_pid() &&
        !name_.empty()) {
        detail::unlink_shm_file(name_);
    }
    remove_on_destroy_pid_ = 0;
    detail::unmap(base_, mapped_size_);
    base_ = nullptr;
    mapped_size_ = 0;
    detail::close_fd(fd_);
    fd_ = -1;
}

Segment Segment::build(int fd, std::string name, const SegmentInfo& requested,
                       const BodySizeFunction& body_size, const Initialiser& init) {
    SegmentInfo info = requested;
    info.creator = detail::current_process_identity();
    info.pid_namespace = detail::current_pid_namespace();
    info.created_unix_seconds = static_cast<uint64_t>(std::time(nullptr));
    if (info.registry_capacity > max_registry_capacity) {
        detail::close_fd(fd);
        throw Error(errc::invalid_argument,
                    fmt::format("registry capacity {} exceeds {}", info.registry_capacity,
                                max_registry_capacity));
    }
    std::optional<uint64_t> body = body_size(info);
    std::optional<uint64_t> total = body ? total_size(info.registry_capacity, *body) : std::nullopt;
    if (!total) {
        detail::close_fd(fd);
        throw Error(errc::invalid_argument, "capacity or message size out of range");
    }
    info.body_size = *body;
    if (int error = detail::set_file_size(fd, *total)) {
        detail::close_fd(fd);
        fail_file_operation(
            error, fmt::format("cannot size {} to {} bytes (ftruncate)", describe(name), *total));
    }
    if (int error = detail::allocate_file(fd, *total)) {
        detail::close_fd(fd);
        fail_file_operation(
            error, fmt::format("cannot reserve {} bytes of shared memory for {} (posix_fallocate)",
                               *total, describe(name)));
    }
    Segment segment;
    segment.fd_ = fd;
    segment.name_ = std::move(name);
    int error = 0;
    segment.base_ = detail::map_shared(fd, *total, error);
    if (segment.base_ == nullptr) fail_file_operation(error, "mmap " + describe(segment.name_));
    segment.mapped_size_ = *total;
    segment.body_offset_ = body_offset_for(info.registry_capacity);
    segment.info_ = info;

    // The file is fresh and zero-filled: fill in the header, let the object initialise its
    // body, then publish the magic last.
    SegmentHeader& header = segment.header();
    header.layout_version = segment_layout_version;
    detail::for_each_description_field(header, info, [](auto& stored, const auto& field) {
        stored = static_cast<std::remove_reference_t<decltype(stored)>>(field);
    });
    header.segment_size = *total;
    header.creator = info.creator;
    header.pid_namespace = info.pid_namespace;
    header.registry_capacity = info.registry_capacity;
    header.header_size = sizeof(SegmentHeader);
    header.body_offset = segment.body_offset_;
    header.body_size = info.body_size;
    header.created_unix_seconds = info.created_unix_seconds;
    SHUTTLE_KILL_POINT("segment.create.before_init");
    if (init) init(segment);
    header.magic.store(segment_magic, std::memory_order_release);
    return segment;
}

Segment Segment::create(std::string_view name, const SegmentInfo& info,
                        const BodySizeFunction& body_size, const Initialiser& init,
                        const CreateOptions& options) {
    std::string valid_name = validate_name(name);
    FileResult file = detail::create_unnamed_shm_file(options.mode & 0777);
    if (file.fd < 0) fail_file_operation(file.error, "cannot create " + describe(valid_name));
    Segment segment = build(file.fd, valid_name, info, body_size, init);
    if (int error = detail::publish_shm_file(segment.fd_, valid_name)) {
        fail_file_operation(error, "cannot create " + describe(valid_name));
    }
    if (options.remove_on_destroy) segment.remove_on_destroy_pid_ = detail::current_pid();
    return segment;
}

Segment Segment::create_anonymous(const SegmentInfo& info, const BodySizeFunction& body_size,
                                  const Initialiser& init) {
    FileResult file = detail::create_memfd("shuttle");
    if (file.fd < 0) fail_file_operation(file.error, "memfd_create");
    return build(file.fd, {}, info, body_size, init);
}

Segment Segment::open(std::string_view name, const SegmentExpectation& expected) {
    std::string valid_name = validate_name(name);
    const detail::SegmentFile file =
        detail::open_segment_file(valid_name, true, expected.allow_foreign_owner);
    return attach(file.fd, valid_name, expected);
}

Segment Segment::open_fd(int fd, const SegmentExpectation& expected) {
    int duplicate = detail::duplicate_fd(fd);
    if (duplicate < 0) fail_file_operation(errno, "cannot use descriptor");
    Segment segment = attach(duplicate, {}, expected);
    detail::close_fd(fd);
    return segment;
}

Segment Segment::attach(int fd, std::string name, const SegmentExpectation& expected) {
    Segment segment;  // owns fd from here on: every throw below closes it
    segment.fd_ = fd;
    segment.name_ = std::move(name);
    const std::string what = describe(segment.name_);

    // The size is checked against the header area before mapping, and against the header's
    // sizes before anything beyond the header is read: the mapping covers exactly the file, so
    // no access here can fault (truncating a mapped segment later is docs/segments.md's case).
    const uint64_t size = regular_file_status(fd, what).size;
    if (size < segment_header_area) {
        throw Error(errc::not_shuttle,
                    fmt::format("{} is not a shuttle segment ({} bytes: too small for a header; "
                                "empty, or truncated)",
                                what, size));
    }
    int error = 0;
    segment.base_ = detail::map_shared(fd, size, error);
    if (segment.base_ == nullptr) fail_file_operation(error, "mmap " + what);
    segment.mapped_size_ = size;

    // Read every field once into locals; check; only then use.
    const SegmentHeader& header = segment.header();
    const uint64_t magic = header.magic.load(std::memory_order_acquire);
    if (magic != segment_magic) {
        throw Error(errc::not_shuttle,
                    fmt::format("{} is not a shuttle segment (magic {:#x})", what, magic));
    }
    const uint32_t version = header.layout_version;
    if (version != segment_layout_version) {
        throw Error(errc::version_mismatch,
                    fmt::format("{} has layout version {}, this build reads version {}", what,
                                version, segment_layout_version));
    }
    if (header.header_size != sizeof(SegmentHeader)) {
        throw Error(errc::corrupt, fmt::format("{}: header size {} is not {}", what,
                                               header.header_size, sizeof(SegmentHeader)));
    }
    SegmentInfo info;
    static_cast<ObjectDescription&>(info) = description_of(header);
    info.registry_capacity = header.registry_capacity;
    info.creator = header.creator;
    info.pid_namespace = header.pid_namespace;
    info.created_unix_seconds = header.created_unix_seconds;
    const uint64_t stored_segment_size = header.segment_size;
    const uint64_t stored_body_offset = header.body_offset;
    const uint64_t stored_body_size = header.body_size;

    if (info.kind != expected.kind) {
        throw Error(errc::kind_mismatch, fmt::format("{} holds object kind {}, expected kind {}",
                                                     what, static_cast<uint32_t>(info.kind),
                                                     static_cast<uint32_t>(expected.kind)));
    }
    if (info.element_size != expected.element_size ||
        info.element_align != expected.element_align || info.type_tag != expected.type_tag) {
        throw Error(errc::type_mismatch,
                    fmt::format("{} holds elements of size {}, alignment {}, tag {:#x}; expected "
                                "size {}, alignment {}, tag {:#x}",
                                what, info.element_size, info.element_align, info.type_tag,
                                expected.element_size, expected.element_align, expected.type_tag));
    }
    if (expected.capacity && info.capacity != *expected.capacity) {
        throw Error(errc::capacity_mismatch, fmt::format("{} has capacity {}, expected {}", what,
                                                         info.capacity, *expected.capacity));
    }
    if (expected.max_message_size && info.max_message_size != *expected.max_message_size) {
        throw Error(errc::capacity_mismatch,
                    fmt::format("{} has maximum message size {}, expected {}", what,
                                info.max_message_size, *expected.max_message_size));
    }
    if (expected.known_flags && (info.flags & ~*expected.known_flags) != 0) {
        throw Error(errc::corrupt, fmt::format("{}: flags {:#x} has bits outside {:#x}", what,
                                               info.flags, *expected.known_flags));
    }
    // The creator's identity and namespace steer liveness judgements (stale-segment reaping):
    // a pid outside Linux's range or a namespace of 0 was never written by a creator.
    const pid_t creator_pid = detail::identity_pid(info.creator);
    if (creator_pid <= 0 || creator_pid > detail::max_pid) {
        throw Error(errc::corrupt,
                    fmt::format("{}: creator identity {:#x} names no process", what, info.creator));
    }
    if (info.pid_namespace == detail::unknown_pid_namespace) {
        throw Error(errc::corrupt, fmt::format("{}: creator pid namespace is 0", what));
    }
    if (info.registry_capacity > max_registry_capacity) {
        throw Error(errc::corrupt, fmt::format("{}: registry capacity {} out of range", what,
                                               info.registry_capacity));
    }
    std::optional<uint64_t> body = expected.body_size(info);
    if (!body) {
        throw Error(errc::corrupt, fmt::format("{}: capacity {} / message size {} out of range",
                                               what, info.capacity, info.max_message_size));
    }
    std::optional<uint64_t> total = total_size(info.registry_capacity, *body);
    const uint64_t body_offset = body_offset_for(info.registry_capacity);
    if (!total || stored_body_size != *body || stored_body_offset != body_offset ||
        stored_segment_size != *total) {
        throw Error(errc::corrupt,
                    fmt::format("{}: sizes in the header do not match its capacities", what));
    }
    if (size < *total) {
        throw Error(errc::truncated,
                    fmt::format("{} is truncated: {} bytes, needs {}", what, size, *total));
    }
    info.body_size = *body;
    segment.info_ = info;
    segment.body_offset_ = body_offset;
    return segment;
}

bool Segment::remove(std::string_view name) {
    std::string valid_name = validate_name(name);
    int error = detail::unlink_shm_file(valid_name);
    if (error == ENOENT) return false;
    if (error != 0) fail_file_operation(error, "cannot remove " + describe(valid_name));
    return true;
}

void Segment::unlink() {
    if (!name_.empty()) detail::unlink_shm_file(name_);
    remove_on_destroy_pid_ = 0;
}

void Segment::set_inheritable(bool inheritable) {
    if (int error = detail::set_close_on_exec(fd_, !inheritable))
        fail_file_operation(error, "fcntl");
}

}  // namespace shuttle
