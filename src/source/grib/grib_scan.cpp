#include "source/grib/grib_scan.hpp"

#include <eccodes.h>

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "codec/grib_grid_budget.hpp"
#include "core/budget.hpp"
#include "core/crash_note.hpp"
#include "core/error.hpp"
#include "source/grib/grib_concept_memo.hpp"

namespace zp {

namespace {

using json = nlohmann::json;

// cfgrib's key lists (cfgrib/dataset.py, 0.9.10): the index keys, the attributes read from a
// parameter's first message, and the grid keys by gridType.
const char* const kIndexKeys[] = {
    "centre",          "centreDescription", "dataDate",    "dataTime",
    "dataType",        "directionNumber",   "edition",     "endStep",
    "frequencyNumber", "gridType",          "level:float", "number",
    "numberOfPoints",  "paramId",           "stepType",    "stepUnits",
    "subCentre",       "typeOfLevel",       "time",        "step"};
const char* const kExtraKeys[] = {"shortName",
                                  "units",
                                  "name",
                                  "cfName",
                                  "cfVarName",
                                  "missingValue",
                                  "totalNumber",
                                  "numberOfDirections",
                                  "numberOfFrequencies",
                                  "NV",
                                  "gridDefinitionDescription"};
const std::map<std::string, std::vector<std::string>>& grid_type_keys() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"regular_ll",
       {"Nx", "iDirectionIncrementInDegrees", "iScansNegatively",
        "longitudeOfFirstGridPointInDegrees", "longitudeOfLastGridPointInDegrees", "Ny",
        "jDirectionIncrementInDegrees", "jPointsAreConsecutive", "jScansPositively",
        "latitudeOfFirstGridPointInDegrees", "latitudeOfLastGridPointInDegrees"}},
      {"rotated_ll",
       {"Nx", "Ny", "angleOfRotationInDegrees", "iDirectionIncrementInDegrees", "iScansNegatively",
        "jDirectionIncrementInDegrees", "jPointsAreConsecutive", "jScansPositively",
        "latitudeOfFirstGridPointInDegrees", "latitudeOfLastGridPointInDegrees",
        "latitudeOfSouthernPoleInDegrees", "longitudeOfFirstGridPointInDegrees",
        "longitudeOfLastGridPointInDegrees", "longitudeOfSouthernPoleInDegrees"}},
      {"reduced_ll",
       {"Ny", "jDirectionIncrementInDegrees", "jPointsAreConsecutive", "jScansPositively",
        "latitudeOfFirstGridPointInDegrees", "latitudeOfLastGridPointInDegrees"}},
      {"regular_gg",
       {"N", "Ni", "Nj", "iDirectionIncrementInDegrees", "iScansNegatively", "jScansPositively",
        "jPointsAreConsecutive", "longitudeOfFirstGridPointInDegrees",
        "longitudeOfLastGridPointInDegrees", "latitudeOfFirstGridPointInDegrees",
        "latitudeOfLastGridPointInDegrees"}},
      {"rotated_gg",
       {"Nx", "Ny", "angleOfRotationInDegrees", "iDirectionIncrementInDegrees", "iScansNegatively",
        "jPointsAreConsecutive", "jScansPositively", "latitudeOfFirstGridPointInDegrees",
        "latitudeOfLastGridPointInDegrees", "latitudeOfSouthernPoleInDegrees",
        "longitudeOfFirstGridPointInDegrees", "longitudeOfLastGridPointInDegrees",
        "longitudeOfSouthernPoleInDegrees", "N"}},
      {"lambert",
       {"LaDInDegrees", "LoVInDegrees", "iScansNegatively", "jPointsAreConsecutive",
        "jScansPositively", "latitudeOfFirstGridPointInDegrees", "latitudeOfSouthernPoleInDegrees",
        "longitudeOfFirstGridPointInDegrees", "longitudeOfSouthernPoleInDegrees", "DyInMetres",
        "DxInMetres", "Latin2InDegrees", "Latin1InDegrees", "Ny", "Nx"}},
      {"reduced_gg", {"N", "pl"}},
      {"sh", {"M", "K", "J"}},
  };
  return m;
}
// Seconds of each stepUnits code (ecCodes' stepUnits.table, as cfgrib has it); 0: unsupported.
constexpr int64_t kStepUnitSeconds[] = {60, 3600, 86400, 0,     0,     0, 0,   0,
                                        0,  0,    10800, 21600, 43200, 1, 900, 1800};
