// A queue's segment: the header values every queue form writes on create and checks on open,
// and the body's first layout (the cold paths of queue.hpp and queue_core.hpp).
#include <new>
#include <random>
#include <string>
#include <string_view>

#include "shuttle/detail/queue_core.hpp"
#include "shuttle/queue.hpp"

namespace shuttle::detail {

void QueueCore::initialise(Segment& segment) {
    new (segment.body()) QueueControl();
    const Ring ring = ring_of(segment);
    for (uint64_t i = 0; i < journal_capacity; ++i) {
        new (ring.journal + i) LostRecord{};
    }
    // Every slot starts at turn 0 (free for lap 0), length 0: the zeros a fresh segment holds
    // (Segment::create / create_anonymous). Not writing them spares touching every page of the
    // ring once more at creation: an unbounded queue creates a chunk at every chunk change.
    static_assert(sizeof(SlotHeader) == sizeof(uint64_t) * 2,
                  "a slot header is its turn and length only: both start as zero bytes");
    for (uint32_t i = 0; i < ring.lease_count; ++i) new (&ring.lease_at(i)) LeaseHeader{};
    if (ring.redelivery) {
        std::random_device random;
        const uint64_t key = (uint64_t{random()} << 32) ^ random() ^ current_process_identity() ^
                             steady_clock::now().time_since_epoch().count();
        ring.control->recovery.lease_key.store(key | 1, std::memory_order_relaxed);
    }
    RegistryEntry* entries = segment.registry();
    for (uint32_t i = 0; i < segment.info().registry_capacity; ++i) {
        entries[i].announced.store(announce_none, std::memory_order_relaxed);
    }
}

namespace {

/// The segment flags of a queue form with these options.
uint64_t flags_of(const QueueForm& form, const QueueOptions& options) {
    if (options.redelivery && !form.joinable) {
        throw Error(errc::invalid_argument, "redelivery needs a JoinableQueue (task accounting)");
    }
    return (form.joinable ? queue_flag_joinable : 0) |
           (form.variable_length ? queue_flag_variable_length : 0) |
           (options.redelivery ? queue_flag_redelivery : 0);
}

/// The header values of a new queue of this form.
SegmentInfo info_of(const QueueForm& form, uint64_t capacity, uint64_t max_message_size,
                    const QueueOptions& options) {
    if (form.variable_length && (max_message_size == 0 || max_message_size > max_queue_bytes)) {
        throw Error(errc::invalid_argument, "max_message_size must be 1 .. 2^40");
    }
    const uint64_t flags = flags_of(form, options);
    if (capacity == 0 || capacity > max_queue_capacity) {
        throw Error(errc::invalid_argument, "queue capacity must be 1 .. 2^32");
    }
    if (options.max_participants == 0 || options.max_participants > max_queue_participants) {
        throw Error(errc::invalid_argument, "max_participants must be 1 .. 32");
    }
    SegmentInfo info;
    ElementType{form.kind, form.element_size, form.element_align, options.type_tag}.describe(info);
    info.capacity = capacity;
    info.max_message_size = max_message_size;
    info.flags = flags;
    info.registry_capacity = options.max_participants;
    return info;
}

}  // namespace

SegmentExpectation queue_expectation(ObjectKind kind, uint64_t element_size, uint64_t element_align,
                                     uint64_t type_tag) {
    SegmentExpectation expected;
    ElementType{kind, element_size, element_align, type_tag}.describe(expected);
    expected.body_size = queue_body_size;
    return expected;
}

Segment make_queue_segment(std::string_view name, const QueueForm& form, uint64_t capacity,
                           uint64_t max_message_size, const QueueOptions& options) {
    const SegmentInfo info = info_of(form, capacity, max_message_size, options);
    if (name.empty())
        return Segment::create_anonymous(info, queue_body_size, QueueCore::initialise);
    return Segment::create(name, info, queue_body_size, QueueCore::initialise,
                           {options.mode, options.remove_on_destroy});
}

SegmentExpectation queue_expectation(const QueueForm& form, const QueueOptions& options) {
    (void)flags_of(form, options);  // redelivery on a plain queue: invalid_argument, before open
    return queue_expectation(form.kind, form.element_size, form.element_align, options.type_tag);
}

void check_queue_form(const Segment& segment, const QueueForm& form, const QueueOptions& options) {
    const uint64_t found = segment.info().flags;
    if (found == flags_of(form, options)) return;
    const bool joinable = found & queue_flag_joinable;
    const std::string what = std::string("segment '") + segment.name() + "' holds a ";
    if (joinable != form.joinable) {
        throw Error(errc::kind_mismatch,
                    what +
                        (joinable ? "JoinableQueue: open it as a JoinableQueue"
                                  : "plain Queue (not joinable): open it as a Queue") +
                        (form.variable_length ? " (JoinableByteQueue / ByteQueue)" : ""));
    }
    const bool redelivery = found & queue_flag_redelivery;
    throw Error(errc::kind_mismatch, what + "JoinableQueue " + (redelivery ? "with" : "without") +
                                         " redelivery: open it with QueueOptions::redelivery = " +
                                         (redelivery ? "true" : "false"));
}

}  // namespace shuttle::detail
