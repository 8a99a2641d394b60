// Who may open a named segment and what an open says when the path holds something else: a
// segment planted by another user is refused unless the caller opts in; a symlink, directory or
// FIFO is not_shuttle (and never hangs); a missing segment directory is named as such.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "counters_segment.hpp"
#include "shuttle/array.hpp"
#include "shuttle/dict.hpp"
#include "shuttle/inspect.hpp"
#include "shuttle/list.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/queue.hpp"
#include "shuttle/segment.hpp"
#include "shuttle/value.hpp"
#include "support.hpp"

namespace shuttle {
namespace {

using test::error_of;
using test::NameGuard;
using test::run_child;
using test::unique_name;

constexpr uid_t nobody = 65534;

std::string message_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const Error& error) {
        return error.what();
    }
    return {};
}

std::string shm_path(const std::string& name) {
    return detail::shm_directory() + "/" + name;
}

/// In a forked child: becomes nobody (false if it could not).
bool become_nobody() {
    return ::setgroups(0, nullptr) == 0 && ::setgid(nobody) == 0 && ::setuid(nobody) == 0 &&
           ::geteuid() == nobody;
}

SegmentExpectation foreign_owner_allowed() {
    SegmentExpectation expected = test::counters_expectation();
    expected.allow_foreign_owner = true;
    return expected;
}

// CI runs as root: a child that became nobody plants world-writable segments (as a squatter
// would) and exits; they stay, owned by nobody.
TEST(SegmentAccess, ASegmentOfAnotherUserIsRefusedUnlessAllowed) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to plant a segment as another user";
    NameGuard counters_name(unique_name("squat")), lock_name(unique_name("squat")),
        queue_name(unique_name("squat"));
    ASSERT_EQ(run_child([&] {
                  if (!become_nobody()) return 2;
                  test::create_counters(*counters_name, 4, CreateOptions{.mode = 0666});
                  Lock::create(*lock_name, CreateOptions{.mode = 0666});
                  Queue<int>::create(*queue_name, 4, {.mode = 0666});
                  return 0;
              }),
              0);
    EXPECT_EQ(error_of([&] { Segment::open(*counters_name, test::counters_expectation()); }),
              errc::permission);
    const std::string why =
        message_of([&] { Segment::open(*counters_name, test::counters_expectation()); });
    EXPECT_NE(why.find("allow_foreign_owner"), std::string::npos) << why;
    EXPECT_EQ(error_of([&] { Lock::open(*lock_name); }), errc::permission);
    EXPECT_EQ(error_of([&] { Lock::open_or_create(*lock_name); }), errc::permission);

    Segment joined = Segment::open(*counters_name, foreign_owner_allowed());
    EXPECT_EQ(test::counters(joined)[0].load(), 42u);
    Lock lock = Lock::open(*lock_name, {.allow_foreign_owner = true});
    EXPECT_TRUE(lock.try_lock());
    lock.unlock();
    EXPECT_NO_THROW(Lock::open_or_create(*lock_name, {.allow_foreign_owner = true}));

    EXPECT_EQ(error_of([&] { Queue<int>::open(*queue_name); }), errc::permission);
    EXPECT_EQ(error_of([&] { Queue<int>::open_or_create(*queue_name, 4); }), errc::permission);
    auto queue = Queue<int>::open(*queue_name, {.allow_foreign_owner = true});
    EXPECT_TRUE(queue.try_put(5));
}

// The same squatting rule for state/: Value, Array, Dict and List.
TEST(SegmentAccess, StateObjectsOfAnotherUserAreRefusedUnlessAllowed) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to plant a segment as another user";
    NameGuard value(unique_name("squat")), array(unique_name("squat")), dict(unique_name("squat")),
        list(unique_name("squat"));
    ASSERT_EQ(run_child([&] {
                  if (!become_nobody()) return 2;
                  Value<int>::create(*value, 41, {.mode = 0666});
                  Array<int>::create(*array, {4, 2}, {.mode = 0666});
                  Dict<int, int>::create(*dict, {.mode = 0666}).set(1, 2);
                  List<int>::create(*list, {.mode = 0666}).append(3);
                  return 0;
              }),
              0);
    EXPECT_EQ(error_of([&] { Value<int>::open(*value); }), errc::permission);
    EXPECT_EQ(error_of([&] { Value<int>::open_or_create(*value); }), errc::permission);
    EXPECT_EQ(error_of([&] { Array<int>::open(*array); }), errc::permission);
    EXPECT_EQ(error_of([&] { Array<int>::open_or_create(*array, 2); }), errc::permission);
    EXPECT_EQ(error_of([&] { Dict<int, int>::open(*dict); }), errc::permission);
    EXPECT_EQ(error_of([&] { Dict<int, int>::open_or_create(*dict); }), errc::permission);
    EXPECT_EQ(error_of([&] { List<int>::open(*list); }), errc::permission);
    EXPECT_EQ(error_of([&] { List<int>::open_or_create(*list); }), errc::permission);

    const CreateOptions allowed{.allow_foreign_owner = true};
    const ContainerOptions container_allowed{.allow_foreign_owner = true};
    EXPECT_EQ(Value<int>::open(*value, allowed).load(), 41);
    EXPECT_EQ(Value<int>::open_or_create(*value, 0, allowed).load(), 41);
    EXPECT_EQ(Array<int>::open(*array, allowed).load(1), 2);
    EXPECT_EQ(Array<int>::open_or_create(*array, 2, allowed).load(0), 4);
    EXPECT_EQ((Dict<int, int>::open(*dict, container_allowed).get(1)), std::optional<int>(2));
    EXPECT_EQ(List<int>::open_or_create(*list, container_allowed).get(0), 3);
}

