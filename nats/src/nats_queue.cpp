// shuttle::nats: the queue over JetStream (docs/nats.md). One stream per queue
// ("shuttle_<name>", subject "shuttle.<name>.items", work-queue retention, MaxMsgs = capacity,
// discard new) and one durable pull consumer ("shuttle_<name>_getters") shared by every
// getter. Shutdown moves the stream to the subject "shuttle.<name>.closed": the server then has
// no stream for the items subject, so every later put anywhere is refused (no responders) and
// the flag is in the stream's configuration, which every client reads.
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "shuttle/nats.hpp"

namespace shuttle::nats {
namespace detail {

/// Two connections to the same servers: `connection` sends each request at once (SendAsap:
/// the calls that wait for an answer); `bulk` lets the client's flusher gather writes (the
/// batches' publishes and acks, flushed once per batch).
struct ConnectionState {
    natsConnection* connection = nullptr;
    natsConnection* bulk = nullptr;
    jsCtx* js = nullptr;
    ConnectionOptions options;
    ~ConnectionState() {
        if (js != nullptr) jsCtx_Destroy(js);
        if (connection != nullptr) natsConnection_Destroy(connection);
        if (bulk != nullptr) natsConnection_Destroy(bulk);
    }
};

namespace {

using namespace std::chrono_literals;

int64_t milliseconds_of(std::chrono::milliseconds duration) {
    return std::max<int64_t>(1, duration.count());
}
int64_t nanoseconds_of(std::chrono::milliseconds duration) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count();
}

std::string last_error() {
    const char* text = nats_GetLastError(nullptr);
    return text != nullptr ? text : "";
}

/// A libnats result as an errc. A lost answer or a server not reachable now is timeout (the
/// caller may retry); a connection closed for good is unavailable.
thread_local std::string last_failure;  // libnats's words for the last failed call

// `code` by reference: read after the call that fills it (argument order is unspecified).
errc errc_of(natsStatus status, const jsErrCode& code) {
    if (status != NATS_OK) {
        last_failure = std::string(natsStatus_GetText(status)) +
                       (code != 0 ? " (JetStream error " + std::to_string(code) + ")" : "");
    }
    switch (status) {
        case NATS_OK: return errc::ok;
        case NATS_TIMEOUT:
        case NATS_NO_RESPONDERS:
        case NATS_CONNECTION_DISCONNECTED:
        case NATS_STALE_CONNECTION: return errc::timeout;
        case NATS_CONNECTION_CLOSED: return errc::unavailable;
        case NATS_NOT_FOUND:
            return code == JSStreamNotFoundErr || code == JSConsumerNotFoundErr ? errc::not_found
                                                                                : errc::timeout;
        default: break;
    }
    if (code == JSStreamNotFoundErr || code == JSConsumerNotFoundErr) return errc::not_found;
    if (code == JSStreamNameExistErr) return errc::already_exists;
    // A cluster without a leader for the moment answers 503 (no responders) or an error
    // without a JetStream code: transient.
    return code == 0 ? errc::timeout : errc::unavailable;
}

[[noreturn]] void throw_nats(errc code, const std::string& what) {
    std::string why = last_failure;
    if (!last_error().empty()) why += (why.empty() ? "" : ": ") + last_error();
    throw_error(code, what + (why.empty() ? "" : " (" + why + ")"));
}

/// Waits `pause` (or until the deadline or a stop request): false if the stop was requested.
bool pause_for(steady_clock::duration pause, steady_clock::time_point deadline,
               const std::stop_token& stop) {
    std::mutex mutex;
    std::condition_variable_any never;
    std::unique_lock lock(mutex);
    const auto until = std::min(deadline, steady_clock::now() + pause);
    never.wait_until(lock, stop, until, [] { return false; });
    return !stop.stop_requested();
}

bool valid_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

// The queue's form as the stream's description keeps it (checked on open).
constexpr const char* description_format =
    "shuttle.nats/1 joinable=%d max_message_size=%zu type=%016llx ack_wait_ms=%lld";

std::string describe(const QueueForm& form, std::chrono::milliseconds ack_wait) {
    char text[160];
    std::snprintf(text, sizeof text, description_format, form.joinable ? 1 : 0,
                  form.max_message_size, static_cast<unsigned long long>(form.type_tag),
                  static_cast<long long>(ack_wait.count()));
    return text;
}

/// A libnats answer object, destroyed with its scope.
template <class Info, void (*Destroy)(Info*)>
struct Owned {
    Info* info = nullptr;
    Owned() = default;
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() { Destroy(info); }
};
using StreamInfo = Owned<jsStreamInfo, jsStreamInfo_Destroy>;
using ConsumerInfo = Owned<jsConsumerInfo, jsConsumerInfo_Destroy>;

uint64_t random_key() {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device();
}

}  // namespace

struct QueueState {
    std::shared_ptr<ConnectionState> connection;
    std::string name;
    std::string stream;          // shuttle_<name>
    std::string subject;         // shuttle.<name>.items
    std::string closed_subject;  // shuttle.<name>.closed
    std::string durable;         // shuttle_<name>_getters
    QueueForm form;
    std::size_t capacity = 0;
    std::chrono::milliseconds ack_wait{30000};
    natsSubscription* subscription = nullptr;
    jsCtx* batch_js = nullptr;  // asynchronous publishes, answered to on_batch_answer
    const uint64_t handle_key = random_key();
    std::string id_prefix;
    std::atomic<uint64_t> next_id{0};