// Values of one array key read whole (pl, latitudes of a grid): the GRIB grid's budget.
constexpr std::size_t kArrayValues = static_cast<std::size_t>(budget::kGribPoints);
constexpr uint64_t kMessageBytes = uint64_t{1} << 32;  // one message (GRIB2's own limit is 2^64)

struct HandleDeleter {
  void operator()(codes_handle* h) const { codes_handle_delete(h); }
};
using Handle = std::unique_ptr<codes_handle, HandleDeleter>;

json scalar_or_array(std::vector<json> items) {
  if (items.size() == 1) return std::move(items[0]);
  return json(std::move(items));
}

// A key as eccodes-python's codes_get reads it (native type; arrays when its size is above 1);
// null where it raises (undefined key, unreadable value).
json key_value(codes_handle* h, const std::string& key, bool as_double = false) {
  if (!codes_is_defined(h, key.c_str())) return nullptr;
  int type = CODES_TYPE_UNDEFINED;
  size_t size = 0;
  if (codes_get_native_type(h, key.c_str(), &type) || codes_get_size(h, key.c_str(), &size))
    return nullptr;
  if (as_double) type = CODES_TYPE_DOUBLE;
  if (size == 0 || size > kArrayValues) return nullptr;
  if (type == CODES_TYPE_STRING) {
    char buf[1024];
    size_t len = sizeof(buf);
    if (codes_get_string(h, key.c_str(), buf, &len)) return nullptr;
    return std::string(buf);
  }
  std::vector<json> items;
  if (type == CODES_TYPE_LONG) {
    std::vector<long> v(size);
    if (codes_get_long_array(h, key.c_str(), v.data(), &size)) return nullptr;
    for (size_t i = 0; i < size; ++i) items.emplace_back(static_cast<int64_t>(v[i]));
  } else if (type == CODES_TYPE_DOUBLE) {
    std::vector<double> v(size);
    if (codes_get_double_array(h, key.c_str(), v.data(), &size)) return nullptr;
    for (size_t i = 0; i < size; ++i) items.emplace_back(v[i]);
  } else {
    return nullptr;
  }
  return scalar_or_array(std::move(items));
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {  // days since 1970-01-01
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

// cfgrib's "time": dataDate and dataTime as seconds since 1970 (Python's datetime: years 1-9999).
json reference_time(codes_handle* h) {
  const json date = key_value(h, "dataDate"), time = key_value(h, "dataTime");
  if (!date.is_number_integer() || !time.is_number_integer()) return nullptr;
  const int64_t d = date.get<int64_t>(), t = time.get<int64_t>();
  const int64_t y = d / 10000, mo = d / 100 % 100, day = d % 100, hh = t / 100, mi = t % 100;
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1 || y > 9999 || mo < 1 || mo > 12 || day < 1 || hh < 0 || hh > 23 || mi < 0 || mi > 59 ||
      day > kDays[mo - 1] - (mo == 2 && !leap))
    return nullptr;
  return days_from_civil(y, mo, day) * 86400 + hh * 3600 + mi * 60;
}

// cfgrib's "step": endStep in stepUnits, as hours (a float).
json step_hours(codes_handle* h) {
  const json end = key_value(h, "endStep"), units = key_value(h, "stepUnits");
  if (!end.is_number_integer() || !units.is_number_integer()) return nullptr;
  const int64_t u = units.get<int64_t>();
  if (u < 0 || u >= 16 || kStepUnitSeconds[u] == 0) return nullptr;
  return static_cast<double>(end.get<int64_t>() * kStepUnitSeconds[u]) / 3600.0;
}

json index_value(codes_handle* h, const std::string& key) {
  if (key == "time") return reference_time(h);
  if (key == "step") return step_hours(h);
  if (key == "paramId") {  // a concept: most of the scan's time, memoised (grib_concept_memo.hpp)
    static GribConceptMemo memo;
    return memo.get(h, [&] { return key_value(h, key); });
  }
  const auto colon = key.find(':');
  if (colon == std::string::npos) return key_value(h, key);
  const json v = key_value(h, key.substr(0, colon), true);
  return v.is_null() ? key_value(h, key.substr(0, colon)) : v;
}

int64_t int_or_zero(const json& j) {
  return j.is_number_integer() ? j.get<int64_t>() : 0;
}

// An array key read straight into doubles (empty where eccodes-python's codes_get would raise).
// Only called after check_grib_grid_size: its size is then within the budget.
std::vector<double> double_array(codes_handle* h, const char* key) {
  size_t size = 0;
  if (!codes_is_defined(h, key) || codes_get_size(h, key, &size) || size == 0 ||
      size > kArrayValues)
    return {};
  std::vector<double> v(size);
  if (codes_get_double_array(h, key, v.data(), &size)) return {};
  v.resize(size);
  return v;
}

// The grid cfgrib builds from the first message (build_geography_coordinates); read_first has
// checked the grid's size (ecCodes allocates these arrays whole and aborts when it cannot).
void read_geography(codes_handle* h, GribFirst& f) {
  f.ny = int_or_zero(key_value(h, "Ny"));
  f.nx = int_or_zero(key_value(h, "Nx"));
  f.points = int_or_zero(key_value(h, "numberOfPoints"));
  const bool regular = f.grid_type == "regular_ll" || f.grid_type == "regular_gg";
  f.latitudes = double_array(h, regular ? "distinctLatitudes" : "latitudes");
  f.longitudes = double_array(h, regular ? "distinctLongitudes" : "longitudes");
}

GribFirst read_first(codes_handle* h, const std::string& where) {
  GribFirst f;
  f.where = where;
  check_grib_grid_size(h, where);  // before any key the size of the grid (pl, latitudes)
  codes_set_double(h, "missingValue", static_cast<double>(FLT_MAX));  // as cfgrib's Message
  const json grid_type = key_value(h, "gridType");
  f.grid_type = grid_type.is_string() ? grid_type.get<std::string>() : "";
  std::vector<std::string> keys(std::begin(kExtraKeys), std::end(kExtraKeys));
  const auto& grids = grid_type_keys();
  if (const auto it = grids.find(f.grid_type); it != grids.end())
    keys.insert(keys.end(), it->second.begin(), it->second.end());
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) {
    json v = key_value(h, k);
    if (!v.is_null()) f.attrs["GRIB_" + k] = std::move(v);
  }
  read_geography(h, f);
  return f;
}

