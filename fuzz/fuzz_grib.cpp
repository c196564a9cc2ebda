// libFuzzer harness: GRIB files, through the scan (cfgrib's index), the dataset cfgrib would build
// and the "grib" codec on every message found. Any input must end in a Dataset or a zp::Error:
// no crash, no read outside the input, no allocation the budget does not allow.
//
// ecCodes' own assertions (it aborts on some malformed messages) are the exception: the program
// scans in a child and decodes in worker processes, where such an abort names the file, message or
// chunk (core/crash_note.hpp, tests/e2e/test_grib_aborts.py). Here an assertion throws instead, so
// fuzzing goes on into our code; the leaks of the abandoned ecCodes call are not ours
// (-detect_leaks=0 under ctest). ZP_FUZZ_GRIB_DECODE_ASSERTS=1 traps on an assertion at decode
// time, to find messages that pass the scan and abort a worker.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "source/grib/grib_dataset.hpp"
#include "source/grib/grib_scan.hpp"

// Exported by libeccodes (not in its public header): called instead of abort() on an assertion.
extern "C" void codes_set_codes_assertion_failed_proc(void (*proc)(const char* message));

namespace {

struct EccodesAssertion {};

void throw_assertion(const char*) {
  throw EccodesAssertion{};
}

// ecCodes reads files by path: the input goes to one file of this process.
std::string input_file(const uint8_t* data, std::size_t size) {
  const std::string path = "/tmp/zp-fuzz-grib-" + std::to_string(getpid()) + ".grib";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "";
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

// The chunk reader always gives the field's size: decode with the first grid's.
void decode_all(const zp::GribScan& scan, const uint8_t* data, std::size_t size) {
  const int64_t points = scan.firsts.empty() ? 0 : scan.firsts.begin()->second.points;
  static const bool trap = std::getenv("ZP_FUZZ_GRIB_DECODE_ASSERTS") != nullptr;
  for (const zp::GribField& f : scan.fields) {
    if (f.offset > size || f.length > size - f.offset) __builtin_trap();  // a range outside
    if (points <= 0 || points > (int64_t{1} << 24)) break;
    const zp::Bytes message(data + f.offset, data + f.offset + f.length);
    try {
      zp::decode_chain({zp::CodecSpec{"grib", {{"id", "grib"}}}}, message,
                       static_cast<std::size_t>(points) * sizeof(float), "fuzz");
    } catch (const zp::Error&) {
    } catch (const EccodesAssertion&) {
      if (trap) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const bool set = [] {
    codes_set_codes_assertion_failed_proc(throw_assertion);
    return true;
  }();
  (void)set;
  const std::string path = input_file(data, size);
  if (path.empty()) return 0;
  const nlohmann::json no_filter = nlohmann::json::object();
  try {
    zp::GribScan scan;
    zp::scan_grib_file(path, 0, no_filter, scan);
    decode_all(scan, data, size);
    zp::grib_dataset(scan, no_filter, path);
  } catch (const zp::Error&) {
  } catch (const EccodesAssertion&) {
  }
  return 0;
}