    std::mutex fetch_mutex;      // one fetch at a time on the subscription
    natsMsg* stashed = nullptr;  // a message a too-small buffer could not take (fetch_mutex)

    std::mutex held_mutex;
    std::deque<natsMsg*> held;           // got with get(), for task_done()
    std::map<uint64_t, natsMsg*> tasks;  // got with get_task(), by stream sequence

    std::mutex batch_mutex;  // one put_many at a time
    std::mutex answer_mutex;
    std::vector<errc> answers;  // put_many: each message's outcome (answer_mutex)
    uint64_t batch_first_id = 0;

    ~QueueState() {
        // Held items go back at once (as a local handle's leases on destruction).
        for (natsMsg* message : held) release(message);
        for (auto& [sequence, message] : tasks) release(message);
        if (stashed != nullptr) release(stashed);
        if (subscription != nullptr) natsSubscription_Destroy(subscription);
        if (batch_js != nullptr) jsCtx_Destroy(batch_js);
    }
    static void release(natsMsg* message) {
        (void)natsMsg_Nak(message, nullptr);
        natsMsg_Destroy(message);
    }

    jsCtx* js() const { return connection->js; }
    std::chrono::milliseconds call_timeout() const { return connection->options.call_timeout; }
    int64_t call_timeout_for(steady_clock::time_point deadline) const {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        return milliseconds_of(std::min(call_timeout(), std::max(left, 1ms)));
    }
    std::string message_id(uint64_t number) const { return id_prefix + std::to_string(number); }

    errc stream_info(StreamInfo& out) const {
        jsErrCode code = jsErrCode(0);
        return errc_of(js_GetStreamInfo(&out.info, js(), stream.c_str(), nullptr, &code), code);
    }
    errc consumer_info(ConsumerInfo& out) const {
        jsErrCode code = jsErrCode(0);
        return errc_of(
            js_GetConsumerInfo(&out.info, js(), stream.c_str(), durable.c_str(), nullptr, &code),
            code);
    }
    /// Runs `attempt` again while it times out (a reconnect, a cluster electing a leader), for
    /// at most five call timeouts: the administrative calls (shutdown, size, ...) that have no
    /// deadline of their own.
    template <class Attempt>
    errc patiently(Attempt attempt) const {
        const auto deadline = steady_clock::now() + 5 * call_timeout();
        auto backoff = 10ms;
        while (true) {
            errc rc = attempt();
            if (rc != errc::timeout || steady_clock::now() >= deadline) return rc;
            std::this_thread::sleep_for(backoff);  // a retry after a timeout: nothing to wait on
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, 200ms);
        }
    }

    bool is_closed(const StreamInfo& info) const {
        const jsStreamConfig* config = info.info->Config;
        return config->SubjectsLen == 1 && closed_subject == config->Subjects[0];
    }
    std::size_t held_here() {
        std::lock_guard lock(held_mutex);
        return held.size() + tasks.size();
    }

    /// Closed, and nothing left that a getter could still receive: nothing undelivered, and
    /// nothing delivered and unacknowledged but what this handle holds (another holder's item
    /// may come back: it dies, or its ack_wait passes).
    bool closed_and_drained() {
        StreamInfo stream_facts;
        if (stream_info(stream_facts) != errc::ok || !is_closed(stream_facts)) return false;
        if (stream_facts.info->State.Msgs == 0) return true;
        ConsumerInfo consumer_facts;
        if (consumer_info(consumer_facts) != errc::ok) return false;
        const auto unacknowledged = static_cast<std::size_t>(consumer_facts.info->NumAckPending);
        return consumer_facts.info->NumPending == 0 &&
               unacknowledged <= held_here() + (stashed != nullptr ? 1 : 0);
    }

    /// Acknowledges `message` and waits for the server's confirmation (join() counts on it);
    /// destroys it on success, keeps it (for another try) otherwise.
    errc acknowledge(natsMsg* message) const {
        jsOptions options;
        jsOptions_Init(&options);
        options.Wait = milliseconds_of(call_timeout());
        jsErrCode code = jsErrCode(0);
        const natsStatus status = natsMsg_AckSync(message, &options, &code);
        if (status == NATS_OK) natsMsg_Destroy(message);
        return errc_of(status, code);
    }