TEST(SegmentAccess, ASegmentOfRootOrOfTheCallerIsAccepted) {
    NameGuard name(unique_name("owned"));
    Segment created = test::create_counters(*name, 4, CreateOptions{.mode = 0666});
    EXPECT_NO_THROW(Segment::open(*name, test::counters_expectation()));
    if (::geteuid() != 0) return;
    // Root's segment, opened by another user: root owns the machine, it is no squatter.
    EXPECT_EQ(run_child([&] {
                  if (!become_nobody()) return 2;
                  Segment opened = Segment::open(*name, test::counters_expectation());
                  return test::counters(opened)[0].load() == 42 ? 0 : 1;
              }),
              0);
}

TEST(SegmentAccess, ASymlinkOrDirectoryAtThePathIsNotShuttle) {
    NameGuard target(unique_name("target")), link(unique_name("link")), dir(unique_name("dir"));
    Segment created = test::create_counters(*target);
    ASSERT_EQ(::symlink(shm_path(*target).c_str(), shm_path(*link).c_str()), 0);
    ASSERT_EQ(::mkdir(shm_path(*dir).c_str(), 0700), 0);
    EXPECT_EQ(error_of([&] { Segment::open(*link, test::counters_expectation()); }),
              errc::not_shuttle);
    EXPECT_EQ(error_of([&] { Segment::open(*dir, test::counters_expectation()); }),
              errc::not_shuttle);
    const std::string why = message_of([&] { Segment::open(*dir, test::counters_expectation()); });
    EXPECT_NE(why.find("directory"), std::string::npos) << why;
    ::rmdir(shm_path(*dir).c_str());
}

// A FIFO in the segment directory: opening it must neither block (no writer) nor be taken for
// a segment. The child runs under run_child's watchdog: a hang fails the test.
TEST(SegmentAccess, AFifoAtThePathIsNotShuttleAndDoesNotHang) {
    NameGuard fifo(unique_name("fifo"));
    ASSERT_EQ(::mkfifo(shm_path(*fifo).c_str(), 0600), 0);
    EXPECT_EQ(run_child([&] {
                  if (error_of([&] { Segment::open(*fifo, test::counters_expectation()); }) !=
                      errc::not_shuttle) {
                      return 1;
                  }
                  auto summary = inspect_segment(*fifo);
                  return summary && summary->error == errc::not_shuttle && !summary->readable ? 0
                                                                                              : 3;
              }),
              0);
}

TEST(SegmentAccess, ASocketAtThePathIsNotShuttle) {
    NameGuard name(unique_name("socket"));
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = shm_path(*name);
    ASSERT_LT(path.size(), sizeof address.sun_path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(error_of([&] { Segment::open(*name, test::counters_expectation()); }),
              errc::not_shuttle);
    auto summary = inspect_segment(*name);
    ASSERT_TRUE(summary);
    EXPECT_EQ(summary->error, errc::not_shuttle) << summary->problem;
    ::close(fd);
}

TEST(SegmentAccess, AMissingSegmentDirectoryIsNamed) {
    EXPECT_EQ(run_child([&] {
                  ::setenv("SHUTTLE_SHM_DIR", "/nonexistent-shuttle-dir", 1);
                  const auto create = [] { test::create_counters("absent-dir"); };
                  const std::string why = message_of(create);
                  if (error_of(create) != errc::not_found) return 1;
                  if (why.find("/nonexistent-shuttle-dir") == std::string::npos ||
                      why.find("does not exist") == std::string::npos) {
                      return 2;
                  }
                  const auto open = [] {
                      Segment::open("absent-dir", test::counters_expectation());
                  };
                  return message_of(open).find("does not exist") != std::string::npos ? 0 : 3;
              }),
              0);
}

// inspect of a segment the caller may not read says so (it used to say "no segment").
TEST(SegmentAccess, InspectOfAnUnreadableSegmentSaysPermissionDenied) {
    NameGuard name(unique_name("unreadable"));
    const bool root = ::geteuid() == 0;
    // Root reads anything: its child becomes nobody. Another user makes its own write-only.
    Segment created = test::create_counters(*name, 4, CreateOptions{.mode = root ? 0600u : 0200u});
    EXPECT_EQ(run_child([&] {
                  if (root && !become_nobody()) return 2;
                  auto summary = inspect_segment(*name);
                  if (!summary) return 3;
                  if (summary->readable || summary->error != errc::permission) return 4;
                  return summary->problem.find("ermission denied") != std::string::npos ? 0 : 5;
              }),
              0);
}

}  // namespace
}  // namespace shuttle
