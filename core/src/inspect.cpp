#include "shuttle/inspect.hpp"

#include <algorithm>

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
        case ObjectKind::unbounded_queue: return "unbounded_queue";
        case ObjectKind::test: return "test";
    }
    return "unknown";
}

std::optional<SegmentSummary> inspect_segment(std::string_view name_view) {
    const std::string name(name_view);
    const detail::FileResult file = detail::open_shm_file(name, false);
    if (file.fd < 0) return std::nullopt;
    SegmentSummary summary;
    summary.name = name;
    summary.mapping = detail::processes_mapping(name);
    uint64_t size = 0;
    int error = detail::file_size(file.fd, size);
    summary.size = size;
    void* base = nullptr;
    if (error == 0 && size >= segment_header_area)
        base = detail::map_read_only(file.fd, size, error);
    detail::close_fd(file.fd);
    if (base == nullptr) {
        summary.problem = error ? "cannot map it" : "too small for a shuttle header";
        return summary;
    }
    // Read each field once; bound what steers a memory access (the file is untrusted).
    const auto& header = *static_cast<const SegmentHeader*>(base);
    summary.shuttle = header.magic.load(std::memory_order_acquire) == segment_magic;
    summary.layout_version = header.layout_version;
    if (!summary.shuttle) {
        summary.problem = "not a shuttle segment";
    } else if (summary.layout_version != segment_layout_version) {
        summary.problem = "layout version " + std::to_string(summary.layout_version) +
                          " (this build reads " + std::to_string(segment_layout_version) + ")";
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
    std::vector<SegmentSummary> summaries;
    for (const std::string& name : detail::list_shm_files(std::string(prefix))) {
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
