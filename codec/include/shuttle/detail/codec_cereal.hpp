// cereal archives over shuttle's Writer and Reader: user types with a cereal serialize() (or
// save()/load()) go through these. The format is cereal's binary archive with two changes:
// sizes are varints, and every size is checked against the bytes left before cereal resizes a
// container with it (cereal's own binary archive would allocate whatever a corrupt size says).
// A bool must be 0 or 1. Every failure throws cereal::Exception, which the codec turns into
// errc::bad_message.
#pragma once

#include <cereal/cereal.hpp>
#include <cstdint>
#include <string>
#include <type_traits>

#include "shuttle/codec_io.hpp"

namespace shuttle::detail {

class CerealOutput : public cereal::OutputArchive<CerealOutput, cereal::AllowEmptyClassElision> {
  public:
    explicit CerealOutput(Writer& writer)
        : cereal::OutputArchive<CerealOutput, cereal::AllowEmptyClassElision>(this),
          writer_(writer) {}

    void saveBinary(const void* data, std::size_t size) { writer_.write_bytes(data, size); }
    void save_size(uint64_t size) { writer_.write_varint(size); }

  private:
    Writer& writer_;
};

class CerealInput : public cereal::InputArchive<CerealInput, cereal::AllowEmptyClassElision> {
  public:
    explicit CerealInput(Reader& reader)
        : cereal::InputArchive<CerealInput, cereal::AllowEmptyClassElision>(this),
          reader_(reader) {}

    void loadBinary(void* data, std::size_t size) {
        if (!reader_.read_bytes(data, size)) {
            throw cereal::Exception("shuttle codec: the message ends inside a value");
        }
    }
    /// A container size: refused if more elements than bytes are left (every element of a
    /// cereal container takes at least one byte, except classes that write nothing).
    uint64_t load_size() {
        std::size_t size;
        if (!reader_.read_count(size, 1)) {
            throw cereal::Exception("shuttle codec: a size larger than the message");
        }
        return size;
    }

  private:
    Reader& reader_;
};

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(CerealOutput& archive,
                                                                    const T& value) {
    archive.saveBinary(&value, sizeof(T));
}

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(CerealInput& archive,
                                                                    T& value) {
    if constexpr (std::is_same_v<T, bool>) {
        uint8_t byte;
        archive.loadBinary(&byte, 1);
        if (byte > 1) throw cereal::Exception("shuttle codec: a bool that is neither 0 nor 1");
        value = byte != 0;
    } else {
        archive.loadBinary(&value, sizeof(T));
    }
}

template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(CerealInput, CerealOutput)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& archive, cereal::NameValuePair<T>& pair) {
    archive(pair.value);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(CerealOutput& archive, const cereal::SizeTag<T>& tag) {
    archive.save_size(static_cast<uint64_t>(tag.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CerealInput& archive, cereal::SizeTag<T>& tag) {
    tag.size = static_cast<std::remove_reference_t<T>>(archive.load_size());
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(CerealOutput& archive, const cereal::BinaryData<T>& data) {
    archive.saveBinary(data.data, static_cast<std::size_t>(data.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CerealInput& archive, cereal::BinaryData<T>& data) {
    archive.loadBinary(data.data, static_cast<std::size_t>(data.size));
}

/// Whether cereal can save T to and load T from these archives.
template <class T>
inline constexpr bool cereal_serializable =
    cereal::traits::is_output_serializable<T, CerealOutput>::value&&
        cereal::traits::is_input_serializable<T, CerealInput>::value;

}  // namespace shuttle::detail

CEREAL_REGISTER_ARCHIVE(shuttle::detail::CerealOutput)
CEREAL_REGISTER_ARCHIVE(shuttle::detail::CerealInput)
CEREAL_SETUP_ARCHIVE_TRAITS(shuttle::detail::CerealInput, shuttle::detail::CerealOutput)
