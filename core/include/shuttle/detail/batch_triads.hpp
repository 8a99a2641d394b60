// The triad spellings of the batch operations (put_many / get_many), written once (CRTP). A
// front-end (`Derived`: a queue, a byte queue) implements only
//
//     x_until(args..., deadline, stop)  waits at most until `deadline`
//     try_x(args...)                    never waits for room or items
//
// and inherits
//
//     x(args..., stop)                  blocks: x_until(args..., no_deadline, stop)
//     x_for(args..., timeout, stop)     waits at most `timeout` (zero or negative: one try)
//
// `Args` are the batch's arguments, fixed by the front-end (a span of items for a Queue<T>,
// a buffer and its lengths for a ByteQueue). Each form returns what x_until returns and is as
// thread- and process-safe as it is; `stop` cancels a wait (errc::cancelled).
#pragma once

#include <chrono>
#include <stop_token>
#include <utility>

#include "shuttle/wait.hpp"

namespace shuttle::detail {

/// put_many(args..., stop), put_many_for(args..., timeout, stop) over the front-end's
/// put_many_until(args..., deadline, stop).
template <class Derived, class... Args>
class PutManyTriad {
  public:
    /// Blocks until every item is put (put_many_until with no deadline).
    auto put_many(Args... args, const std::stop_token& stop = {}) {
        return self().put_many_until(std::forward<Args>(args)..., no_deadline, stop);
    }
    /// Waits at most `timeout` for room for the rest (zero or negative: one try).
    template <class Rep, class Period>
    auto put_many_for(Args... args, std::chrono::duration<Rep, Period> timeout,
                      const std::stop_token& stop = {}) {
        return self().put_many_until(std::forward<Args>(args)..., deadline_after(timeout), stop);
    }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

/// get_many(args..., stop), get_many_for(args..., timeout, stop) over the front-end's
/// get_many_until(args..., deadline, stop).
template <class Derived, class... Args>
class GetManyTriad {
  public:
    /// Blocks until at least one item is there (get_many_until with no deadline).
    auto get_many(Args... args, const std::stop_token& stop = {}) {
        return self().get_many_until(std::forward<Args>(args)..., no_deadline, stop);
    }
    /// Waits at most `timeout` for an item (zero or negative: one try).
    template <class Rep, class Period>
    auto get_many_for(Args... args, std::chrono::duration<Rep, Period> timeout,
                      const std::stop_token& stop = {}) {
        return self().get_many_until(std::forward<Args>(args)..., deadline_after(timeout), stop);
    }

  private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace shuttle::detail
