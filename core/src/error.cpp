#include "shuttle/error.hpp"

#include <cstring>

namespace shuttle {
namespace {

class Category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "shuttle"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::ok: return "ok";
            case errc::full: return "full";
            case errc::empty: return "empty";
            case errc::timeout: return "timed out";
            case errc::closed: return "closed";
            case errc::eof: return "end of file: the peer closed its end";
            case errc::cancelled: return "cancelled by a stop request";
            case errc::broken_pipe: return "broken pipe: the peer end is closed";
            case errc::owner_dead: return "the previous owner died holding the lock";
            case errc::too_large: return "message too large";
            case errc::buffer_too_small: return "buffer too small for the message";
            case errc::not_found: return "no such segment";
            case errc::already_exists: return "segment already exists";
            case errc::invalid_name: return "invalid segment name";
            case errc::invalid_argument: return "invalid argument";
            case errc::not_shuttle: return "not a shuttle segment";
            case errc::version_mismatch: return "segment layout version mismatch";
            case errc::kind_mismatch: return "segment holds a different kind of object";
            case errc::type_mismatch: return "element type mismatch";
            case errc::capacity_mismatch: return "capacity mismatch";
            case errc::truncated: return "segment is truncated";
            case errc::corrupt: return "segment header is corrupt";
            case errc::permission: return "permission denied";
            case errc::no_space: return "no space left for the shared memory";
            case errc::registry_full: return "participant registry is full";
            case errc::not_owner: return "not the owner";
            case errc::wrong_end: return "wrong end of a one-way pipe";
            case errc::task_done_overflow: return "task_done() called more times than items put";
            case errc::broken: return "broken: aborted or a party died";
            case errc::cut_off:
                return "message cut off: its sender died or gave up midway (nothing of it is "
                       "delivered)";
            case errc::system: return "operating-system error";
            case errc::task_held:
                return "this thread still holds a task it got with get_task() (task_done() it "
                       "first)";
            case errc::bad_message:
                return "bad message: the bytes are not an encoding of the expected type";
            case errc::unavailable:
                return "the remote server cannot be reached or failed the request";
            case errc::worker_died:
                return "the pool worker running the task died (killed or crashed)";
            case errc::task_failed: return "the pool task threw an exception";
            case errc::shut_down:
                return "shut down: no more puts anywhere; gets drain what is left, then stop";
            case errc::busy:
                return "busy: another process holds what this call would have to wait for (try "
                       "again)";
        }
        return "unknown shuttle error";
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

void throw_error(errc code, const std::string& what) {
    switch (code) {
        case errc::full: throw Full(what);
        case errc::empty: throw Empty(what);
        case errc::eof: throw EOFError(what);
        case errc::closed: throw Closed(what);
        case errc::shut_down: throw ShutDown(what);
        case errc::timeout: throw Timeout(what);
        default: throw Error(code, what);
    }
}

void throw_error_about(const std::string& subject, errc code) {
    const std::string message = make_error_code(code).message();
    switch (code) {
        case errc::full: throw Full(Error::Text{subject + " is " + message});
        case errc::empty: throw Empty(Error::Text{subject + " is " + message});
        case errc::closed: throw Closed(Error::Text{subject + " is " + message});
        case errc::shut_down: throw ShutDown(Error::Text{subject + " is " + message});
        default: throw_error(code, subject);
    }
}

void throw_system_error(int errno_value, const std::string& what) {
    throw Error(errc::system, what + ": " + std::strerror(errno_value));
}

}  // namespace shuttle