    /// Why a publish found no stream: closed, or not_found (removed), or timeout (a cluster
    /// electing a leader, a reconnect: retry).
    errc no_stream_reason() const {
        StreamInfo info;
        errc rc = stream_info(info);
        if (rc != errc::ok) return rc;
        return is_closed(info) ? errc::closed : errc::timeout;
    }

    errc classify_publish(natsStatus status, jsErrCode code) const {
        if (status == NATS_OK) return errc::ok;
        if (code == JSStreamStoreFailedErr) return errc::full;  // "maximum messages exceeded"
        if (status == NATS_NO_RESPONDERS) return no_stream_reason();
        return errc_of(status, code);
    }

    errc publish_once(std::span<const std::byte> message, const std::string& id,
                      steady_clock::time_point deadline) {
        jsPubOptions options;
        jsPubOptions_Init(&options);
        options.MsgId = id.c_str();
        options.MaxWait = call_timeout_for(deadline);
        jsErrCode code = jsErrCode(0);
        natsStatus status = js_Publish(nullptr, js(), subject.c_str(), message.data(),
                                       static_cast<int>(message.size()), &options, &code);
        return classify_publish(status, code);
    }

    static void on_batch_answer(jsCtx*, natsMsg* message, jsPubAck*, jsPubAckErr* error,
                                void* closure) {
        auto* self = static_cast<QueueState*>(closure);
        const char* id = nullptr;
        if (natsMsgHeader_Get(message, "Nats-Msg-Id", &id) != NATS_OK || id == nullptr) return;
        const std::string_view text(id);
        if (text.substr(0, self->id_prefix.size()) != self->id_prefix) return;
        const uint64_t number = std::strtoull(id + self->id_prefix.size(), nullptr, 10);
        std::lock_guard lock(self->answer_mutex);
        if (number < self->batch_first_id || number - self->batch_first_id >= self->answers.size())
            return;  // an answer to an earlier batch, come late
        errc& answer = self->answers[number - self->batch_first_id];
        if (error == nullptr) {
            answer = errc::ok;
        } else if (error->ErrCode == JSStreamStoreFailedErr) {
            answer = errc::full;
        } else if (error->Err == NATS_NO_RESPONDERS) {
            answer = errc::not_found;  // resolved after the batch: closed, removed or transient
        } else {
            answer = errc::timeout;
        }
    }
};

}  // namespace detail

// ---- Connection -------------------------------------------------------------------------------

Connection Connection::connect(const ConnectionOptions& options) {
    if (options.servers.empty()) throw Error(errc::invalid_argument, "nats: no server URL");
    natsOptions* raw = nullptr;
    if (natsOptions_Create(&raw) != NATS_OK) throw Error(errc::system, "nats: natsOptions_Create");
    std::unique_ptr<natsOptions, void (*)(natsOptions*)> nats_options(raw, natsOptions_Destroy);
    auto check = [](natsStatus status, const char* what) {
        if (status != NATS_OK)
            detail::throw_nats(errc::invalid_argument, std::string("nats: ") + what);
    };
    std::vector<const char*> urls;
    for (const std::string& url : options.servers) urls.push_back(url.c_str());
    check(natsOptions_SetServers(raw, urls.data(), static_cast<int>(urls.size())), "servers");
    if (!options.name.empty()) check(natsOptions_SetName(raw, options.name.c_str()), "name");
    if (!options.user.empty()) {
        check(natsOptions_SetUserInfo(raw, options.user.c_str(), options.password.c_str()), "user");
    }
    if (!options.token.empty()) check(natsOptions_SetToken(raw, options.token.c_str()), "token");
    if (!options.credentials_file.empty()) {
        check(
            natsOptions_SetUserCredentialsFromFiles(raw, options.credentials_file.c_str(), nullptr),
            "credentials file");
    }
    if (options.tls) check(natsOptions_SetSecure(raw, true), "tls");
    if (!options.tls_ca_file.empty()) {
        check(natsOptions_LoadCATrustedCertificates(raw, options.tls_ca_file.c_str()),
              "tls ca file");
    }
    if (!options.tls_cert_file.empty()) {
        check(natsOptions_LoadCertificatesChain(raw, options.tls_cert_file.c_str(),
                                                options.tls_key_file.c_str()),
              "tls certificate");
    }
    if (!options.tls_hostname.empty()) {
        check(natsOptions_SetExpectedHostname(raw, options.tls_hostname.c_str()), "tls hostname");
    }
    if (options.tls_skip_verify) check(natsOptions_SkipServerVerification(raw, true), "tls");
    check(natsOptions_SetTimeout(raw, detail::milliseconds_of(options.connect_timeout)), "timeout");
    check(natsOptions_SetMaxReconnect(raw, options.max_reconnects), "max reconnects");
    check(natsOptions_SetReconnectWait(raw, options.reconnect_wait.count()), "reconnect wait");
    check(
        natsOptions_SetRetryOnFailedConnect(raw, options.retry_on_failed_connect, nullptr, nullptr),
        "retry on failed connect");
    auto state = std::make_shared<detail::ConnectionState>();
    state->options = options;
    auto open = [&](natsConnection** connection) {
        natsStatus status = natsConnection_Connect(connection, raw);
        if (status != NATS_OK &&
            !(options.retry_on_failed_connect && status == NATS_NOT_YET_CONNECTED)) {
            detail::throw_nats(errc::unavailable, "nats: cannot connect");
        }
    };
    open(&state->bulk);
    // Without it every request, fetch and ack waits for the client's flush timer (~1 ms).
    check(natsOptions_SetSendAsap(raw, true), "send asap");
    open(&state->connection);
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.Wait = detail::milliseconds_of(options.call_timeout);
    if (natsConnection_JetStream(&state->js, state->connection, &js_options) != NATS_OK) {
        detail::throw_nats(errc::unavailable, "nats: no JetStream context");
    }
    return Connection(std::move(state));
}

