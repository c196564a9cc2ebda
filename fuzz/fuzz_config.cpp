// libFuzzer harness: the YAML config parser. Any input must end in a Config or a zp::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    zp::parse_config(text, "/nonexistent", {});
  } catch (const zp::Error&) {
  }
  return 0;
}
