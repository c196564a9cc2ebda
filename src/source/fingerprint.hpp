// Source fingerprints: size and modification time (nanoseconds) of every source file a plan reads,
// or size and ETag of every remote object, taken when it is planned. Workers, resume, cache hits
// and verify compare them with the sources as they are now, so a store is never finished from two
// versions of its source.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "store/store_table.hpp"

namespace zp {

struct Fingerprint {
  std::string path;   // local path or URL
  int64_t size = -1;  // -1: not there
  int64_t mtime_ns = 0;
  std::string etag;                      // remote objects
  AccessRole role = AccessRole::Target;  // whose options reach it (a reference set's chunk URLs)
  bool operator==(const Fingerprint&) const = default;
};

// Every source object the dataset reads: its data files and its description (a kerchunk JSON).
std::vector<Fingerprint> source_objects(const Dataset& ds);
// Every regular file under a local Zarr store (but our own .zarr-parallel records), sorted.
std::vector<std::string> zarr_store_files(const std::string& uri);
// Their state now (one request per remote object, made concurrently).
std::vector<Fingerprint> take_fingerprints(const std::vector<Fingerprint>& objects,
                                           SourceAccess& access);
Fingerprint fingerprint_of(const Fingerprint& object, SourceAccess& access);

// What changed, as one line naming the file ("" when nothing did). Stops at the first change.
std::string first_change(const std::vector<Fingerprint>& recorded, SourceAccess& access);
std::string describe_change(const Fingerprint& was, const Fingerprint& now);

nlohmann::json fingerprints_json(const std::vector<Fingerprint>& f);
std::vector<Fingerprint> fingerprints_from(const nlohmann::json& j);

}  // namespace zp
