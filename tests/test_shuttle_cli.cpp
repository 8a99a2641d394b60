// The `shuttle` command: segment names only (never a path), files opened as the library opens
// them (no symlink followed, no FIFO waited on, regular files of allowed owners only), and an
// answer on every command.
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <filesystem>

#include <fmt/format.h>

#include <fstream>
#include <string>

#include "counters_segment.hpp"
#include "shuttle/detail/os.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using namespace std::chrono_literals;
using test::NameGuard;
using test::run_program;
using test::unique_name;

constexpr uid_t nobody = 65534;

std::string shm_path(const std::string& name) {
    return detail::shm_directory() + "/" + name;
}

bool exists(const std::string& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0;
}

TEST(ShuttleCli, NoArgumentsPrintsUsageAndExitsWith2) {
    auto shown = run_program(SHUTTLE_CLI, {});
    EXPECT_EQ(shown.exit_code, 2) << shown.output;
    // The usage names each command with what it does.
    for (const char* command : {"list segments", "show one segment", "remove a name",
                                "remove segments no live process"}) {
        EXPECT_NE(shown.output.find(command), std::string::npos) << shown.output;
    }
    shown = run_program(SHUTTLE_CLI, {"frobnicate"});
    EXPECT_EQ(shown.exit_code, 2) << shown.output;
    shown = run_program(SHUTTLE_CLI, {"inspect"});  // its NAME is missing
    EXPECT_EQ(shown.exit_code, 2) << shown.output;
}

TEST(ShuttleCli, PathsAreRefusedAsNames) {
    for (const char* command : {"inspect", "remove"}) {
        for (const char* path : {"../../etc/passwd", "/etc/passwd", "a..b"}) {
            auto shown = run_program(SHUTTLE_CLI, {command, path});
            EXPECT_EQ(shown.exit_code, 1) << command << " " << path << ": " << shown.output;
            EXPECT_NE(shown.output.find("invalid segment name"), std::string::npos) << shown.output;
            EXPECT_EQ(shown.output.find("root:"), std::string::npos) << shown.output;
        }
    }
    EXPECT_TRUE(exists("/etc/passwd"));
    for (const char* command : {"list", "reap"}) {
        auto shown = run_program(SHUTTLE_CLI, {command, "../"});
        EXPECT_EQ(shown.exit_code, 1) << command << ": " << shown.output;
        EXPECT_NE(shown.output.find("cannot start a segment name"), std::string::npos)
            << shown.output;
    }
}

// A FIFO planted in the segment directory: inspect and remove refuse it at once (run_program
// kills a program that hangs: exit code -1000), list does not open it.
TEST(ShuttleCli, AFifoIsRefusedWithoutHanging) {
    NameGuard fifo(unique_name("cli-fifo"));
    ASSERT_EQ(::mkfifo(shm_path(*fifo).c_str(), 0600), 0);
    auto shown = run_program(SHUTTLE_CLI, {"inspect", *fifo}, 10000ms);
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_NE(shown.output.find("not a regular file"), std::string::npos) << shown.output;
    shown = run_program(SHUTTLE_CLI, {"remove", *fifo}, 10000ms);
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_TRUE(exists(shm_path(*fifo)));
    shown = run_program(SHUTTLE_CLI, {"list", *fifo}, 10000ms);
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    shown = run_program(SHUTTLE_CLI, {"reap", *fifo}, 10000ms);
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_TRUE(exists(shm_path(*fifo)));
}

TEST(ShuttleCli, ASymlinkIsNeitherFollowedNorRemoved) {
    NameGuard link(unique_name("cli-link"));
    ASSERT_EQ(::symlink("/etc/passwd", shm_path(*link).c_str()), 0);
    auto shown = run_program(SHUTTLE_CLI, {"inspect", *link});
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_NE(shown.output.find("symbolic link"), std::string::npos) << shown.output;
    shown = run_program(SHUTTLE_CLI, {"remove", *link});
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_TRUE(exists(shm_path(*link)));
}

