// Fixed-size message types for the transports that carry a C++ type (shuttle Queue<T>, the
// in-process ceilings): one instantiation per payload size the scenarios use.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "transport.hpp"

namespace shuttle::bench {

template <std::size_t N>
struct Message {
    std::byte bytes[N];
};

inline bool payload_is_compiled_in(std::size_t payload) {
    return payload == 8 || payload == 64 || payload == 1024 || payload == 65536;
}

/// make_sized<ChannelOf>(spec) builds ChannelOf<Message<payload>> for the run's payload size.
template <template <class> class ChannelOf, class... Args>
std::unique_ptr<Channel> make_sized(const RunSpec& spec, Args&&... args) {
    switch (spec.payload) {
        case 8:
            return std::make_unique<ChannelOf<Message<8>>>(spec, args...);
        case 64:
            return std::make_unique<ChannelOf<Message<64>>>(spec, args...);
        case 1024:
            return std::make_unique<ChannelOf<Message<1024>>>(spec, args...);
        case 65536:
            return std::make_unique<ChannelOf<Message<65536>>>(spec, args...);
    }
    throw std::invalid_argument("payload size not compiled in (8, 64, 1024, 65536)");
}

template <class M>
void copy_in(M& item, const std::byte* message, std::size_t size) {
    if (size != sizeof(M)) throw std::invalid_argument("message of the wrong size");
    std::memcpy(item.bytes, message, size);
}
template <class M>
std::size_t copy_out(const M& item, std::byte* buffer, std::size_t size) {
    if (size < sizeof(M)) throw std::invalid_argument("buffer too small");
    std::memcpy(buffer, item.bytes, sizeof(M));
    return sizeof(M);
}

}  // namespace shuttle::bench
