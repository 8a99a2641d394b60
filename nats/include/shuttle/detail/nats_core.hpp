// The untyped core of shuttle::nats queues (nats/src/nats_queue.cpp): one JetStream work-queue
// stream and its shared durable pull consumer, seen through one handle. The typed classes in
// shuttle/nats.hpp encode and decode with shuttle's codec around it; no libnats type shows here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

#include "shuttle/error.hpp"
#include "shuttle/nats_types.hpp"
#include "shuttle/wait.hpp"

namespace shuttle::nats::detail {

struct ConnectionState;
struct QueueState;

/// What a queue records about itself in its stream (checked on open, as a local queue's header).
struct QueueForm {
    bool joinable = false;
    std::size_t max_message_size = 0;  // largest encoded item a put accepts
    uint64_t type_tag = 0;             // shuttle::type_fingerprint<T>() (0: bytes)
};

/// How get() leaves a message it took: acknowledged at once (Queue), held until task_done()
/// (JoinableQueue::get), or held as a task for task_done(task) (get_task).
enum class Hold { none, fifo, task };

/// Called with each fetched message's bytes; returns ok (taken), bad_message (not an encoding
/// of the item type: the message is terminated, never redelivered) or buffer_too_small (the
/// message stays with the handle for the next get).
struct Consumer {
    errc (*call)(void* context, std::span<const std::byte> bytes);
    void* context;
    errc operator()(std::span<const std::byte> bytes) const { return call(context, bytes); }
};
template <class F>
Consumer consumer_of(F& function) {
    return {[](void* context, std::span<const std::byte> bytes) {
                return (*static_cast<F*>(context))(bytes);
            },
            &function};
}

enum class OpenMode { create, open, open_or_create };

class QueueCore {
  public:
    QueueCore(const std::shared_ptr<ConnectionState>& connection, std::string_view name,
              OpenMode mode, std::size_t capacity, const QueueForm& form,
              const QueueOptions& options);
    QueueCore(QueueCore&&) noexcept;
    QueueCore& operator=(QueueCore&&) noexcept;
    ~QueueCore();

    static void remove(const std::shared_ptr<ConnectionState>& connection, std::string_view name);

    status put_until(std::span<const std::byte> message, steady_clock::time_point deadline,
                     const std::stop_token& stop);
    status try_put(std::span<const std::byte> message);
    status put_many_until(std::span<const std::span<const std::byte>> messages,
                          steady_clock::time_point deadline, const std::stop_token& stop);

    /// One message to `consume`: ok, empty (try), timeout, closed (closed and drained),
    /// cancelled, or what `consume` returned. `task` is filled for Hold::task.
    errc get_until(Consumer consume, Hold hold, TaskId* task, steady_clock::time_point deadline,
                   const std::stop_token& stop, bool try_once);
    /// Up to `max` messages, waiting until the first (or the deadline): how many were consumed,
    /// or the error get_until gives when none was.
    result<std::size_t> get_many_until(std::size_t max, Consumer consume, Hold hold,
                                       steady_clock::time_point deadline,
                                       const std::stop_token& stop, bool try_once);

    status task_done();
    status task_done(const TaskId& task);
    status join_until(steady_clock::time_point deadline, const std::stop_token& stop);
    std::size_t shutdown(bool immediate);
    bool closed() const;
    std::size_t size() const;
    std::size_t unfinished_tasks() const;
    std::uint64_t redelivered_count() const;
    std::size_t capacity() const noexcept;
    std::size_t max_message_size() const noexcept;
    const std::string& name() const noexcept;

  private:
    std::unique_ptr<QueueState> state_;
};

}  // namespace shuttle::nats::detail
