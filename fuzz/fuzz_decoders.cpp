// libFuzzer harness: every decoder of the codec table on arbitrary bytes. The first byte picks the
// codec, the next two the expected decoded size; corrupt input must end in a zp::Error.
#include <cstddef>
#include <cstdint>

#include "codec/codec.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const auto names = zp::codec_names();
  const std::string id = names[data[0] % names.size()];
  const std::size_t expected = (static_cast<std::size_t>(data[1]) << 8 | data[2]) + 1;
  try {
    zp::CodecSpec spec{id, {{"id", id}, {"elementsize", 1 + data[1] % 8}}};
    zp::decode_chain({spec}, zp::Bytes(data + 3, data + size), expected, "fuzz");
  } catch (const zp::Error&) {
  }
  return 0;
}
