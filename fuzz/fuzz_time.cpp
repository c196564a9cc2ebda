// libFuzzer harness: the selection's date labels and CF time units. Input: "units|calendar|label".
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/cf_time.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto a = text.find('|'), b = a == std::string::npos ? a : text.find('|', a + 1);
  const std::string units = text.substr(0, a);
  const std::string calendar = a == std::string::npos ? "" : text.substr(a + 1, b - a - 1);
  const std::string label = b == std::string::npos ? text : text.substr(b + 1);
  try {
    const zp::CfTimeUnits u = zp::parse_time_units(units, calendar, "fuzz");
    int64_t first = 0, last = 0;
    zp::label_bounds(label, u.calendar, &first, &last, "fuzz");
    zp::format_datetime(zp::from_us(first, u.calendar));
  } catch (const zp::Error&) {
  }
  return 0;
}
