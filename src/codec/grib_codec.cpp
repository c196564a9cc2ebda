// The "grib" codec: one GRIB message (GRIB1 or GRIB2, any packing Debian's ecCodes decodes: simple,
// CCSDS, JPEG2000...) to the float32 values of its field, as cfgrib reads them: missingValue set to
// float32's largest value, values cast to float32, that value (bitmap points) read as NaN. Decode
// only. Debian's ecCodes is built without thread support (GRIB_PTHREADS 0): creating a handle
// (which parses and caches the definition files in the shared context) and releasing it are
// serialised; unpacking the values touches the handle alone and runs in parallel.
#include <eccodes.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "codec/codec.hpp"
#include "codec/grib_grid_budget.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

// ecCodes' own messages to stderr are silenced: the Error says what failed and where.
void silent(const codes_context*, int, const char*) {}

std::mutex& eccodes_lock() {
  static std::mutex m;
  static const bool quiet = [] {
    codes_context_set_logging_proc(codes_context_get_default(), silent);
    return true;
  }();
  (void)quiet;
  return m;
}

Error grib_error(const std::string& what, int err) {
  return Error(ErrorKind::Source,
               "grib: " + what + " (ecCodes: " + codes_get_error_message(err) + ")");
}

struct HandleCloser {
  void operator()(codes_handle* h) const {
    std::lock_guard<std::mutex> lock(eccodes_lock());
    codes_handle_delete(h);
  }
};
using Handle = std::unique_ptr<codes_handle, HandleCloser>;

// A handle on `in` (not copied: `in` outlives it), missingValue set as cfgrib sets it. The lock
// is released before a failed handle is (HandleCloser takes it again).
Handle open_message(const Bytes& in) {
  if (in.size() < 16 || std::memcmp(in.data(), "GRIB", 4) != 0)
    throw Error(ErrorKind::Source, "grib: the chunk is not a GRIB message (no 'GRIB' signature)");
  Handle h;
  int err = 0;
  {
    std::lock_guard<std::mutex> lock(eccodes_lock());
    h.reset(codes_handle_new_from_message(nullptr, in.data(), in.size()));
    if (h) err = codes_set_double(h.get(), "missingValue", static_cast<double>(FLT_MAX));
  }
  if (!h) throw Error(ErrorKind::Source, "grib: ecCodes cannot read the message");
  if (err) throw grib_error("cannot set missingValue", err);
  return h;
}

// Fields up to this many values keep their decoding buffer for the thread's next message (no
// allocation and page faults per message); larger ones free it.
constexpr std::size_t kKeptValues = std::size_t{1} << 22;

// Decodes the message's values as float32 into `out` (`expected` values; 0: any), NaN where
// missing. Returns the message's count of values (nothing written when it is not `expected`).
std::size_t decode_values(const Bytes& in, std::size_t expected, float* out, Bytes* grown) {
  Handle h = open_message(in);
  check_grib_grid_size(h.get(), "grib: the message");  // ecCodes aborts when "values" cannot fit
  size_t n = 0;
  int err = codes_get_size(h.get(), "values", &n);
  if (err) throw grib_error("the message has no values", err);
  if (expected && n != expected) return n;
  thread_local std::vector<double> values;
  values.resize(n);
  err = codes_get_double_array(h.get(), "values", values.data(), &n);
  if (err) throw grib_error("cannot decode the values", err);
  if (grown) {
    grown->resize(n * sizeof(float));
    out = reinterpret_cast<float*>(grown->data());
  }
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(values[i]);
    if (out[i] == FLT_MAX) out[i] = std::numeric_limits<float>::quiet_NaN();
  }
  if (values.size() > kKeptValues) std::vector<double>().swap(values);
  return n;
}

}  // namespace

Bytes grib_decode(const Bytes& in, const nlohmann::json&, std::size_t size_hint) {
  Bytes out;
  const std::size_t expected = size_hint / sizeof(float);
  const std::size_t n = decode_values(in, expected, nullptr, &out);
  if (size_hint && n * sizeof(float) != size_hint)
    throw Error(ErrorKind::Source, "grib: the message holds " + std::to_string(n) +
                                       " values, not the field's " + std::to_string(expected));
  return out;
}

// Straight into the chunk's place in the output buffer: no buffer or copy of its own.
bool grib_decode_into(const Bytes& in, const nlohmann::json&, unsigned char* out,
                      std::size_t size) {
  if (size % sizeof(float)) return false;
  const std::size_t expected = size / sizeof(float);
  return decode_values(in, expected, reinterpret_cast<float*>(out), nullptr) == expected;
}

}  // namespace zp