bool Connection::connected() const noexcept {
    return natsConnection_Status(state_->connection) == NATS_CONN_STATUS_CONNECTED;
}

std::uint64_t Connection::reconnects() const noexcept {
    natsStatistics* stats = nullptr;
    if (natsStatistics_Create(&stats) != NATS_OK) return 0;
    uint64_t count = 0;
    if (natsConnection_GetStats(state_->connection, stats) == NATS_OK) {
        natsStatistics_GetCounts(stats, nullptr, nullptr, nullptr, nullptr, &count);
    }
    natsStatistics_Destroy(stats);
    return count;
}

std::string Connection::server() const {
    char url[256] = {};
    if (natsConnection_GetConnectedUrl(state_->connection, url, sizeof url) != NATS_OK) return {};
    return url;
}

// ---- QueueCore --------------------------------------------------------------------------------

namespace detail {

QueueCore::QueueCore(const std::shared_ptr<ConnectionState>& connection, std::string_view name,
                     OpenMode mode, std::size_t capacity, const QueueForm& form,
                     const QueueOptions& options)
    : state_(std::make_unique<QueueState>()) {
    if (!valid_name(name)) {
        throw Error(errc::invalid_name,
                    "nats queue name must be 1-64 of [A-Za-z0-9_-]: " + std::string(name));
    }
    if (mode != OpenMode::open && capacity == 0) {
        throw Error(errc::invalid_argument, "nats queue capacity must be at least 1");
    }
    QueueState& s = *state_;
    s.connection = connection;
    s.name = name;
    s.stream = "shuttle_" + s.name;
    s.subject = "shuttle." + s.name + ".items";
    s.closed_subject = "shuttle." + s.name + ".closed";
    s.durable = "shuttle_" + s.name + "_getters";
    char prefix[24];
    std::snprintf(prefix, sizeof prefix, "%016llx-", static_cast<unsigned long long>(s.handle_key));
    s.id_prefix = prefix;

    StreamInfo existing;
    errc found = s.stream_info(existing);
    if (found != errc::ok && found != errc::not_found) throw_nats(found, "nats: stream info");
    if (found == errc::ok) {
        if (mode == OpenMode::create) throw Error(errc::already_exists, "nats queue " + s.name);
        const jsStreamConfig* config = existing.info->Config;
        int joinable = 0;
        std::size_t max_message_size = 0;
        unsigned long long type_tag = 0;
        long long ack_wait = 0;
        if (config->Description == nullptr ||
            std::sscanf(config->Description, description_format, &joinable, &max_message_size,
                        &type_tag, &ack_wait) != 4) {
            throw Error(errc::not_shuttle, "stream " + s.stream + " is not a shuttle queue");
        }
        if ((joinable != 0) != form.joinable) {
            throw Error(errc::kind_mismatch,
                        joinable != 0 ? "the queue is joinable" : "the queue is not joinable");
        }
        if (type_tag != form.type_tag) {
            throw Error(errc::type_mismatch, "the queue holds another type");
        }
        if (mode == OpenMode::open_or_create &&
            (static_cast<std::size_t>(config->MaxMsgs) != capacity ||
             (form.type_tag == 0 && max_message_size != form.max_message_size))) {
            throw Error(errc::capacity_mismatch, "nats queue exists with another capacity");
        }
        s.capacity = static_cast<std::size_t>(config->MaxMsgs);
        s.form = {joinable != 0, max_message_size, type_tag};
        s.ack_wait = std::chrono::milliseconds(ack_wait);
    } else {
        if (mode == OpenMode::open) throw Error(errc::not_found, "nats queue " + s.name);
        if (form.max_message_size == 0) {
            throw Error(errc::invalid_argument, "nats queue max_message_size must be at least 1");
        }
        s.capacity = capacity;
        s.form = form;
        s.ack_wait = options.ack_wait;
        const std::string description = describe(form, options.ack_wait);
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        const char* subjects[] = {s.subject.c_str()};
        config.Name = s.stream.c_str();
        config.Description = description.c_str();
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Retention = js_WorkQueuePolicy;
        config.MaxMsgs = static_cast<int64_t>(capacity);
        config.Discard = js_DiscardNew;
        config.Storage = options.storage == Storage::file ? js_FileStorage : js_MemoryStorage;
        config.Replicas = options.replicas;
        config.Duplicates = nanoseconds_of(options.duplicate_window);
        jsStreamInfo* made = nullptr;
        jsErrCode code = jsErrCode(0);
        natsStatus status = js_AddStream(&made, s.js(), &config, nullptr, &code);
        jsStreamInfo_Destroy(made);
        errc rc = errc_of(status, code);
        // A concurrent open_or_create with the same configuration succeeds too (the server
        // accepts an identical stream); create() was answered above.
        if (rc != errc::ok) throw_nats(rc, "nats: cannot create stream " + s.stream);
    }

    // The one consumer every getter shares (adding it again with the same configuration is
    // accepted: every opener does, so a creator that died between stream and consumer leaves
    // a usable queue).
    jsConsumerConfig consumer;
    jsConsumerConfig_Init(&consumer);
    consumer.Durable = s.durable.c_str();
    consumer.AckPolicy = js_AckExplicit;
    consumer.AckWait = nanoseconds_of(s.ack_wait);
    consumer.DeliverPolicy = js_DeliverAll;
    consumer.MaxAckPending = -1;
    jsConsumerInfo* made = nullptr;
    jsErrCode code = jsErrCode(0);
    natsStatus status = js_AddConsumer(&made, s.js(), s.stream.c_str(), &consumer, nullptr, &code);
    jsConsumerInfo_Destroy(made);
    if (errc rc = errc_of(status, code); rc != errc::ok) {
        throw_nats(rc, "nats: cannot add consumer " + s.durable);
    }
    jsSubOptions subscribe;
    jsSubOptions_Init(&subscribe);
    subscribe.Stream = s.stream.c_str();
    subscribe.Consumer = s.durable.c_str();
    code = jsErrCode(0);
    status = js_PullSubscribe(&s.subscription, s.js(), s.subject.c_str(), s.durable.c_str(),
                              nullptr, &subscribe, &code);
    if (errc rc = errc_of(status, code); rc != errc::ok) {
        throw_nats(rc, "nats: cannot bind to consumer " + s.durable);
    }

    jsOptions batch;
    jsOptions_Init(&batch);
    batch.Wait = milliseconds_of(s.call_timeout());
    batch.PublishAsync.AckHandler = &QueueState::on_batch_answer;
    batch.PublishAsync.AckHandlerClosure = &s;
    batch.PublishAsync.MaxPending = 4096;
    batch.PublishAsync.StallWait = milliseconds_of(s.call_timeout());
    if (natsConnection_JetStream(&s.batch_js, connection->bulk, &batch) != NATS_OK) {
        throw_nats(errc::unavailable, "nats: no JetStream context");
    }
}

QueueCore::QueueCore(QueueCore&&) noexcept = default;
QueueCore& QueueCore::operator=(QueueCore&&) noexcept = default;
QueueCore::~QueueCore() = default;

void QueueCore::remove(const std::shared_ptr<ConnectionState>& connection, std::string_view name) {
    if (!valid_name(name)) throw Error(errc::invalid_name, std::string(name));
    const std::string stream = "shuttle_" + std::string(name);
    jsErrCode code = jsErrCode(0);
    errc rc = errc_of(js_DeleteStream(connection->js, stream.c_str(), nullptr, &code), code);
    if (rc != errc::ok && rc != errc::not_found) throw_nats(rc, "nats: cannot remove " + stream);
}

status QueueCore::try_put(std::span<const std::byte> message) {
    QueueState& s = *state_;
    if (message.size() > s.form.max_message_size) return errc::too_large;
    return s.publish_once(message, s.message_id(s.next_id++), deadline_after(s.call_timeout()));
}

status QueueCore::put_until(std::span<const std::byte> message, steady_clock::time_point deadline,
                            const std::stop_token& stop) {
    QueueState& s = *state_;
    if (message.size() > s.form.max_message_size) return errc::too_large;
    // Every attempt carries the same id: an attempt whose answer was lost and that is sent
    // again is stored once (within QueueOptions::duplicate_window).
    const std::string id = s.message_id(s.next_id++);
    auto backoff = 1ms;
    while (true) {
        if (stop.stop_requested()) return errc::cancelled;
        errc rc = s.publish_once(message, id, deadline);
        if (rc != errc::full && rc != errc::timeout) return rc;
        if (steady_clock::now() >= deadline) return errc::timeout;
        if (!pause_for(backoff, deadline, stop)) return errc::cancelled;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 50ms);
    }
}

