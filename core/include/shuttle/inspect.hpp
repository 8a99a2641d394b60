// Finding and reaping named segments left behind (every peer's top complaint: a crashed
// program's /dev/shm files stay forever). "Stale" means no live process is attached — neither
// registered in the segment's registry nor mapping its file — not merely "the creator died".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shuttle/segment.hpp"

namespace shuttle {

/// What a named segment's header and registry say, read without attaching (read-only). The
/// ObjectDescription's fields are set only if `readable`.
struct SegmentSummary : ObjectDescription {
    std::string name;
    bool shuttle = false;   // has shuttle's magic number
    bool readable = false;  // ... and a header this build understands (else see `problem`)
    std::string problem;
    uint32_t layout_version = 0;
    uint64_t size = 0;
    pid_t creator_pid = 0;
    bool creator_alive = false;
    int64_t created_unix_seconds = 0;
    std::vector<pid_t> registered;  // live (or unknowable: other pid namespace) registry holders
    std::vector<pid_t> mapping;     // live processes that have it mapped
    /// A shuttle segment no live process is attached to: safe to remove.
    bool stale() const noexcept { return shuttle && registered.empty() && mapping.empty(); }
};

/// The summary of named segment `name`. nullopt if there is no such file. Non-blocking; reads
/// /proc (every process's maps: as slow as the machine has processes). Thread-safe.
std::optional<SegmentSummary> inspect_segment(std::string_view name);

/// Summaries of every file in the shm directory whose name starts with `prefix` ("" = all).
std::vector<SegmentSummary> list_segments(std::string_view prefix = "");

/// Removes the stale shuttle segments whose names start with `prefix`; returns their names.
/// A segment that a process attaches while this runs may be removed under it: that process
/// keeps working (removal only unlinks the name), but nobody else can open it by name.
std::vector<std::string> reap_stale(std::string_view prefix = "");

/// A readable name for an object kind ("queue", "lock", ...).
const char* kind_name(ObjectKind kind) noexcept;

}  // namespace shuttle
