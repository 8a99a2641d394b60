// shuttle::nats's value types: how to reach the servers, how a queue's stream is made, and the
// task handles of at-least-once delivery. Plain values, copyable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shuttle/queue_types.hpp"

namespace shuttle::nats {

/// How to reach a NATS server or cluster. Every field is passed through to libnats
/// (natsOptions); nothing is hard-coded, nothing is read from the environment.
struct ConnectionOptions {
    /// Server URLs ("nats://host:port", "tls://host:port"); the client picks one and fails over
    /// to the others (and to those the cluster advertises).
    std::vector<std::string> servers{"nats://127.0.0.1:4222"};
    std::string name;  // the client's name, shown by the server's monitoring
    // Authentication (at most one kind): user and password, a token, or a .creds file (JWT and
    // NKey seed, as `nsc` writes it).
    std::string user;
    std::string password;
    std::string token;
    std::string credentials_file;
    // TLS: `tls` requires it; the files are PEM paths; an empty tls_hostname checks the URL's.
    bool tls = false;
    std::string tls_ca_file;
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_hostname;
    bool tls_skip_verify = false;  // for tests only: accepts any server certificate
    /// How long connecting to one server may take.
    std::chrono::milliseconds connect_timeout{2000};
    /// The longest one request may wait for its answer (publish acknowledgement, stream and
    /// consumer information, acknowledgement confirmation): past it a call returns
    /// errc::timeout (a blocking call retries within its own deadline instead).
    std::chrono::milliseconds call_timeout{5000};
    /// Reconnection after a lost connection: attempts (-1: forever) and the pause between two
    /// rounds over the server list. Calls made meanwhile wait (bounded by their deadline).
    int max_reconnects = -1;
    std::chrono::milliseconds reconnect_wait{100};
    /// Keep trying in the background when no server answers at connect() (else it throws).
    bool retry_on_failed_connect = false;
};

/// Where the stream keeps its messages.
enum class Storage { file, memory };

/// How a queue's stream and consumer are made (create, open_or_create); open() takes what the
/// stream has.
struct QueueOptions {
    /// An item got and not acknowledged within ack_wait is delivered again (to any getter):
    /// longer than the longest task, shorter than the wait you accept after a consumer dies.
    std::chrono::milliseconds ack_wait{30000};
    /// Servers holding a copy (1, or 3 / 5 in a cluster).
    int replicas = 1;
    Storage storage = Storage::file;
    /// How long the stream remembers message ids: a put retried within it is stored once.
    std::chrono::milliseconds duplicate_window{120000};
};

/// The task handles are the local queue's (shuttle/queue_types.hpp), so code written for
/// one backend compiles for the other. In a NATS task, TaskId::ticket is the stream sequence of
/// the task's message and TaskId::queue the key of the handle holding it; valid until
/// task_done(task) on that handle.
using shuttle::ByteTask;
using shuttle::Task;
using shuttle::TaskId;

}  // namespace shuttle::nats
