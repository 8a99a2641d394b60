// The triad spellings of every waiting operation, written once (CRTP, as NamedObject is for the
// factories). A front-end (`Derived`: a queue, a byte queue, a remote queue, ...) implements
// only what differs between front-ends:
//
//     x_until(args..., deadline, stop)  waits at most until `deadline`
//     try_x(args...)                    never waits for room or items
//
// and inherits the rest, the same everywhere:
//
//     x(args..., stop)                  blocks: x_until(args..., no_deadline, stop)
//     x_for(args..., timeout, stop)     waits at most `timeout` (zero or negative: one try):
//                                       x_until(args..., deadline_after(timeout), stop)
//     x_nowait(args...)                 Python's: try_x, throwing Full/Empty/ShutDown/Closed
//                                       (or the Error of its errc) instead of returning it
//
// Each form returns what the front-end's x_until / try_x returns, and is as thread- and
// process-safe as they are. `stop` cancels a wait (errc::cancelled).
//
// `Args` are the leading arguments of the operation, fixed by the front-end (none for a
// Queue<T>'s get, the buffer for a ByteQueue's). A front-end with more than one argument form
// (a ByteQueue puts a span or a string_view) names each: PutTriad<Derived, A, B> gives both.
// A front-end that declares any member of the same name (`x`, `x_for`, `x_nowait`) hides the
// base's: it brings them back with a using-declaration.
#pragma once

#include <chrono>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "shuttle/error.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// `attempt`'s value (nothing for a status), or throws the exception matching its error (Full,
/// Empty, ShutDown, Closed, or Error(errc)): the x_nowait forms.
template <class Result>
auto value_or_throw(Result&& attempt) {
    if (!attempt) throw_error_about("queue", attempt.error());
    if constexpr (!std::is_same_v<std::remove_cvref_t<Result>, status>) return std::move(*attempt);
}

/// put(item, stop), put_for(item, timeout, stop), put_nowait(item) over the front-end's
/// put_until(item, deadline, stop) and try_put(item), for one item type.
template <class Derived, class Item>
class PutTriadOf {
  public:
    /// Blocks while the queue is full (put_until with no deadline).
    auto put(Item item, const std::stop_token& stop = {}) {
        return self().put_until(std::forward<Item>(item), no_deadline, stop);
    }
    /// Waits at most `timeout` for room (zero or negative: one try).
    template <class Rep, class Period>
    auto put_for(Item item, std::chrono::duration<Rep, Period> timeout,
                 const std::stop_token& stop = {}) {
        return self().put_until(std::forward<Item>(item), deadline_after(timeout), stop);
    }
    /// Python's put_nowait(): try_put, throwing Full, ShutDown, Closed or Error(errc).
    void put_nowait(Item item) { value_or_throw(self().try_put(std::forward<Item>(item))); }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

/// The put triad for each of `Items` (one overload set: a ByteQueue's span and string_view).
template <class Derived, class... Items>
class PutTriad : public PutTriadOf<Derived, Items>... {
  public:
    using PutTriadOf<Derived, Items>::put...;
    using PutTriadOf<Derived, Items>::put_for...;
    using PutTriadOf<Derived, Items>::put_nowait...;
};

/// get(args..., stop), get_for(args..., timeout, stop), get_nowait(args...) over the
/// front-end's get_until(args..., deadline, stop) and try_get(args...).
template <class Derived, class... Args>
class GetTriad {
  public:
    /// Blocks while the queue is empty (get_until with no deadline).
    auto get(Args... args, const std::stop_token& stop = {}) {
        return self().get_until(std::forward<Args>(args)..., no_deadline, stop);
    }
    /// Waits at most `timeout` for an item (zero or negative: one try).
    template <class Rep, class Period>
    auto get_for(Args... args, std::chrono::duration<Rep, Period> timeout,
                 const std::stop_token& stop = {}) {
        return self().get_until(std::forward<Args>(args)..., deadline_after(timeout), stop);
    }
    /// Python's get_nowait(): try_get's value, or throws Empty, ShutDown, Closed or Error(errc).
    auto get_nowait(Args... args) {
        return value_or_throw(self().try_get(std::forward<Args>(args)...));
    }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

/// get_task(args..., stop), get_task_for(args..., timeout, stop) over the front-end's
/// get_task_until(args..., deadline, stop); present only when `Enabled` (joinable forms).
template <class Derived, bool Enabled, class... Args>
class GetTaskTriad {
  public:
    /// Blocks while the queue is empty (get_task_until with no deadline).
    auto get_task(Args... args, const std::stop_token& stop = {}) requires Enabled {
        return self().get_task_until(std::forward<Args>(args)..., no_deadline, stop);
    }
    /// Waits at most `timeout` for a task (zero or negative: one try).
    template <class Rep, class Period>
    auto get_task_for(Args... args, std::chrono::duration<Rep, Period> timeout,
                      const std::stop_token& stop = {}) requires Enabled {
        return self().get_task_until(std::forward<Args>(args)..., deadline_after(timeout), stop);
    }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

/// join(stop), join_for(timeout, stop) over the front-end's join_until(deadline, stop);
/// present only when `Enabled` (joinable forms).
template <class Derived, bool Enabled>
class JoinTriad {
  public:
    /// Blocks until every item put has been task_done()'d (join_until with no deadline).
    status join(const std::stop_token& stop = {}) requires Enabled {
        return self().join_until(no_deadline, stop);
    }
    /// Waits at most `timeout` for that.
    template <class Rep, class Period>
    status join_for(std::chrono::duration<Rep, Period> timeout,
                    const std::stop_token& stop = {}) requires Enabled {
        return self().join_until(deadline_after(timeout), stop);
    }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace shuttle::detail
