// Boost.Asio operations over shuttle queues and pipe ends (docs/event_loop.md), header-only:
// only programs that include this header depend on Asio.
//
//     boost::asio::io_context io;
//     shuttle::asio::AsyncQueue jobs(io.get_executor(), queue);        // queue: a handle
//     auto item = co_await jobs.async_get(boost::asio::use_awaitable);  // no thread waits
//
// Each operation tries the non-blocking form first and otherwise waits on the handle's
// descriptor (get_descriptor(), put_descriptor(), recv_descriptor(), send_descriptor()) in the
// io_context's reactor, then tries again: no thread per waiting operation, no polling. Any Asio
// completion token works: callbacks, use_future, use_awaitable.
//
// Completion: (error_code, value) for gets/receives, (error_code) for puts/sends. A shuttle
// errc (shut_down, closed, eof, broken_pipe, ...) arrives as an error_code of
// shuttle::asio::error_category() (compare with `shuttle::asio::is(ec, errc::shut_down)`);
// cancel() completes pending operations with boost::asio::error::operation_aborted. Debian's
// Boost (1.74) has no per-operation cancellation slots yet: cancel() on the object is the
// cancellation (bind a timer to it for a timeout). An operation never completes inside the call
// that started it (an immediate result is posted to the executor).
//
// Thread-safety: as for Asio I/O objects: one AsyncQueue / AsyncConnection is used from one
// thread (or strand) at a time. At most one pending get and one pending put per object.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "shuttle/detail/os.hpp"
#include "shuttle/error.hpp"
#include "shuttle/pipe.hpp"

namespace shuttle::asio {

/// shuttle::errc as a boost::system error category (Asio's error_code type in Boost 1.74).
inline const boost::system::error_category& error_category() noexcept {
    struct Category : boost::system::error_category {
        const char* name() const noexcept override { return "shuttle"; }
        std::string message(int value) const override {
            return shuttle::make_error_code(static_cast<errc>(value)).message();
        }
    };
    static const Category category;
    return category;
}
inline boost::system::error_code make_error_code(errc code) noexcept {
    return {static_cast<int>(code), error_category()};
}
/// Whether `ec` is shuttle's `code`.
inline bool is(const boost::system::error_code& ec, errc code) noexcept {
    return ec.category() == error_category() && ec.value() == static_cast<int>(code);
}

namespace detail {

/// A stream_descriptor over a duplicate of a shuttle descriptor: Asio owns (and closes) the
/// duplicate; the handle keeps its own.
template <class Executor>
boost::asio::posix::stream_descriptor watch(const Executor& executor, int fd) {
    const int copy = shuttle::detail::duplicate_fd(fd);
    if (copy < 0) throw_system_error(errno, "shuttle::asio: dup");
    return boost::asio::posix::stream_descriptor(executor, copy);
}

/// The composed operation of every async_x here: `attempt()` returns a shuttle result (or
/// status); errc `would_block` means "wait for the descriptor, then attempt again".
template <class Value, class Attempt>
struct ReadyLoop {
    boost::asio::posix::stream_descriptor& watcher;
    Attempt attempt;
    errc would_block;
    std::optional<Value> value = {};
    boost::system::error_code result = {};
    bool started = false;
    bool finished = false;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
        if (finished) return complete(self);
        if (started && ec) {
            result = ec;
            return complete(self);
        }
        auto got = attempt();
        if (!got && got.error() == would_block) {
            started = true;
            return watcher.async_wait(boost::asio::posix::descriptor_base::wait_read,
                                      std::move(self));
        }
        if (got) {
            if constexpr (!std::is_same_v<Value, bool>) value.emplace(std::move(*got));
        } else {
            result = shuttle::asio::make_error_code(got.error());
        }
        if (!started) {  // never complete inside the initiating call
            started = finished = true;
            return boost::asio::post(watcher.get_executor(), std::move(self));
        }
        complete(self);
    }

