// The factory set every primitive takes from detail/named_object.hpp: what it adds beyond the
// per-primitive tests (open_fd, and open_or_create's parameter check on an existing name).
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "shuttle/barrier.hpp"
#include "shuttle/event.hpp"
#include "shuttle/lock.hpp"
#include "shuttle/semaphore.hpp"
#include "sync_support.hpp"

namespace shuttle {
namespace {

using test::NameGuard;
using test::run_child;

template <class F>
errc error_of(F body) {
    try {
        body();
    } catch (const Error& error) {
        return error.condition();
    }
    return errc::ok;
}

// An anonymous primitive's descriptor, handed to an exec'd program, attaches it there.
TEST(SyncNamedObject, ExecedProgramAttachesAnEventByDescriptor) {
    Event event = Event::anonymous();
    event.segment().set_inheritable(true);
    const std::string fd = std::to_string(event.segment().fd());
    EXPECT_EQ(run_child([&] {
                  execl(SHUTTLE_TEST_HELPER, SHUTTLE_TEST_HELPER, "event-set", fd.c_str(),
                        static_cast<char*>(nullptr));
                  return 127;
              }),
              0);
    EXPECT_TRUE(event.is_set());
}

// open_fd checks what open checks, and leaves the descriptor to the caller when it refuses.
TEST(SyncNamedObject, OpenFdChecksTheKind) {
    Lock lock = Lock::anonymous();
    const int lock_fd = ::dup(lock.segment().fd());
    EXPECT_EQ(error_of([&] { Event::open_fd(lock_fd); }), errc::kind_mismatch);
    EXPECT_GE(::fcntl(lock_fd, F_GETFD), 0) << "a refused descriptor was closed";
    ::close(lock_fd);

    Semaphore plain = Semaphore::anonymous(1);
    const int plain_fd = ::dup(plain.segment().fd());
    EXPECT_EQ(error_of([&] { BoundedSemaphore::open_fd(plain_fd); }), errc::kind_mismatch);
    ::close(plain_fd);

    BoundedSemaphore bounded = BoundedSemaphore::anonymous(3);
    Semaphore any = Semaphore::open_fd(::dup(bounded.segment().fd()));
    EXPECT_EQ(any.bound(), 3u);
    EXPECT_TRUE(any.try_acquire());
    EXPECT_EQ(bounded.value(), 2u);  // one semaphore behind both handles
}

// open_or_create refuses parameters create would refuse, even when the name exists; otherwise
// it attaches what is there (the parameters are used only to create).
TEST(SyncNamedObject, OpenOrCreateChecksItsParametersEvenWhenTheNameExists) {
    NameGuard name(test::unique_name("barrier"));
    Barrier barrier = Barrier::create(*name, 2);
    EXPECT_EQ(error_of([&] { Barrier::open_or_create(*name, 0); }), errc::invalid_argument);
    EXPECT_EQ(Barrier::open_or_create(*name, 5).parties(), 2u);
    EXPECT_EQ(error_of([&] { Barrier::create("", 2); }), errc::invalid_name);
}

}  // namespace
}  // namespace shuttle