bool matches(const GribField& field, const std::vector<std::string>& keys, const json& filter) {
  for (const auto& [k, v] : filter.items()) {
    const auto i = std::find(keys.begin(), keys.end(), k) - keys.begin();
    if (field.keys[static_cast<std::size_t>(i)] != v) return false;
  }
  return true;
}

std::string message_where(const std::string& path, std::size_t n, uint64_t offset) {
  return path + ": message " + std::to_string(n) + " at byte " + std::to_string(offset);
}

// Reads the message's byte range (ecCodes' offset is a double: read as cfgrib reads it, an int)
// and its index keys.
void index_message(codes_handle* h, const std::string& where, GribScan& scan, GribField& field) {
  long offset = -1, length = 0;
  if (codes_get_long(h, "offset", &offset) || codes_get_long(h, "totalLength", &length) ||
      offset < 0 || length <= 0 || static_cast<uint64_t>(length) > kMessageBytes)
    throw Error::source(where, "ecCodes gives no byte range for the message (offset, totalLength)");
  field.offset = static_cast<uint64_t>(offset);
  field.length = static_cast<uint64_t>(length);
  for (const std::string& k : scan.index_keys) field.keys.push_back(index_value(h, k));
}

}  // namespace

std::vector<std::string> grib_index_keys(const json& filter_by_keys) {
  std::set<std::string> keys(std::begin(kIndexKeys), std::end(kIndexKeys));
  if (filter_by_keys.is_object())
    for (const auto& [k, v] : filter_by_keys.items()) keys.insert(k);
  return {keys.begin(), keys.end()};
}

bool is_grib_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  char sig[4] = {};
  return f && std::fread(sig, 1, 4, f.get()) == 4 && std::memcmp(sig, "GRIB", 4) == 0;
}

namespace {

// The length section 0 (`s0`, 16 bytes) claims: 3 bytes in GRIB1, 8 in GRIB2 and any other edition
// as ecCodes reads it; 0 when `s0` is no section 0.
uint64_t claimed_length(const unsigned char* s0) {
  if (std::memcmp(s0, "GRIB", 4) != 0) return 0;
  uint64_t length = 0;
  if (s0[7] == 1) length = (uint64_t{s0[4]} << 16) | (uint64_t{s0[5]} << 8) | s0[6];
  if (s0[7] != 1)
    for (int i = 8; i < 16; ++i) length = (length << 8) | s0[i];
  return length;
}

}  // namespace

