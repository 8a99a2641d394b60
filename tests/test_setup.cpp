// scripts/setup against stand-in apt-get, apt-cache, dpkg-query and sudo commands: the order of
// what it asks, on a fresh machine and on one where everything is installed.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

namespace shuttle {
namespace {

namespace filesystem = std::filesystem;
using namespace std::chrono_literals;

// From CMake, not __FILE__: a compiler launcher (ccache with base_dir) may make __FILE__ relative.
const filesystem::path source_directory = SHUTTLE_SOURCE_DIR;

void write_executable(const filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
    filesystem::permissions(path, filesystem::perms::owner_all);
}

std::string read_text(const filesystem::path& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

/// A fake machine: `installed` lists installed packages, `available` what the distribution has
/// (visible to apt-cache only after `apt-get update`), `log` every apt command in order.
class FakeMachine {
  public:
    FakeMachine() {
        char pattern[] = "/tmp/shuttle-setup-XXXXXX";
        root_ = ::mkdtemp(pattern);
        filesystem::create_directories(root_ / "bin");
        filesystem::create_directories(root_ / "lists");
        std::ofstream(root_ / "installed");
        std::ofstream(root_ / "log");
        const std::string state = root_.string();
        write_executable(root_ / "bin/dpkg-query",
                         "#!/bin/bash\ngrep -qx \"${@: -1}\" " + state +
                             "/installed && echo -n 'install ok installed'\nexit 0\n");
        write_executable(root_ / "bin/apt-cache",
                         "#!/bin/bash\necho \"apt-cache $*\" >> " + state + "/log\n[ -e " + state +
                             "/updated ] && grep -qx \"$2\" " + state + "/available\n");
        write_executable(root_ / "bin/apt-get",
                         "#!/bin/bash\necho \"apt-get $*\" >> " + state +
                             "/log\n"
                             "if [ \"$1\" = update ]; then touch " +
                             state +
                             "/updated; fi\n"
                             "if [ \"$1\" = install ]; then for p in \"$@\"; do "
                             "[[ $p == -* || $p == install ]] || echo \"$p\" >> " +
                             state + "/installed; done; fi\n");
        write_executable(root_ / "bin/sudo", "#!/bin/bash\nexec \"$@\"\n");
    }
    ~FakeMachine() { filesystem::remove_all(root_); }

    void make_available(const std::string& package) const {
        std::ofstream(root_ / "available", std::ios::app) << package << "\n";
    }
    void install_everything_but(const std::string& package) const {
        std::istringstream packages(
            "cmake ninja-build g++ python3 libboost-dev libgtest-dev libbenchmark-dev libfmt-dev "
            "libcli11-dev pkg-config clang-format libzmq3-dev gnuplot-nox nlohmann-json3-dev "
            "libcereal-dev "
            "nats-server libnats-dev "
            "libatomic-queue-dev libconcurrentqueue-dev");
        std::ofstream installed(root_ / "installed");
        for (std::string name; packages >> name;) {
            if (name != package) installed << name << "\n";
        }
    }
    void fill_package_lists() const {
        std::ofstream(root_ /
                      "lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages");
    }

    /// Runs scripts/setup with `group` ("", "--tests" or "--bench").
    test::ProgramOutput run_setup(const std::string& group = "") const {
        const std::string path = "PATH=" + (root_ / "bin").string() + ":" + std::getenv("PATH");
        std::vector<std::string> arguments{path,
                                           "SHUTTLE_APT_LISTS_DIR=" + (root_ / "lists").string(),
                                           "bash", (source_directory / "scripts/setup").string()};
        if (!group.empty()) arguments.push_back(group);
        return test::run_program("/usr/bin/env", arguments, 30000ms);
    }
    std::string log() const { return read_text(root_ / "log"); }
    std::string installed() const { return read_text(root_ / "installed"); }
    /// The installed packages, sorted.
    std::vector<std::string> installed_packages() const {
        std::istringstream lines(installed());
        std::vector<std::string> packages;
        for (std::string name; lines >> name;) packages.push_back(name);
        std::sort(packages.begin(), packages.end());
        return packages;
    }
    void clear_log() const { std::ofstream(root_ / "log", std::ios::trunc); }

  private:
    filesystem::path root_;
};

// A fresh machine: empty package lists, nothing installed. The lists must be refreshed before
// apt-cache is asked about the optional packages, or they are never installed.
TEST(Setup, RefreshesThePackageListsBeforeLookingForOptionalPackages) {
    FakeMachine machine;
    machine.make_available("libatomic-queue-dev");
    machine.make_available("libconcurrentqueue-dev");
    test::ProgramOutput output = machine.run_setup("--bench");
    ASSERT_EQ(output.exit_code, 0) << output.output;
    const std::string log = machine.log();
    const auto update = log.find("apt-get update");
    const auto first_question = log.find("apt-cache show");
    ASSERT_NE(update, std::string::npos) << log;
    ASSERT_NE(first_question, std::string::npos) << log;
    EXPECT_LT(update, first_question) << log;
    EXPECT_NE(machine.installed().find("libatomic-queue-dev"), std::string::npos) << log;
    EXPECT_NE(machine.installed().find("libconcurrentqueue-dev"), std::string::npos) << log;
    EXPECT_NE(machine.installed().find("gnuplot-nox"), std::string::npos) << log;
    EXPECT_NE(machine.installed().find("libbenchmark-dev"), std::string::npos) << log;

    // A second run finds everything installed: it asks nothing and installs nothing.
    machine.clear_log();
    output = machine.run_setup("--bench");
    ASSERT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(machine.log(), "");
    EXPECT_EQ(output.output, "");
}

// Only an optional package the distribution lacks is missing and the lists are there: no
// refresh on every run.
TEST(Setup, AMissingOptionalPackageTheListsLackCausesNoRefresh) {
    FakeMachine machine;
    machine.install_everything_but("libatomic-queue-dev");
    machine.fill_package_lists();
    test::ProgramOutput output = machine.run_setup("--bench");
    ASSERT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(test::count_of(machine.log(), "apt-get"), 0u) << machine.log();
    EXPECT_EQ(test::count_of(machine.log(), "apt-cache show libatomic-queue-dev"), 1u);
}

// The demo needs only the build dependencies: plain scripts/setup installs exactly those; the
// test run adds GoogleTest and what the bench build needs (scripts/test builds and smoke-tests
// the bench), not the charts' gnuplot or the optional peers.
TEST(Setup, InstallsOnlyTheBuildDependenciesUnlessAskedForTestsOrBench) {
    FakeMachine machine;
    machine.make_available("libatomic-queue-dev");
    test::ProgramOutput output = machine.run_setup();
    ASSERT_EQ(output.exit_code, 0) << output.output;
    EXPECT_EQ(machine.installed_packages(),
              (std::vector<std::string>{"cmake", "g++", "libcereal-dev", "libcli11-dev",
                                        "libfmt-dev", "ninja-build"}))
        << machine.log();
    EXPECT_EQ(test::count_of(machine.log(), "apt-cache"), 0u) << machine.log();

    output = machine.run_setup("--tests");
    ASSERT_EQ(output.exit_code, 0) << output.output;
    const std::vector<std::string> with_tests = machine.installed_packages();
    for (const char* needed : {"libgtest-dev", "libbenchmark-dev", "libboost-dev",
                               "nlohmann-json3-dev", "libzmq3-dev", "pkg-config", "python3"}) {
        EXPECT_TRUE(std::ranges::count(with_tests, needed) == 1) << needed << ": " << machine.log();
    }
    EXPECT_EQ(std::ranges::count(with_tests, "gnuplot-nox"), 0) << machine.log();
    EXPECT_EQ(std::ranges::count(with_tests, "libatomic-queue-dev"), 0) << machine.log();

    output = machine.run_setup("--nonsense");
    EXPECT_EQ(output.exit_code, 2) << output.output;
    EXPECT_NE(output.output.find("usage: scripts/setup"), std::string::npos) << output.output;
}

}  // namespace
}  // namespace shuttle
