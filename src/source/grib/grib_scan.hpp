// GRIB files scanned into the index cfgrib builds: every message (a field) with its byte range and
// the values of cfgrib's index keys, and, for each parameter, what cfgrib reads from its first
// message (attributes and grid). All input is untrusted: message counts, sizes and grids are
// bounded by core/budget.hpp, and each error names the file, the message and the key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/readable.hpp"

namespace zp {

// One message as cfgrib indexes it: `keys` in GribScan::index_keys order, null where cfgrib says
// "undef" (a key the message does not define or cannot give).
struct GribField {
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<nlohmann::json> keys;
};

// What cfgrib reads from the first message of a parameter (index.first()).
struct GribFirst {
  nlohmann::ordered_json attrs;  // "GRIB_<key>" of its extra keys and grid keys, sorted by key
  std::string grid_type;
  std::string where;                          // file and message, for errors
  int64_t ny = 0, nx = 0, points = 0;         // Ny, Nx, numberOfPoints (null keys read as 0)
  std::vector<double> latitudes, longitudes;  // distinct (regular grids) or per point; may be empty
};

struct GribScan {
  std::vector<std::string> index_keys;      // sorted, as cfgrib's compute_index_keys
  std::vector<GribField> fields;            // matching filter_by_keys, in file order
  std::map<std::string, GribFirst> firsts;  // by paramId (its JSON text)
};

// cfgrib's index keys for `filter_by_keys` (a JSON object of key: value).
std::vector<std::string> grib_index_keys(const nlohmann::json& filter_by_keys);

// Appends the messages of `path` (numbered `file` in the dataset) that match `filter_by_keys`
// (cfgrib's subindex: every key equal) to `scan`. Error(Source) naming the file (and message) when
// ecCodes cannot read it or it passes the budget.
void scan_grib_file(const std::string& path, uint32_t file, const nlohmann::json& filter_by_keys,
                    GribScan& scan);

// The same for the object at `url` (`size` bytes) read by range through `reader` (HTTP(S), S3):
// section 0 of each message gives its length; each message is read whole once, then indexed.
// Messages must follow each other (no bytes between or after them: ecCodes skips those in a file).
void scan_grib_object(Readable& reader, const std::string& url, uint64_t size, uint32_t file,
                      const nlohmann::json& filter_by_keys, GribScan& scan);

// Whether `path` starts with the GRIB signature (engine auto-detection).
bool is_grib_file(const std::string& path);

}  // namespace zp
