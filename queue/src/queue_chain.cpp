// An unbounded queue's head segment: creation, validation on open, chunk names and the two
// monotonic chunk counters (detail/queue_chain.hpp).
#include "shuttle/detail/queue_chain.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <random>

#include "shuttle/detail/os.hpp"
#include "shuttle/detail/queue_layout.hpp"
#include "shuttle/queue.hpp"

namespace shuttle::detail {
namespace {

/// Chunks retired beyond which remove_all_chunks() does not look back (a retirer that died
/// before unlinking leaves at most one behind it).
constexpr uint64_t chunks_behind = 1;

std::optional<uint64_t> head_body_size(const SegmentInfo& info) {
    if (info.capacity == 0 || info.capacity > max_queue_capacity) return std::nullopt;
    if ((info.flags & chain_flag_variable_length) &&
        (info.max_message_size == 0 || info.max_message_size > max_queue_bytes)) {
        return std::nullopt;
    }
    return sizeof(ChainControl);
}

/// A head records the element type of its chunks, under its own kind.
ElementType head_type(const QueueForm& form, const QueueOptions& options) {
    return {ObjectKind::unbounded_queue, form.element_size, form.element_align, options.type_tag};
}

std::string anonymous_prefix() {
    static std::atomic<uint64_t> counter{0};
    std::random_device random;
    return fmt::format("shuttle-anon-{}-{}-{:08x}", current_pid(), counter.fetch_add(1),
                       static_cast<uint32_t>(random()));
}

}  // namespace

QueueChain::QueueChain(Segment head)
    : head_(std::move(head)), control_(reinterpret_cast<ChainControl*>(head_.body())) {
    if (control_->layout_version != chain_layout_version) {
        throw Error(errc::version_mismatch,
                    fmt::format("unbounded queue head: layout version {} (this build reads {})",
                                control_->layout_version, chain_layout_version));
    }
    // The head is untrusted input: bound what it says before building names from it.
    const uint32_t length = control_->prefix_length;
    if (length == 0 || length > chain_prefix_capacity || control_->chunk_participants == 0 ||
        control_->chunk_participants > max_queue_participants) {
        throw Error(errc::corrupt,
                    "unbounded queue head: chunk prefix or participants out of range");
    }
    prefix_.assign(control_->prefix, length);
    Segment::validate_name(chunk_name(0));  // Error(invalid_name) for a corrupt prefix
}

Segment QueueChain::make_head(std::string_view name, const QueueForm& form,
                              uint64_t max_message_size, const QueueOptions& options,
                              const FirstChunk& create_first_chunk) {
    if (options.redelivery) {
        throw Error(errc::invalid_argument, "unbounded queues have no redelivery (yet)");
    }
    if (options.chunk_capacity == 0 || options.chunk_capacity > max_queue_capacity) {
        throw Error(errc::invalid_argument, "chunk_capacity must be 1 .. 2^32");
    }
    if (form.variable_length && (max_message_size == 0 || max_message_size > max_queue_bytes)) {
        throw Error(errc::invalid_argument, "max_message_size must be 1 .. 2^40");
    }
    if (options.max_participants == 0 || options.max_participants > max_queue_participants) {
        throw Error(errc::invalid_argument, "max_participants must be 1 .. 32");
    }
    const std::string prefix = name.empty() ? anonymous_prefix() : Segment::validate_name(name);
    if (prefix.size() > chain_prefix_capacity) {
        throw Error(errc::invalid_name,
                    fmt::format("an unbounded queue's name is at most {} characters (its chunks "
                                "are named <name>.<n>)",
                                chain_prefix_capacity));
    }
    SegmentInfo info;
    head_type(form, options).describe(info);
    info.capacity = options.chunk_capacity;
    info.max_message_size = max_message_size;
    info.flags = (form.variable_length ? chain_flag_variable_length : 0) |
                 (form.joinable ? chain_flag_joinable : 0);
    info.registry_capacity = 0;  // participants register in the chunks
    auto initialise = [&](Segment& segment) {
        auto* control = new (segment.body()) ChainControl();
        if (name.empty() || options.remove_on_destroy) {
            control->remover = current_process_identity();
        }
        control->chunk_participants = options.max_participants;
        control->chunk_mode = options.mode;
        control->prefix_length = static_cast<uint32_t>(prefix.size());
        std::memcpy(control->prefix, prefix.data(), prefix.size());
    };
    QueueOptions chunk_options;
    chunk_options.max_participants = options.max_participants;
    chunk_options.mode = options.mode;
    chunk_options.type_tag = options.type_tag;
    const std::string first_chunk = prefix + ".0";
    create_first_chunk(first_chunk, chunk_options);
    try {
        if (name.empty()) return Segment::create_anonymous(info, head_body_size, initialise);
        return Segment::create(name, info, head_body_size, initialise,
                               {options.mode, options.remove_on_destroy});
    } catch (...) {
        Segment::remove(first_chunk);
        throw;
    }
}

bool QueueChain::remove(std::string_view name, const SegmentExpectation& expected) {
    try {
        const QueueChain chain(Segment::open(name, expected));
        chain.remove_all_chunks();
    } catch (const Error& error) {
        if (error.condition() == errc::not_found) return false;
        // Not an unbounded queue of this form (or corrupt): remove only the name asked for.
    }
    return Segment::remove(name);
}

bool QueueChain::removes_chunks_here() const noexcept {
    return control_->remover != 0 && control_->remover == current_process_identity();
}

SegmentExpectation QueueChain::head_expectation(const QueueForm& form,
                                                const QueueOptions& options) {
    if (options.redelivery) {
        throw Error(errc::invalid_argument, "unbounded queues have no redelivery");
    }
    SegmentExpectation expected;
    head_type(form, options).describe(expected);
    // The joinable bit is known to both forms: check_head_form names that mismatch.
    expected.known_flags =
        (form.variable_length ? chain_flag_variable_length : 0) | chain_flag_joinable;
    expected.body_size = head_body_size;
    return expected;
}

void QueueChain::check_head_form(const Segment& head, const QueueForm& form) {
    const bool joinable = (head.info().flags & chain_flag_joinable) != 0;
    if (joinable == form.joinable) return;
    throw Error(errc::kind_mismatch,
                std::string("segment '") + head.name() + "' holds an unbounded " +
                    (joinable ? "JoinableQueue: open it as an UnboundedJoinableQueue"
                              : "plain queue (not joinable): open it as an UnboundedQueue") +
                    (form.variable_length ? " (byte queue)" : ""));
}

QueueOptions QueueChain::chunk_options() const noexcept {
    QueueOptions options;
    options.max_participants = control_->chunk_participants;
    options.mode = control_->chunk_mode & 0777;
    options.type_tag = head_.info().type_tag;
    return options;
}

std::string QueueChain::chunk_name(uint64_t index) const {
    return fmt::format("{}.{}", prefix_, index);
}

void QueueChain::advance_put(uint64_t from) noexcept {
    uint64_t expected = from;
    control_->put_chunk.compare_exchange_strong(expected, from + 1, std::memory_order_seq_cst);
}

bool QueueChain::finish(uint64_t index) noexcept {
    uint64_t expected = index;
    return control_->finished_chunk.compare_exchange_strong(expected, index + 1,
                                                            std::memory_order_seq_cst);
}

std::pair<uint64_t, uint64_t> QueueChain::retire_through(uint64_t drained) noexcept {
    uint64_t current = control_->get_chunk.load(std::memory_order_seq_cst);
    // Bounded: each failed CAS saw get_chunk move, and it only moves up to drained + 1 here.
    while (current <= drained) {
        if (control_->get_chunk.compare_exchange_weak(current, drained + 1,
                                                      std::memory_order_seq_cst)) {
            return {current, drained + 1};
        }
    }
    return {drained + 1, drained + 1};
}

void QueueChain::remove_chunks(uint64_t first, uint64_t last) const noexcept {
    for (uint64_t index = first; index < last; ++index) {
        try {
            Segment::remove(chunk_name(index));
        } catch (const Error&) {
            // Absent or not ours to remove: nothing more to do for it.
        }
    }
}

void QueueChain::remove_all_chunks() const noexcept {
    const uint64_t get = get_index();
    const uint64_t put = std::max(put_index(), get);
    uint64_t first = get >= chunks_behind ? get - chunks_behind : 0;
    if (joinable()) first = std::min(first, finished_index());
    remove_chunks(first, put + 2);
}

}  // namespace shuttle::detail
