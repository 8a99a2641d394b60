#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "counters_segment.hpp"
#include "shuttle/inspect.hpp"
#include "shuttle/segment.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::counters;
using test::counters_body_size;
using test::counters_expectation;
using test::counters_info;
using test::create_counters;
using test::NameGuard;
using test::run_child;
using test::unique_name;

errc open_error(const std::string& name, SegmentExpectation expected = counters_expectation()) {
    try {
        Segment::open(name, expected);
    } catch (const Error& error) {
        return error.condition();
    }
    return errc::ok;
}

std::string shm_path(const std::string& name) {
    return detail::shm_directory() + "/" + name;
}

TEST(Segment, CreateOpenShareMemory) {
    NameGuard name(unique_name());
    Segment creator = create_counters(*name);
    Segment opener = Segment::open(*name, counters_expectation(4));
    EXPECT_EQ(counters(opener)[0].load(), 42u);
    counters(opener)[1].store(7);
    EXPECT_EQ(counters(creator)[1].load(), 7u);
    EXPECT_EQ(opener.info().capacity, 4u);
    EXPECT_EQ(opener.info().creator, detail::current_process_identity());
}

TEST(Segment, CreatedOwnerOnlyByDefault) {
    NameGuard name(unique_name());
    Segment segment = create_counters(*name);
    struct stat info {};
    ASSERT_EQ(::stat(shm_path(*name).c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    NameGuard wide(unique_name());
    Segment shared = create_counters(*wide, 4, CreateOptions{.mode = 0666});
    ASSERT_EQ(::stat(shm_path(*wide).c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0666u);
}

// As root (file modes do not bind root): the child becomes nobody before opening a 0600
// segment of root's. As another user: the owner opens its own read-only (0400) segment for
// writing.
TEST(Segment, PermissionDeniedIsReported) {
    NameGuard name(unique_name());
    const bool root = ::geteuid() == 0;
    Segment segment = create_counters(*name, 4, CreateOptions{.mode = root ? 0600u : 0400u});
    int code = run_child([&] {
        if (root) {
            constexpr uid_t nobody = 65534;
            if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0) {
                return 2;
            }
            if (::geteuid() != nobody) return 3;
        }
        return open_error(*name) == errc::permission ? 0 : 1;
    });
    EXPECT_EQ(code, 0) << (code == 2 ? "could not become nobody" : "open was not refused");
}

TEST(Segment, OpenMissingIsNotFound) {
    EXPECT_EQ(open_error(unique_name()), errc::not_found);
}

TEST(Segment, CreateTwiceIsAlreadyExists) {
    NameGuard name(unique_name());
    Segment first = create_counters(*name);
    try {
        create_counters(*name);
        FAIL() << "second create succeeded";
    } catch (const Error& error) {
        EXPECT_EQ(error.condition(), errc::already_exists);
    }
    EXPECT_EQ(counters(first)[0].load(), 42u);  // the first one is untouched
}

TEST(Segment, ZeroOrHugeCapacityIsInvalidArgument) {
    NameGuard name(unique_name());
    for (uint64_t capacity : {uint64_t{0}, uint64_t{1} << 40}) {
        try {
            create_counters(*name, capacity);
            ADD_FAILURE() << "capacity " << capacity << " accepted";
        } catch (const Error& error) {
            EXPECT_EQ(error.condition(), errc::invalid_argument);
        }
    }
}

TEST(Segment, MismatchesAreReportedPrecisely) {
    NameGuard name(unique_name());
    Segment segment = create_counters(*name);
    SegmentExpectation other_kind = counters_expectation();
    other_kind.kind = ObjectKind::queue;
    EXPECT_EQ(open_error(*name, other_kind), errc::kind_mismatch);
    SegmentExpectation other_tag = counters_expectation();
    other_tag.type_tag = 0x4321;
    EXPECT_EQ(open_error(*name, other_tag), errc::type_mismatch);
    SegmentExpectation other_size = counters_expectation();
    other_size.element_size = 16;
    EXPECT_EQ(open_error(*name, other_size), errc::type_mismatch);
    EXPECT_EQ(open_error(*name, counters_expectation(5)), errc::capacity_mismatch);
    EXPECT_EQ(open_error(*name, counters_expectation(4)), errc::ok);
}

// Each header field, corrupted on its own, gives its own precise error; every field is here
// (the static_assert fails when a field is added without a case).
TEST(Segment, CorruptHeaderFieldsAreDetected) {
    // The offsets docs/layout.md gives.
    static_assert(
        offsetof(SegmentHeader, layout_version) == 8 && offsetof(SegmentHeader, kind) == 12 &&
        offsetof(SegmentHeader, segment_size) == 16 &&
        offsetof(SegmentHeader, element_size) == 24 &&
        offsetof(SegmentHeader, element_align) == 32 && offsetof(SegmentHeader, type_tag) == 40 &&
        offsetof(SegmentHeader, capacity) == 48 &&
        offsetof(SegmentHeader, max_message_size) == 56 && offsetof(SegmentHeader, flags) == 64 &&
        offsetof(SegmentHeader, creator) == 72 && offsetof(SegmentHeader, pid_namespace) == 80 &&
        offsetof(SegmentHeader, registry_capacity) == 88 &&
        offsetof(SegmentHeader, header_size) == 92 && offsetof(SegmentHeader, body_offset) == 96 &&
        offsetof(SegmentHeader, body_size) == 104 &&
        offsetof(SegmentHeader, created_unix_seconds) == 112);
    static_assert(sizeof(SegmentHeader) == 128,
                  "a new header field needs its corruption case below");
    struct Case {
        const char* field;
        void (*corrupt)(SegmentHeader&);
        errc expected;
    };
    const Case cases[] = {
        {"magic", [](SegmentHeader& h) { h.magic.store(0x1111); }, errc::not_shuttle},
        {"layout_version", [](SegmentHeader& h) { h.layout_version = 99; }, errc::version_mismatch},
        {"kind", [](SegmentHeader& h) { h.kind = 3; }, errc::kind_mismatch},
        {"kind-unknown", [](SegmentHeader& h) { h.kind = 12345; }, errc::kind_mismatch},
        {"segment_size", [](SegmentHeader& h) { h.segment_size += 64; }, errc::corrupt},
        {"element_size", [](SegmentHeader& h) { h.element_size = 4; }, errc::type_mismatch},
        {"element_align", [](SegmentHeader& h) { h.element_align = 1; }, errc::type_mismatch},
        {"type_tag", [](SegmentHeader& h) { h.type_tag = 9; }, errc::type_mismatch},
        {"capacity", [](SegmentHeader& h) { h.capacity = 1ull << 50; }, errc::corrupt},
        {"capacity-sized", [](SegmentHeader& h) { h.capacity = 3; }, errc::corrupt},
        {"max_message_size", [](SegmentHeader& h) { h.max_message_size = 1ull << 40; },
         errc::capacity_mismatch},
        {"flags", [](SegmentHeader& h) { h.flags = 0x4; }, errc::corrupt},
        {"creator-zero", [](SegmentHeader& h) { h.creator = 0; }, errc::corrupt},
        {"creator-pid", [](SegmentHeader& h) { h.creator |= uint64_t{0x7fffffff} << 32; },
         errc::corrupt},
        {"pid_namespace", [](SegmentHeader& h) { h.pid_namespace = 0; }, errc::corrupt},
        {"registry_capacity", [](SegmentHeader& h) { h.registry_capacity = 1u << 30; },
         errc::corrupt},
        {"registry-shift", [](SegmentHeader& h) { h.registry_capacity = 3; }, errc::corrupt},
        {"header_size", [](SegmentHeader& h) { h.header_size = 8; }, errc::corrupt},
        {"body_offset", [](SegmentHeader& h) { h.body_offset = 0; }, errc::corrupt},
        {"body_size", [](SegmentHeader& h) { h.body_size = ~0ull; }, errc::corrupt},
        // Informational only (a creator's clock may be wrong): never a reason to refuse.
        {"created_unix_seconds", [](SegmentHeader& h) { h.created_unix_seconds = ~0ull; },
         errc::ok},
    };
    // What the counters object declares: no flag bits, no messages.
    SegmentExpectation expected = counters_expectation();
    expected.known_flags = 0;
    expected.max_message_size = 0;
    for (const Case& c : cases) {
        NameGuard name(unique_name());
        {
            Segment segment = create_counters(*name);
            c.corrupt(segment.header());
        }
        EXPECT_EQ(open_error(*name, expected), c.expected) << "field " << c.field;
    }
    // Unchanged, the same expectation opens it, and the informational fields come through.
    NameGuard name(unique_name());
    const auto before = static_cast<uint64_t>(std::time(nullptr));
    Segment created = create_counters(*name);
    Segment opened = Segment::open(*name, expected);
    EXPECT_EQ(opened.info().creator, detail::current_process_identity());
    EXPECT_EQ(opened.info().pid_namespace, detail::current_pid_namespace());
    EXPECT_GE(opened.info().created_unix_seconds, before);
    EXPECT_LE(opened.info().created_unix_seconds, before + 60);
}

TEST(Segment, TruncatedSegmentIsDetected) {
    NameGuard name(unique_name());
    { Segment segment = create_counters(*name, 64); }
    ASSERT_EQ(::truncate(shm_path(*name).c_str(), 300), 0);
    EXPECT_EQ(open_error(*name), errc::truncated);
    ASSERT_EQ(::truncate(shm_path(*name).c_str(), 100), 0);
    EXPECT_EQ(open_error(*name), errc::not_shuttle);
}

// inspect compares the file's size with the header's before reading past the header (it maps
// only what the file has: reading beyond its end would fault with SIGBUS), as open() does.
TEST(Segment, TruncatedSegmentIsReportedByInspect) {
    NameGuard name(unique_name());
    uint64_t body_offset = 0;
    {
        Segment segment = create_counters(*name, 64);
        body_offset = Segment::body_offset_for(segment.info().registry_capacity);
    }
    // Header and registry intact, the body cut short; then into the registry; then nothing.
    for (uint64_t size : {body_offset + 8, body_offset - 8}) {
        ASSERT_EQ(::truncate(shm_path(*name).c_str(), static_cast<off_t>(size)), 0);
        EXPECT_EQ(open_error(*name), errc::truncated) << size;
        auto summary = inspect_segment(*name);
        ASSERT_TRUE(summary);
        EXPECT_FALSE(summary->readable) << size;
        EXPECT_EQ(summary->error, errc::truncated) << size << ": " << summary->problem;
    }
    ASSERT_EQ(::truncate(shm_path(*name).c_str(), 0), 0);
    EXPECT_EQ(open_error(*name), errc::not_shuttle);
    auto summary = inspect_segment(*name);
    ASSERT_TRUE(summary);
    EXPECT_EQ(summary->error, errc::not_shuttle) << summary->problem;
}

TEST(Segment, ForeignFileIsNotShuttle) {
    NameGuard name(unique_name());
    {
        std::ofstream file(shm_path(*name));
        file << std::string(4096, 'z');
    }
    EXPECT_EQ(open_error(*name), errc::not_shuttle);
    { std::ofstream file(shm_path(*name), std::ios::trunc); }
    EXPECT_EQ(open_error(*name), errc::not_shuttle);
}

TEST(Segment, RemoveWhileAttachedKeepsUsersWorking) {
    NameGuard name(unique_name());
    Segment segment = create_counters(*name);
    Segment other = Segment::open(*name, counters_expectation());
    EXPECT_TRUE(Segment::remove(*name));
    EXPECT_FALSE(Segment::remove(*name));
    EXPECT_EQ(open_error(*name), errc::not_found);
    counters(segment)[2].store(5);
    EXPECT_EQ(counters(other)[2].load(), 5u);
    Segment again = create_counters(*name);  // the name is free for a new segment
    EXPECT_EQ(counters(again)[2].load(), 0u);
}

TEST(Segment, RemoveOnDestroyOnlyInTheCreatingProcess) {
    NameGuard name(unique_name());
    {
        Segment segment = create_counters(*name, 4, CreateOptions{.remove_on_destroy = true});
        // A forked child that destroys its copy must not remove the name.
        EXPECT_EQ(run_child([&] {
                      { Segment moved = std::move(segment); }
                      return open_error(*name) == errc::ok ? 0 : 1;
                  }),
                  0);
        EXPECT_EQ(open_error(*name), errc::ok);
    }
    EXPECT_EQ(open_error(*name), errc::not_found);
}

TEST(Segment, AnonymousSegmentIsInheritedAcrossFork) {
    Segment segment = Segment::create_anonymous(counters_info(), counters_body_size,
                                                [](Segment& s) { counters(s)[0].store(1); });
    EXPECT_EQ(run_child([&] {
                  counters(segment)[0].fetch_add(10);
                  return 0;
              }),
              0);
    EXPECT_EQ(counters(segment)[0].load(), 11u);
}

// A named segment is attached by an exec'd program, and a memfd is handed to one.
TEST(Segment, ExecedProgramAttachesByNameAndByDescriptor) {
    NameGuard name(unique_name());
    Segment named = create_counters(*name);
    Segment anonymous = Segment::create_anonymous(counters_info(), counters_body_size, {});
    anonymous.set_inheritable(true);
    const std::string fd = std::to_string(anonymous.fd());
    int code = run_child([&] {
        execl(SHUTTLE_TEST_HELPER, SHUTTLE_TEST_HELPER, "segment-add", name.str().c_str(),
              fd.c_str(), static_cast<char*>(nullptr));
        return 127;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(counters(named)[1].load(), 100u);
    EXPECT_EQ(counters(anonymous)[1].load(), 200u);
}

TEST(Segment, CreatorKilledMidInitialisationLeavesNothing) {
    NameGuard name(unique_name());
    int code = run_child([&] {
        detail::arm_kill_point("segment.create.before_init");
        create_counters(*name);
        return 0;
    });
    EXPECT_EQ(code, -SIGKILL);
    EXPECT_EQ(open_error(*name), errc::not_found);
    Segment segment = create_counters(*name);  // the name was never taken
    EXPECT_EQ(counters(segment)[0].load(), 42u);
}

/// The message of the Error `body` throws, or "" (with a failure) if it throws none.
template <class F>
std::string error_message(F body, errc& condition) {
    try {
        body();
    } catch (const Error& error) {
        condition = error.condition();
        return error.what();
    }
    condition = errc::ok;
    return "";
}

// A file-size limit makes ftruncate fail with EFBIG: a clean no_space, and no name left behind.
TEST(Segment, FileSizeLimitMakesFtruncateFailWithNoSpace) {
    NameGuard name(unique_name());
    int code = run_child([&] {
        ::signal(SIGXFSZ, SIG_IGN);
        rlimit limit{4096, 4096};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
        errc condition = errc::ok;
        std::string message = error_message([&] { create_counters(*name, 1 << 16); }, condition);
        if (condition != errc::no_space) return 3;
        return message.find("(ftruncate)") != std::string::npos &&
                       message.find(std::strerror(EFBIG)) != std::string::npos
                   ? 0
                   : 4;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(open_error(*name), errc::not_found);
}

// A full tmpfs: ftruncate succeeds (tmpfs files are sparse), posix_fallocate fails with ENOSPC,
// reported as no_space before any page is touched (no SIGBUS), and the name is never published.
// The 64 KiB tmpfs is mounted in a private mount namespace of a child, which needs root.
TEST(Segment, FullTmpfsMakesPosixFallocateFailWithNoSpace) {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root (CAP_SYS_ADMIN)";
    int code = run_child([&] {
        if (::unshare(CLONE_NEWNS) != 0) return 10;
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 11;
        char directory[] = "/tmp/shuttle-tmpfs-XXXXXX";
        if (::mkdtemp(directory) == nullptr) return 12;
        if (::mount("tmpfs", directory, "tmpfs", 0, "size=64k") != 0) return 13;
        ::setenv("SHUTTLE_SHM_DIR", directory, 1);
        errc condition = errc::ok;
        std::string message = error_message([] { create_counters("big", 1 << 16); }, condition);
        int result = 0;
        if (condition != errc::no_space)
            result = 3;
        else if (message.find("(posix_fallocate)") == std::string::npos)
            result = 4;
        else if (message.find(std::strerror(ENOSPC)) == std::string::npos)
            result = 5;
        else if (open_error("big") != errc::not_found)
            result = 6;
        // The same tmpfs still takes a segment that fits.
        else if (error_message([] { create_counters("small", 4); }, condition) != "")
            result = 7;
        ::umount2(directory, MNT_DETACH);
        ::rmdir(directory);
        return result;
    });
    if (code == 10 || code == 11 || code == 13) {
        GTEST_SKIP() << "cannot mount a tmpfs in a private mount namespace here (step " << code
                     << ")";
    }
    EXPECT_EQ(code, 0);
}

// Close-on-exec by default: an exec'd program does not inherit a segment's descriptor unless
// set_inheritable(true) was called (and loses it again after set_inheritable(false)).
TEST(Segment, DescriptorIsClosedOnExecUnlessInheritable) {
    NameGuard name(unique_name());
    Segment named = create_counters(*name);
    Segment opened = Segment::open(*name, counters_expectation());
    Segment anonymous = Segment::create_anonymous(counters_info(), counters_body_size, {});
    auto open_in_exec_child = [](const Segment& segment) {
        const std::string fd = std::to_string(segment.fd());
        return run_child([&] {
            execl(SHUTTLE_TEST_HELPER, SHUTTLE_TEST_HELPER, "fd-is-open", fd.c_str(),
                  static_cast<char*>(nullptr));
            return 127;
        });
    };
    constexpr int is_open = 10;
    constexpr int is_closed = 11;
    for (Segment* segment : {&named, &opened, &anonymous}) {
        EXPECT_EQ(open_in_exec_child(*segment), is_closed);
        segment->set_inheritable(true);
        EXPECT_EQ(open_in_exec_child(*segment), is_open);
        segment->set_inheritable(false);
        EXPECT_EQ(open_in_exec_child(*segment), is_closed);
    }
}

}  // namespace
}  // namespace shuttle