    template <class Self>
    void complete(Self& self) {
        if constexpr (std::is_same_v<Value, bool>) {
            self.complete(result);
        } else {
            self.complete(result, value ? std::move(*value) : Value{});
        }
    }
};

template <class Signature, class Value, class Token, class Attempt>
auto run(boost::asio::posix::stream_descriptor& watcher, errc would_block, Attempt attempt,
         Token&& token) {
    return boost::asio::async_compose<Token, Signature>(
        ReadyLoop<Value, Attempt>{watcher, std::move(attempt), would_block}, token, watcher);
}

}  // namespace detail

/// Async gets and puts on a queue handle (Queue<T>, ByteQueue, JoinableQueue<T>, ...), which
/// must outlive this object. Makes the handle's get/put descriptors (on first use of a side).
template <class QueueHandle, class Executor = boost::asio::any_io_executor>
class AsyncQueue {
  public:
    using item_type = std::remove_cvref_t<decltype(*std::declval<QueueHandle&>().try_get())>;

    AsyncQueue(const Executor& executor, QueueHandle& queue) : executor_(executor), queue_(queue) {}

    /// Completes with (error_code, item) once a get succeeds; shut_down once the queue is shut
    /// down and drained; closed after close() on the handle.
    template <class Token>
    auto async_get(Token&& token) {
        if (!getter_) getter_.emplace(detail::watch(executor_, queue_.get_descriptor()));
        return detail::run<void(boost::system::error_code, item_type), item_type>(
            *getter_, errc::empty, [&queue = queue_] { return queue.try_get(); },
            std::forward<Token>(token));
    }

    /// Completes with (error_code) once `item` is in the queue; shut_down if it was shut down.
    template <class Item, class Token>
    auto async_put(Item item, Token&& token) {
        if (!putter_) putter_.emplace(detail::watch(executor_, queue_.put_descriptor()));
        return detail::run<void(boost::system::error_code), bool>(
            *putter_, errc::full,
            [&queue = queue_, item = std::move(item)]() -> result<bool> {
                status done = queue.try_put(item);
                if (!done) return done.error();
                return true;
            },
            std::forward<Token>(token));
    }

    /// Completes every pending operation of this object with operation_aborted. Non-blocking.
    void cancel() {
        if (getter_) getter_->cancel();
        if (putter_) putter_->cancel();
    }

    const Executor& get_executor() const noexcept { return executor_; }

  private:
    Executor executor_;
    QueueHandle& queue_;
    std::optional<boost::asio::posix::stream_descriptor> getter_;
    std::optional<boost::asio::posix::stream_descriptor> putter_;
};

/// Async receives and sends on a pipe end (shuttle::Connection), which must outlive this object.
template <class Executor = boost::asio::any_io_executor>
class AsyncConnection {
  public:
    AsyncConnection(const Executor& executor, Connection& connection)
        : executor_(executor), connection_(connection) {}

    /// Completes with (error_code, message) once a message is there; eof once every copy of the
    /// peer end is closed and everything was received.
    template <class Token>
    auto async_recv(Token&& token) {
        if (!receiver_) receiver_.emplace(detail::watch(executor_, connection_.recv_descriptor()));
        return detail::run<void(boost::system::error_code, std::string), std::string>(
            *receiver_, errc::empty, [&connection = connection_] { return connection.try_recv(); },
            std::forward<Token>(token));
    }

    /// Completes with (error_code) once `message` was sent; broken_pipe if the peer is gone.
    template <class Token>
    auto async_send(std::string message, Token&& token) {
        if (!sender_) sender_.emplace(detail::watch(executor_, connection_.send_descriptor()));
        return detail::run<void(boost::system::error_code), bool>(
            *sender_, errc::full,
            [&connection = connection_, message = std::move(message)]() -> result<bool> {
                status done = connection.try_send(message);
                if (!done) return done.error();
                return true;
            },
            std::forward<Token>(token));
    }

    void cancel() {
        if (receiver_) receiver_->cancel();
        if (sender_) sender_->cancel();
    }

  private:
    Executor executor_;
    Connection& connection_;
    std::optional<boost::asio::posix::stream_descriptor> receiver_;
    std::optional<boost::asio::posix::stream_descriptor> sender_;
};

}  // namespace shuttle::asio