status QueueCore::put_many_until(std::span<const std::span<const std::byte>> messages,
                                 steady_clock::time_point deadline, const std::stop_token& stop) {
    QueueState& s = *state_;
    for (const auto& message : messages) {
        if (message.size() > s.form.max_message_size) return errc::too_large;
    }
    if (messages.empty()) return {};
    std::lock_guard batch_lock(s.batch_mutex);
    const uint64_t first = s.next_id.fetch_add(messages.size());
    {
        std::lock_guard lock(s.answer_mutex);
        s.batch_first_id = first;
        s.answers.assign(messages.size(), errc::timeout);
    }
    std::vector<std::size_t> pending(messages.size());
    for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
    auto backoff = 1ms;
    while (true) {
        if (stop.stop_requested()) return errc::cancelled;
        for (std::size_t index : pending) {
            const std::string id = s.message_id(first + index);
            jsPubOptions options;
            jsPubOptions_Init(&options);
            options.MsgId = id.c_str();
            options.MaxWait = milliseconds_of(s.call_timeout());
            (void)js_PublishAsync(s.batch_js, s.subject.c_str(), messages[index].data(),
                                  static_cast<int>(messages[index].size()), &options);
        }
        jsPubOptions wait;
        jsPubOptions_Init(&wait);
        wait.MaxWait = s.call_timeout_for(deadline);
        if (js_PublishAsyncComplete(s.batch_js, &wait) != NATS_OK) {
            natsMsgList unanswered{};
            if (js_PublishAsyncGetPendingList(&unanswered, s.batch_js) == NATS_OK) {
                natsMsgList_Destroy(&unanswered);  // their answers stay timeout: sent again
            }
        }
        std::vector<std::size_t> refused;
        bool full = false;
        bool no_stream = false;
        {
            std::lock_guard lock(s.answer_mutex);
            for (std::size_t index : pending) {
                if (s.answers[index] == errc::ok) continue;
                full |= s.answers[index] == errc::full;
                no_stream |= s.answers[index] == errc::not_found;
                s.answers[index] = errc::timeout;
                refused.push_back(index);
            }
        }
        if (refused.empty()) return {};
        if (no_stream) {
            errc reason = s.no_stream_reason();
            if (reason != errc::timeout) return reason;
        }
        pending = std::move(refused);
        if (steady_clock::now() >= deadline) return errc::timeout;
        if (full || no_stream) {
            if (!pause_for(backoff, deadline, stop)) return errc::cancelled;
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, 50ms);
        }
    }
}

