// libFuzzer harness: kerchunk's template expressions ("{{ (i + 1) * 24 // 3 }}"). Any input must
// render or end in a zp::Error: no trap on INT64_MIN / -1, no stack overflow on deep nesting.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "core/error.hpp"
#include "source/kerchunk/kerchunk_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::map<std::string, std::string> strings{{"u", "https://host/a.nc"}};
  const std::map<std::string, int64_t> numbers{
      {"i", 7}, {"j", -3}, {"big", INT64_MAX}, {"small", INT64_MIN}};
  try {
    zp::render_template(text, strings, numbers, "fuzz");
  } catch (const zp::Error&) {
  }
  return 0;
}
