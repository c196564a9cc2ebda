// Source fingerprints: size and modification time (nanoseconds) of every source file a plan reads,
// taken when it is planned. Workers, resume, cache hits and verify compare them with the files as
// they are now, so a store is never finished from two versions of its source.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"

namespace zp {

struct Fingerprint {
  std::string path;
  int64_t size = -1;  // -1: not there
  int64_t mtime_ns = 0;
  bool operator==(const Fingerprint&) const = default;
};

Fingerprint fingerprint_of(const std::string& path);

// Every local file the dataset reads: its data files and its description (a kerchunk JSON).
std::vector<std::string> source_paths(const Dataset& ds);
std::vector<Fingerprint> take_fingerprints(const std::vector<std::string>& paths);

// What changed, as one line naming the file ("" when nothing did). Stops at the first change.
std::string first_change(const std::vector<Fingerprint>& recorded);
std::string describe_change(const Fingerprint& was, const Fingerprint& now);

nlohmann::json fingerprints_json(const std::vector<Fingerprint>& f);
std::vector<Fingerprint> fingerprints_from(const nlohmann::json& j);

}  // namespace zp
