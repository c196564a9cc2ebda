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
    // dtype filters (delta, fixedscaleoffset, quantize, astype) get dtypes from the same bytes.
    static const char* kTypes[] = {"<i1", "<u2", ">i2", "<i4", "<u8", "<f4", ">f8", "<f8"};
    const std::string a = kTypes[data[1] % 8], b = kTypes[data[2] % 8];
    zp::CodecSpec spec{id,
                       {{"id", id},
                        {"elementsize", 1 + data[1] % 8},
                        {"dtype", a},
                        {"astype", b},
                        {"encode_dtype", b},
                        {"decode_dtype", a},
                        {"scale", 1 + data[2]},
                        {"offset", data[1]},
                        {"shape", {1 + data[1] % 5, 1 + data[2] % 7}},
                        {"itemsize", 1 + data[1] % 8},
                        {"labels", {"a", "b"}}}};
    zp::decode_chain({spec}, zp::Bytes(data + 3, data + size), expected, "fuzz");
  } catch (const zp::Error&) {
  }
  return 0;
}