namespace {

/// Hands one fetched message to `consume` and settles it as `hold` says; takes ownership.
/// `batch_acks`: a batch's messages to acknowledge together (get_many), else this one is
/// acknowledged with a confirmation.
errc deliver(QueueState& s, natsMsg* message, Consumer consume, Hold hold, TaskId* task,
             bool stash_if_too_small, std::vector<natsMsg*>* batch_acks) {
    const auto* data = reinterpret_cast<const std::byte*>(natsMsg_GetData(message));
    const std::span<const std::byte> bytes(
        data, static_cast<std::size_t>(natsMsg_GetDataLength(message)));
    errc rc = consume(bytes);
    if (rc == errc::buffer_too_small && stash_if_too_small) {
        s.stashed = message;
        return rc;
    }
    if (rc != errc::ok) {
        // Not an item of this queue's type: never deliver it again.
        (void)natsMsg_Term(message, nullptr);
        natsMsg_Destroy(message);
        return rc;
    }
    switch (hold) {
        case Hold::none:
            // A get's ack waits for the server's confirmation: once get() returns, its room is
            // free for a put. A lost confirmation only means the item may come again
            // (at-least-once).
            if (batch_acks != nullptr) {
                batch_acks->push_back(message);
            } else if (s.acknowledge(message) != errc::ok) {
                (void)natsMsg_Ack(message, nullptr);
                natsMsg_Destroy(message);
            }
            break;
        case Hold::fifo: {
            std::lock_guard lock(s.held_mutex);
            s.held.push_back(message);
            break;
        }
        case Hold::task: {
            jsMsgMetaData* meta = nullptr;
            uint64_t sequence = 0;
            if (natsMsg_GetMetaData(&meta, message) == NATS_OK) sequence = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
            std::lock_guard lock(s.held_mutex);
            s.tasks[sequence] = message;
            if (task != nullptr) *task = {.queue = s.handle_key, .ticket = sequence};
            break;
        }
    }
    return errc::ok;
}

/// The longest one fetch waits before the getter looks whether the queue was shut down.
constexpr auto fetch_slice = 200ms;

/// Fetches up to `max` messages into `list` (the caller holds fetch_mutex): ok with at least
/// one, or empty (try_once), timeout, closed (closed and drained), cancelled, unavailable.
errc fetch(QueueState& s, natsMsgList& list, std::size_t max, steady_clock::time_point deadline,
           const std::stop_token& stop, bool try_once) {
    const int batch = static_cast<int>(std::min<std::size_t>(max, 4096));
    while (true) {
        if (stop.stop_requested()) return errc::cancelled;
        jsErrCode code = jsErrCode(0);
        natsStatus status;
        if (try_once) {
            jsFetchRequest request;
            jsFetchRequest_Init(&request);
            request.Batch = batch;
            request.NoWait = true;  // (with Expires the server would wait for it to pass)
            status = natsSubscription_FetchRequest(&list, s.subscription, &request);
        } else {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              steady_clock::now());
            const auto slice = std::clamp<std::chrono::milliseconds>(left, 1ms, fetch_slice);
            status = natsSubscription_Fetch(&list, s.subscription, batch, slice.count(), &code);
        }
        if (status == NATS_OK && list.Count > 0) return errc::ok;
        natsMsgList_Destroy(&list);
        list = {};
        if (status == NATS_CONNECTION_CLOSED) return errc::unavailable;
        const bool no_messages =
            status == NATS_OK || status == NATS_TIMEOUT || status == NATS_NOT_FOUND;
        if (no_messages && s.closed_and_drained()) return errc::closed;
        if (try_once) return no_messages ? errc::empty : errc_of(status, code);
        if (steady_clock::now() >= deadline) return errc::timeout;
        // A lost connection: the client reconnects meanwhile.
        if (!no_messages && !pause_for(10ms, deadline, stop)) return errc::cancelled;
    }
}

}  // namespace

