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
    /// Why it is not readable: permission (the file's mode, or its owner is a user the caller
    /// may not inspect), not_shuttle (not a regular file, no magic, too small),
    /// version_mismatch, truncated, corrupt. ok when readable.
    errc error = errc::ok;
    uint32_t owner = 0;  // the file's owner (user id), when it could be opened
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

/// The summary of named segment `name`. nullopt if there is no such file. The file is opened
/// as Segment::open() opens it (detail::open_segment_file: never through a symbolic link,
/// never waiting on a FIFO, a regular file only), read-only; its owner must be the caller or
/// root — or anyone, when the caller is root (root administers every user's segments). What
/// cannot be read is a summary with `error` and `problem` set. Non-blocking; reads /proc
/// (every process's maps: as slow as the machine has processes). Thread-safe.
/// Throws Error(invalid_name), Error(not_found) if the segment directory does not exist.
std::optional<SegmentSummary> inspect_segment(std::string_view name);

/// Summaries of every regular file in the shm directory whose name is a valid segment name
/// starting with `prefix` ("" = all), including those that could not be read (`error`).
/// Throws Error(invalid_name) if no valid name starts with `prefix`, Error(not_found) if the
/// segment directory does not exist, Error(permission) if it cannot be read.
std::vector<SegmentSummary> list_segments(std::string_view prefix = "");

/// Removes the stale shuttle segments whose names start with `prefix`; returns their names.
/// A segment that a process attaches while this runs may be removed under it: that process
/// keeps working (removal only unlinks the name), but nobody else can open it by name.
std::vector<std::string> reap_stale(std::string_view prefix = "");

/// A readable name for an object kind ("queue", "lock", ...).
const char* kind_name(ObjectKind kind) noexcept;

}  // namespace shuttle