// The message starting at the file's position claims a length (section 0) the file cannot hold:
// refused before ecCodes allocates a buffer of that length. Position unchanged.
void check_claimed_length(FILE* f, const std::string& where) {
  const long at = std::ftell(f);
  unsigned char s0[16] = {};
  const std::size_t got = std::fread(s0, 1, sizeof s0, f);
  std::fseek(f, 0, SEEK_END);
  const long end = std::ftell(f);
  std::fseek(f, at, SEEK_SET);
  if (got < sizeof s0 || std::memcmp(s0, "GRIB", 4) != 0 || at < 0 || end < at) return;
  const uint64_t length = claimed_length(s0);
  if (length > static_cast<uint64_t>(end - at) || length > kMessageBytes)
    throw Error::source(where, "section 0 claims " + std::to_string(length) +
                                   " bytes, more than the file holds after it");
}

namespace {

// Indexes message `n` of `path` (its handle `h`, `where` for errors) into `scan` when it matches
// `filter`. `at`: its offset in the object when ecCodes read it from memory (its own offset key
// is then 0).
void add_message(codes_handle* h, const std::string& where, const std::string& path, std::size_t n,
                 uint32_t file, const json& filter, std::optional<uint64_t> at, GribScan& scan) {
  if (static_cast<int64_t>(scan.fields.size()) >= budget::kChunksPerArray)
    throw Error::source(path, "more GRIB messages than the budget allows (" +
                                  std::to_string(budget::kChunksPerArray) + ")");
  GribField field;
  field.file = file;
  index_message(h, where, scan, field);
  if (at) field.offset = *at;
  if (!matches(field, scan.index_keys, filter)) return;
  const json param = field.keys[static_cast<std::size_t>(
      std::find(scan.index_keys.begin(), scan.index_keys.end(), "paramId") -
      scan.index_keys.begin())];
  if (!scan.firsts.count(param.dump()))
    scan.firsts[param.dump()] = read_first(h, message_where(path, n, field.offset));
  scan.fields.push_back(std::move(field));
}

void start_scan(const json& filter_by_keys, GribScan& scan) {
  // ecCodes' own messages to stderr are silenced: the Error says what failed and where.
  codes_context_set_logging_proc(codes_context_get_default(),
                                 [](const codes_context*, int, const char*) {});
  if (scan.index_keys.empty()) scan.index_keys = grib_index_keys(filter_by_keys);
}

}  // namespace

void scan_grib_file(const std::string& path, uint32_t file, const json& filter_by_keys,
                    GribScan& scan) {
  start_scan(filter_by_keys, scan);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error::source_missing(path, "cannot open the GRIB file: " + errno_text(errno));
  const json filter = filter_by_keys.is_object() ? filter_by_keys : json::object();
  for (std::size_t n = 0;; ++n) {
    int err = 0;
    const std::string where = message_where(path, n, static_cast<uint64_t>(std::ftell(f.get())));
    const CrashNoteScope note(where);  // ecCodes may abort: the scan child's parent names this
    check_claimed_length(f.get(), where);
    Handle h(codes_handle_new_from_file(nullptr, f.get(), PRODUCT_GRIB, &err));
    if (!h && err == 0) break;  // end of file
    if (!h)
      throw Error::source(
          where, std::string("ecCodes cannot read the message: ") + codes_get_error_message(err));
    add_message(h.get(), where, path, n, file, filter, std::nullopt, scan);
  }
}

void scan_grib_object(Readable& reader, const std::string& url, uint64_t size, uint32_t file,
                      const json& filter_by_keys, GribScan& scan) {
  start_scan(filter_by_keys, scan);
  const json filter = filter_by_keys.is_object() ? filter_by_keys : json::object();
  uint64_t at = 0;
  for (std::size_t n = 0; at < size; ++n) {
    const std::string where = message_where(url, n, at);
    const CrashNoteScope note(where);  // ecCodes may abort: the scan child's parent names this
    const Bytes s0 = reader.read(url, at, std::min<uint64_t>(16, size - at));
    const uint64_t length = s0.size() == 16 ? claimed_length(s0.data()) : 0;
    if (length == 0)
      throw Error::source(where,
                          "no GRIB message starts here (by URL, messages must follow "
                          "each other with no other bytes between or after them)");
    if (length < 16 || length > size - at || length > kMessageBytes)
      throw Error::source(where, "section 0 claims " + std::to_string(length) +
                                     " bytes, more than the object holds after it");
    const Bytes message = reader.read(url, at, length);  // outlives the handle: not copied
    Handle h(codes_handle_new_from_message(nullptr, message.data(), message.size()));
    if (!h) throw Error::source(where, "ecCodes cannot read the message");
    long total = 0;
    if (codes_get_long(h.get(), "totalLength", &total) || static_cast<uint64_t>(total) != length)
      throw Error::source(where, "the message's length (totalLength) is not what section 0 says");
    add_message(h.get(), where, url, n, file, filter, at, scan);
    at += length;
  }
}

}  // namespace zp
