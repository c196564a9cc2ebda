// What a run of a config does with what is already at its cache_store: a cache hit (the same
// config, the same expanded list of sources with the same fingerprints, the same output-format
// version), the continuation of an interrupted store of the same config and sources, an append
// (on_source_change: append, the source grown by files after its end), or a rebuild,
// each with its reason, which is the run's first line of output. Decided from the store's records
// and the source's listing (a glob expanded again, fingerprints taken), before any planning.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "source/fingerprint.hpp"

namespace zp {

struct Decision {
  enum class Kind { New, Hit, Continue, Rebuild, Append };
  Kind kind = Kind::New;
  // Continue: the interrupted store (the target or its staging replacement); Append: the target,
  // whose source is the old one plus files after its end (confirmed against the plan later:
  // exec/append_run.hpp).
  std::string root;
  std::string reason;  // one line, said to the user
};

const char* decision_name(Decision::Kind kind);

// How the source differs from what a store recorded ("" when it does not): files that now match
// the glob and were not read, recorded files no longer there, files changed (size, mtime, ETag).
std::string source_difference(const std::vector<Fingerprint>& recorded, const Config& cfg);
// Remote objects recorded without a version (their server sent neither ETag nor Last-Modified):
// a replacement of the same size cannot be told apart, so such a store is neither a cache hit nor
// continued unless the config says assume_unchanged. "" when there are none; else a line naming
// the first.
std::string unversioned_sources(const std::vector<Fingerprint>& recorded, const Config& cfg);

// `target`/`staging`: the store's path and where its replacement is built.
Decision decide(const std::string& target, const std::string& staging, const Config& cfg);

// The decision as the run's first line on stderr (none for a new store).
void announce(const Decision& d, int log_level);
// {decision, reason}: added to the `cache_hit` and `plan` events of --json.
nlohmann::json decision_fields(const Decision& d);

}  // namespace zp
