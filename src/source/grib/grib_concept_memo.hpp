// A memo of one ecCodes concept key (paramId) over the messages of a scan. ecCodes finds a
// concept's value by walking every entry of its definition files and testing each entry's
// conditions (paramId: ~8,000 entries in three chained concepts), more than half of a message's
// scan time. The conditions test keys of the message's header (GRIB2 sections 0-4, GRIB1's
// product and grid sections), never the reference date or the data, so messages whose headers
// are equal but for the date share the value: it is kept per header with the date zeroed.
// Not thread-safe (nor is ecCodes here).
#pragma once

#include <eccodes.h>

#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace zp {

// GRIB2: section 0's discipline and edition, then sections 1-4 of the first field, section 1's
// reference time (octets 13-19) zeroed. GRIB1: section 1 (its date octets 13-17 and century octet
// 25 zeroed) and section 2. Empty when the bytes do not parse as such (then nothing is memoised).
std::string grib_header_signature(const unsigned char* message, std::size_t size);

class GribConceptMemo {
 public:
  // The value for the message of `h`: from the memo, else `compute()` (kept).
  nlohmann::json get(codes_handle* h, const std::function<nlohmann::json()>& compute);

 private:
  std::map<std::string, nlohmann::json> memo_;
};

}  // namespace zp
