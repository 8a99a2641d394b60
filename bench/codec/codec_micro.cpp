// The codec per type: encode into a caller's buffer, decode into a reused value (the queue's
// consumer loop) and into a fresh one. Peers in the same run: a memcpy of the same number of
// bytes (the floor), and cereal's stock binary archive over string streams (what a user of
// cereal alone would write).
//
//   shuttle_codec_micro [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cereal/archives/binary.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "shuttle/codec.hpp"

namespace {

struct Point {
    double x, y, z;
};

/// A user type through cereal.
struct Order {
    std::string item;
    int32_t quantity = 0;
    std::vector<double> prices;
    bool urgent = false;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(item, quantity, prices, urgent);
    }
};

using Mixed = std::variant<int, std::string, std::vector<int>>;
using Dictionary = std::map<std::string, int>;

template <class T>
T sample();
template <>
int64_t sample() {
    return 123456789;
}
template <>
Point sample() {
    return {1.0, 2.0, 3.0};
}
template <>
std::string sample() {
    return std::string(64, 's');
}
template <>
std::vector<int> sample() {
    return std::vector<int>(16, 7);
}
template <>
Mixed sample() {
    return std::string(64, 'm');
}
template <>
Dictionary sample() {
    Dictionary map;
    for (int key = 0; key < 8; ++key) map["key" + std::to_string(key)] = key;
    return map;
}
template <>
Order sample() {
    return {"widget", 3, {1.5, 2.5, 3.5}, true};
}

template <class T>
void Encode(benchmark::State& state) {
    const T value = sample<T>();
    std::byte buffer[1024];
    for (auto _ : state) {
        benchmark::DoNotOptimize(value);
        auto written = shuttle::encode(value, buffer);
        benchmark::DoNotOptimize(written);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(
        static_cast<int64_t>(state.iterations() * shuttle::encoded_size(value)));
}

template <class T>
void DecodeReused(benchmark::State& state) {
    const std::vector<std::byte> bytes = shuttle::encode(sample<T>());
    T value{};
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        auto decoded = shuttle::decode(bytes, value);
        benchmark::DoNotOptimize(decoded);
        benchmark::DoNotOptimize(value);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}

template <class T>
void DecodeFresh(benchmark::State& state) {
    const std::vector<std::byte> bytes = shuttle::encode(sample<T>());
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        auto decoded = shuttle::decode<T>(bytes);
        benchmark::DoNotOptimize(decoded);
    }
}

/// The floor: copying the encoding's bytes, both ways.
template <class T>
void Memcpy(benchmark::State& state) {
    const std::vector<std::byte> bytes = shuttle::encode(sample<T>());
    std::byte buffer[1024];
    for (auto _ : state) {
        benchmark::DoNotOptimize(bytes.data());
        std::memcpy(buffer, bytes.data(), bytes.size());
        benchmark::ClobberMemory();
    }
}

/// cereal's stock binary archive: save into, and load from, a std::stringstream.
template <class T>
void CerealStreamRoundTrip(benchmark::State& state) {
    const T value = sample<T>();
    T decoded{};
    std::stringstream stream;
    for (auto _ : state) {
        stream.str({});
        stream.clear();
        {
            cereal::BinaryOutputArchive out(stream);
            out(value);
        }
        cereal::BinaryInputArchive in(stream);
        in(decoded);
        benchmark::DoNotOptimize(decoded);
    }
}

template <class T>
void ShuttleRoundTrip(benchmark::State& state) {
    const T value = sample<T>();
    T decoded{};
    std::byte buffer[1024];
    for (auto _ : state) {
        auto written = shuttle::encode(value, buffer);
        auto status = shuttle::decode({buffer, *written}, decoded);
        benchmark::DoNotOptimize(status);
        benchmark::DoNotOptimize(decoded);
    }
}

#define SHUTTLE_CODEC_BENCHMARKS(T)      \
    BENCHMARK_TEMPLATE(Encode, T);       \
    BENCHMARK_TEMPLATE(DecodeReused, T); \
    BENCHMARK_TEMPLATE(DecodeFresh, T);  \
    BENCHMARK_TEMPLATE(Memcpy, T)

SHUTTLE_CODEC_BENCHMARKS(int64_t);
SHUTTLE_CODEC_BENCHMARKS(Point);
SHUTTLE_CODEC_BENCHMARKS(std::string);
SHUTTLE_CODEC_BENCHMARKS(std::vector<int>);
SHUTTLE_CODEC_BENCHMARKS(Mixed);
SHUTTLE_CODEC_BENCHMARKS(Dictionary);
SHUTTLE_CODEC_BENCHMARKS(Order);
BENCHMARK_TEMPLATE(ShuttleRoundTrip, std::string);
BENCHMARK_TEMPLATE(CerealStreamRoundTrip, std::string);
BENCHMARK_TEMPLATE(ShuttleRoundTrip, Order);
BENCHMARK_TEMPLATE(CerealStreamRoundTrip, Order);

}  // namespace

BENCHMARK_MAIN();