result<std::size_t> QueueCore::get_many_until(std::size_t max, Consumer consume, Hold hold,
                                              steady_clock::time_point deadline,
                                              const std::stop_token& stop, bool try_once) {
    QueueState& s = *state_;
    if (max == 0) return std::size_t{0};
    std::lock_guard fetch_lock(s.fetch_mutex);
    std::size_t taken = 0;
    errc first_error = errc::ok;
    std::vector<natsMsg*> acks;
    auto take = [&](natsMsg* message) {
        errc rc = deliver(s, message, consume, hold, nullptr, false, &acks);
        if (rc == errc::ok) ++taken;
        if (rc != errc::ok && first_error == errc::ok) first_error = rc;
    };
    // The batch's acks leave together on the bulk connection; its flush (a round trip the
    // server answers after handling them) confirms them all.
    struct AckAtExit {
        QueueState& s;
        std::vector<natsMsg*>& acks;
        ~AckAtExit() {
            if (acks.empty()) return;
            natsConnection* bulk = s.connection->bulk;
            for (natsMsg* message : acks) {
                const char* reply = natsMsg_GetReply(message);
                if (reply != nullptr) (void)natsConnection_Publish(bulk, reply, "+ACK", 4);
                natsMsg_Destroy(message);
            }
            (void)natsConnection_FlushTimeout(bulk, milliseconds_of(s.call_timeout()));
        }
    } ack_at_exit{s, acks};
    if (s.stashed != nullptr) take(std::exchange(s.stashed, nullptr));
    while (taken < max) {
        natsMsgList list{};
        // After the first items, only what is there now.
        errc rc = fetch(s, list, max - taken, deadline, stop, try_once || taken > 0);
        if (rc != errc::ok) {
            if (taken > 0) break;
            if (first_error != errc::ok) return first_error;
            return rc;
        }
        for (int i = 0; i < list.Count; ++i) take(std::exchange(list.Msgs[i], nullptr));
        natsMsgList_Destroy(&list);
        if (taken > 0) break;
    }
    return taken;
}

errc QueueCore::get_until(Consumer consume, Hold hold, TaskId* task,
                          steady_clock::time_point deadline, const std::stop_token& stop,
                          bool try_once) {
    QueueState& s = *state_;
    std::lock_guard fetch_lock(s.fetch_mutex);
    natsMsg* message = std::exchange(s.stashed, nullptr);
    if (message == nullptr) {
        natsMsgList list{};
        if (errc rc = fetch(s, list, 1, deadline, stop, try_once); rc != errc::ok) return rc;
        message = std::exchange(list.Msgs[0], nullptr);
        natsMsgList_Destroy(&list);
    }
    return deliver(s, message, consume, hold, task, true, nullptr);
}