TEST(ShuttleCli, EveryCommandSaysWhatItDid) {
    const std::string prefix = unique_name("cli-say");
    NameGuard name(prefix + "-a");
    { Segment segment = test::create_counters(*name); }

    auto shown = run_program(SHUTTLE_CLI, {"list", prefix});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_EQ(shown.output.rfind("NAME", 0), 0u) << "a header first: " << shown.output;
    EXPECT_NE(shown.output.find(*name), std::string::npos) << shown.output;
    EXPECT_NE(shown.output.find("1 file in"), std::string::npos) << shown.output;

    shown = run_program(SHUTTLE_CLI, {"list", prefix + "-none"});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_NE(shown.output.find("NAME"), std::string::npos) << shown.output;
    EXPECT_NE(shown.output.find("0 files in"), std::string::npos) << shown.output;

    shown = run_program(SHUTTLE_CLI, {"remove", *name});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_EQ(shown.output, fmt::format("removed {}\n", *name));
    EXPECT_FALSE(exists(shm_path(*name)));

    shown = run_program(SHUTTLE_CLI, {"remove", *name});
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_NE(shown.output.find("no segment"), std::string::npos) << shown.output;

    shown = run_program(SHUTTLE_CLI, {"reap", prefix});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_EQ(shown.output, "nothing to reap\n");
}

TEST(ShuttleCli, RemovingAnAttachedSegmentSaysWhoKeepsIt) {
    NameGuard name(unique_name("cli-attached"));
    Segment attached = test::create_counters(*name);  // this process keeps it mapped
    auto shown = run_program(SHUTTLE_CLI, {"remove", *name});
    EXPECT_EQ(shown.exit_code, 0) << shown.output;
    EXPECT_EQ(shown.output, fmt::format("removed {} (1 attached process keeps working)\n", *name));
    test::counters(attached)[1].store(3);  // and it does
    EXPECT_EQ(test::counters(attached)[1].load(), 3u);
}

TEST(ShuttleCli, ARegularFileThatIsNoSegmentIsNotRemoved) {
    NameGuard name(unique_name("cli-plain"));
    std::ofstream(shm_path(*name)) << std::string(512, 'x');
    auto shown = run_program(SHUTTLE_CLI, {"remove", *name});
    EXPECT_EQ(shown.exit_code, 1) << shown.output;
    EXPECT_NE(shown.output.find("not a shuttle segment"), std::string::npos) << shown.output;
    EXPECT_TRUE(exists(shm_path(*name)));
}

// Segments the caller may not read are counted, not silently left out; inspect says why.
TEST(ShuttleCli, ListCountsWhatItCouldNotReadAndInspectSaysPermissionDenied) {
    const std::string prefix = unique_name("cli-perm");
    NameGuard readable(prefix + "-mine"), unreadable(prefix + "-theirs");
    const bool root = ::geteuid() == 0;
    // As root, the command runs as nobody and root's 0600 segment is the unreadable one; as
    // another user, its own write-only segment is.
    { Segment segment = test::create_counters(*unreadable, 4, {.mode = root ? 0600u : 0200u}); }
    { Segment segment = test::create_counters(*readable, 4, {.mode = 0644}); }
    // nobody may not reach the build tree (a checkout under a private directory): as root, run
    // a copy of the command from a directory everyone can enter.
    std::filesystem::path command = SHUTTLE_CLI;
    const std::filesystem::path copy_directory =
        std::filesystem::temp_directory_path() / unique_name("cli-copy");
    if (root) {
        std::filesystem::create_directory(copy_directory);
        std::filesystem::permissions(copy_directory, std::filesystem::perms(0755));
        std::filesystem::copy_file(command, copy_directory / "shuttle");
        std::filesystem::permissions(copy_directory / "shuttle", std::filesystem::perms(0755));
        command = copy_directory / "shuttle";
    }
    const int code = test::run_child([&] {
        if (root &&
            (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0)) {
            return 2;
        }
        auto shown = run_program(command.string(), {"list", prefix});
        if (shown.exit_code != 0) return 3;
        if (shown.output.find("2 files in") == std::string::npos ||
            shown.output.find("1 could not be read (permission denied)") == std::string::npos) {
            std::fputs(shown.output.c_str(), stderr);
            return 4;
        }
        shown = run_program(command.string(), {"inspect", *unreadable});
        if (shown.exit_code != 1 || shown.output.find("ermission denied") == std::string::npos) {
            std::fputs(shown.output.c_str(), stderr);
            return 5;
        }
        return 0;
    });
    if (root) std::filesystem::remove_all(copy_directory);
    EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace shuttle
