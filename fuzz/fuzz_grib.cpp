// libFuzzer harness: GRIB files, through the scan (cfgrib's index), the dataset cfgrib would build
// and the "grib" codec on every message found. Any input must end in a Dataset or a zp::Error:
// no crash, no read outside the input, no allocation the budget does not allow.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "source/grib/grib_dataset.hpp"
#include "source/grib/grib_scan.hpp"

namespace {

// ecCodes reads files by path: the input goes to one file of this process.
std::string input_file(const uint8_t* data, std::size_t size) {
  const std::string path = "/tmp/zp-fuzz-grib-" + std::to_string(getpid()) + ".grib";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = input_file(data, size);
  if (path.empty()) return 0;
  const nlohmann::json no_filter = nlohmann::json::object();
  try {
    zp::GribScan scan;
    zp::scan_grib_file(path, 0, no_filter, scan);
    // The chunk reader always gives the field's size: decode with the first grid's.
    const int64_t points = scan.firsts.empty() ? 0 : scan.firsts.begin()->second.points;
    for (const zp::GribField& f : scan.fields) {
      if (f.offset > size || f.length > size - f.offset) __builtin_trap();  // a range outside
      if (points <= 0 || points > (int64_t{1} << 24)) break;
      const zp::Bytes message(data + f.offset, data + f.offset + f.length);
      try {
        zp::decode_chain({zp::CodecSpec{"grib", {{"id", "grib"}}}}, message,
                         static_cast<std::size_t>(points) * sizeof(float), "fuzz");
      } catch (const zp::Error&) {
      }
    }
    zp::grib_dataset(scan, no_filter, path);
  } catch (const zp::Error&) {
  }
  return 0;
}