status QueueCore::task_done() {
    QueueState& s = *state_;
    natsMsg* message = nullptr;
    {
        std::lock_guard lock(s.held_mutex);
        if (s.held.empty()) return errc::task_done_overflow;
        message = s.held.front();
        s.held.pop_front();
    }
    errc rc = s.acknowledge(message);
    if (rc != errc::ok) {
        std::lock_guard lock(s.held_mutex);
        s.held.push_front(message);  // still held: task_done() again
    }
    return rc;
}

status QueueCore::task_done(const TaskId& task) {
    QueueState& s = *state_;
    if (task.queue != s.handle_key) return errc::invalid_argument;
    natsMsg* message = nullptr;
    {
        std::lock_guard lock(s.held_mutex);
        auto found = s.tasks.find(task.ticket);
        if (found == s.tasks.end()) return errc::not_owner;
        message = found->second;
        s.tasks.erase(found);
    }
    errc rc = s.acknowledge(message);
    if (rc != errc::ok) {
        std::lock_guard lock(s.held_mutex);
        s.tasks[task.ticket] = message;  // still held: task_done(task) again
    }
    return rc;
}

status QueueCore::join_until(steady_clock::time_point deadline, const std::stop_token& stop) {
    QueueState& s = *state_;
    auto backoff = 1ms;
    while (true) {
        StreamInfo info;
        if (s.stream_info(info) == errc::ok && info.info->State.Msgs == 0) return {};
        if (stop.stop_requested()) return errc::cancelled;
        if (steady_clock::now() >= deadline) return errc::timeout;
        if (!pause_for(backoff, deadline, stop)) return errc::cancelled;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, 50ms);
    }
}

std::size_t QueueCore::shutdown(bool immediate) {
    QueueState& s = *state_;
    std::size_t queued = 0;
    errc rc = s.patiently([&] {
        StreamInfo info;
        if (errc found = s.stream_info(info); found != errc::ok) return found;
        queued = static_cast<std::size_t>(info.info->State.Msgs);
        if (s.is_closed(info)) return errc::ok;
        jsStreamConfig* config = info.info->Config;
        const char* closed[] = {s.closed_subject.c_str()};
        const char** subjects = config->Subjects;
        const int count = config->SubjectsLen;
        config->Subjects = closed;
        config->SubjectsLen = 1;
        jsStreamInfo* updated = nullptr;
        jsErrCode code = jsErrCode(0);
        natsStatus status = js_UpdateStream(&updated, s.js(), config, nullptr, &code);
        config->Subjects = subjects;  // info owns (and frees) its own array
        config->SubjectsLen = count;
        jsStreamInfo_Destroy(updated);
        return errc_of(status, code);
    });
    if (rc != errc::ok) throw_nats(rc, "nats: shutdown");
    if (!immediate) return 0;
    rc = s.patiently([&] {
        jsErrCode code = jsErrCode(0);
        natsStatus status = js_PurgeStream(s.js(), s.stream.c_str(), nullptr, &code);
        return errc_of(status, code);
    });
    if (rc != errc::ok) throw_nats(rc, "nats: shutdown(immediate)");
    return queued;
}

bool QueueCore::closed() const {
    StreamInfo info;
    errc rc = state_->patiently([&] { return state_->stream_info(info); });
    if (rc != errc::ok) throw_nats(rc, "nats: closed()");
    return state_->is_closed(info);
}

std::size_t QueueCore::size() const {
    ConsumerInfo info;
    errc rc = state_->patiently([&] { return state_->consumer_info(info); });
    if (rc != errc::ok) throw_nats(rc, "nats: size()");
    return static_cast<std::size_t>(info.info->NumPending);
}

std::size_t QueueCore::unfinished_tasks() const {
    StreamInfo info;
    errc rc = state_->patiently([&] { return state_->stream_info(info); });
    if (rc != errc::ok) throw_nats(rc, "nats: stream info");
    return static_cast<std::size_t>(info.info->State.Msgs);
}

std::uint64_t QueueCore::redelivered_count() const {
    ConsumerInfo info;
    errc rc = state_->patiently([&] { return state_->consumer_info(info); });
    if (rc != errc::ok) throw_nats(rc, "nats: consumer");
    return static_cast<std::uint64_t>(info.info->NumRedelivered);
}

std::size_t QueueCore::capacity() const noexcept {
    return state_->capacity;
}
std::size_t QueueCore::max_message_size() const noexcept {
    return state_->form.max_message_size;
}
const std::string& QueueCore::name() const noexcept {
    return state_->name;
}

}  // namespace detail
}  // namespace shuttle::nats
