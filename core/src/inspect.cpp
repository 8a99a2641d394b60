#include "shuttle/inspect.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "shuttle/detail/os.hpp"

namespace shuttle {

const char* kind_name(ObjectKind kind) noexcept {
    switch (kind) {
        case ObjectKind::queue: return "queue";
        case ObjectKind::byte_queue: return "byte_queue";
        case ObjectKind::pipe: return "pipe";
        case ObjectKind::lock: return "lock";
        case ObjectKind::rlock: return "rlock";
        case ObjectKind::semaphore: return "semaphore";
        case ObjectKind::event: return "event";
        case ObjectKind::condition: return "condition";
        case ObjectKind::barrier: return "barrier";
        case ObjectKind::test: return "test";
    }
    return "unknown";
}

std::optional<SegmentSummary> inspect_segment(std::string_view name_view) {
    SegmentSummary summary;
    summary.name = Segment::validate_name(name_view);
    const std::string& name = summary.name;
    detail::SegmentFile file;
    try {
        file = detail::open_segment_file(name, false, detail::current_user() == detail::root_user);
    } catch (const Error& error) {
        if (error.condition() == errc::not_found) {
            if (detail::shm_directory_exists()) return std::nullopt;
            throw;  // says that the directory is missing
        }
        summary.error = error.condition();
        summary.problem = error.what();
        return summary;
    }
    summary.owner = file.status.owner;
    summary.mapping = detail::processes_mapping(name);
    const uint64_t size = file.status.size;
    summary.size = size;
    void* base = nullptr;
    int error = 0;
    if (size >= segment_header_area) base = detail::map_read_only(file.fd, size, error);
    detail::close_fd(file.fd);
    if (base == nullptr) {
        summary.error = error ? errc::system : errc::not_shuttle;
        summary.problem = error ? "cannot map it" : "too small for a shuttle header";
        return summary;
    }
    // Read each field once; bound what steers a memory access (the file is untrusted).
    const auto& header = *static_cast<const SegmentHeader*>(base);
    summary.shuttle = header.magic.load(std::memory_order_acquire) == segment_magic;
    summary.layout_version = header.layout_version;
    const uint64_t stored_segment_size = header.segment_size;
    if (!summary.shuttle) {
        summary.error = errc::not_shuttle;
        summary.problem = "not a shuttle segment";
    } else if (summary.layout_version != segment_layout_version) {
        summary.error = errc::version_mismatch;
        summary.problem = "layout version " + std::to_string(summary.layout_version) +
                          " (this build reads " + std::to_string(segment_layout_version) + ")";
    } else if (stored_segment_size > size) {
        summary.error = errc::truncated;
        summary.problem = "truncated: " + std::to_string(size) + " bytes, its header says " +
                          std::to_string(stored_segment_size);
    } else {
        summary.readable = true;
        static_cast<ObjectDescription&>(summary) = description_of(header);
        summary.created_unix_seconds = static_cast<int64_t>(header.created_unix_seconds);
        const detail::ProcessIdentity creator = header.creator;
        summary.creator_pid = detail::identity_pid(creator);
        summary.creator_alive =
            detail::process_liveness(creator, header.pid_namespace) != detail::Liveness::dead;
        const uint32_t registry_capacity = header.registry_capacity;
        const uint64_t registry_end =
            segment_header_area + uint64_t{registry_capacity} * sizeof(RegistryEntry);
        if (registry_capacity > max_registry_capacity || registry_end > size) {
            summary.readable = false;
            summary.error = errc::corrupt;
            summary.problem = "corrupt registry size";
        } else {
            const auto* entries = reinterpret_cast<const RegistryEntry*>(
                static_cast<const std::byte*>(base) + segment_header_area);
            for (uint32_t i = 0; i < registry_capacity; ++i) {
                const uint64_t identity = entries[i].identity.load(std::memory_order_acquire);
                if (identity == 0) continue;
                const uint64_t pid_namespace =
                    entries[i].pid_namespace.load(std::memory_order_acquire);
                if (detail::process_liveness(identity, pid_namespace) == detail::Liveness::dead)
                    continue;
                summary.registered.push_back(detail::identity_pid(identity));
            }
            std::sort(summary.registered.begin(), summary.registered.end());
            summary.registered.erase(
                std::unique(summary.registered.begin(), summary.registered.end()),
                summary.registered.end());
        }
    }
    detail::unmap(base, size);
    return summary;
}

std::vector<SegmentSummary> list_segments(std::string_view prefix) {
    // A prefix no valid name starts with ("../", "a..") is a mistake, not an empty listing.
    if (!prefix.empty() && !Segment::valid_name(std::string(prefix) + "x")) {
        throw Error(
            errc::invalid_name,
            fmt::format("'{}' cannot start a segment name (the rule: docs/segments.md)", prefix));
    }
    std::vector<SegmentSummary> summaries;
    int error = 0;
    const std::vector<std::string> names = detail::list_shm_files(std::string(prefix), error);
    if (error != 0) {
        detail::fail_file_operation(error,
                                    "cannot list the segment directory " + detail::shm_directory());
    }
    for (const std::string& name : names) {
        if (!Segment::valid_name(name)) continue;  // no shuttle segment is called that
        if (auto summary = inspect_segment(name)) summaries.push_back(std::move(*summary));
    }
    return summaries;
}

std::vector<std::string> reap_stale(std::string_view prefix) {
    std::vector<std::string> removed;
    for (const SegmentSummary& summary : list_segments(prefix)) {
        if (summary.stale() && detail::unlink_shm_file(summary.name) == 0) {
            removed.push_back(summary.name);
        }
    }
    return removed;
}

}  // namespace shuttle
