#include "exec/cache_decision.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "exec/progress.hpp"
#include "source/open_source.hpp"
#include "store/file_reader.hpp"
#include "store/file_store.hpp"
#include "write/store_ownership.hpp"
#include "write/store_state.hpp"

namespace zp {

const char* decision_name(Decision::Kind kind) {
  switch (kind) {
    case Decision::Kind::Hit:
      return "hit";
    case Decision::Kind::Continue:
      return "continue";
    case Decision::Kind::Rebuild:
      return "rebuild";
    default:
      return "new";
  }
}

namespace {

std::string normal_path(const std::string& p) {
  return std::filesystem::path(local_path_of(p)).lexically_normal().string();
}

// A local Zarr store is listed again: a file written since (a chunk that was missing and read as
// the fill value) is a change though no file read before changed.
std::string zarr_listing_difference(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  std::set<std::string> had;
  for (const auto& f : recorded) had.insert(normal_path(f.path));
  std::vector<std::string> added;
  for (const auto& p : zarr_store_files(cfg.data_uri))
    if (!had.count(normal_path(p))) added.push_back(p);
  if (added.empty()) return "";
  return fmt::format("{} new file{} in the Zarr store ({}{})", added.size(),
                     added.size() == 1 ? "" : "s", added.front(), added.size() > 1 ? ", ..." : "");
}

// A local NetCDF glob is listed again: a file that now matches it, or one that no longer does, is a
// changed source even when every recorded file is unchanged. Other sources are one object (a URL,
// a reference set's JSON) whose fingerprint changes when it grows.
std::string listing_difference(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  if (is_remote(cfg.data_uri)) return "";
  const std::string engine = resolve_engine(cfg.data_uri, cfg.engine);
  if (engine == "zarr") return zarr_listing_difference(recorded, cfg);
  if (engine != "netcdf") return "";
  std::vector<std::string> now;
  try {
    now = expand_glob(local_path_of(cfg.data_uri));
  } catch (const Error&) {
    return "no file matches data_uri " + cfg.data_uri + " now";
  }
  std::set<std::string> had;
  for (const auto& f : recorded) had.insert(local_path_of(f.path));
  const std::set<std::string> has(now.begin(), now.end());
  std::vector<std::string> added, gone;
  for (const auto& p : now)
    if (!had.count(p)) added.push_back(p);
  for (const auto& p : had)
    if (!has.count(p)) gone.push_back(p);
  std::string out;
  if (!added.empty())
    out = fmt::format("{} new file{} match{} data_uri ({}{})", added.size(),
                      added.size() == 1 ? "" : "s", added.size() == 1 ? "es" : "", added.front(),
                      added.size() > 1 ? ", ..." : "");
  if (!gone.empty())
    out += fmt::format("{}{} {} no longer there ({}{})", out.empty() ? "" : "; ", gone.size(),
                       gone.size() == 1 ? "file read before is" : "files read before are",
                       gone.front(), gone.size() > 1 ? ", ..." : "");
  return out;
}

std::string format_difference(std::optional<int> recorded) {
  if (recorded == kOutputFormatVersion) return "";
  return fmt::format(
      "it was written with output format version {} and this zarr-parallel writes {}",
      recorded ? std::to_string(*recorded) : "none (an older zarr-parallel)", kOutputFormatVersion);
}

// Why the store at `root` (of this config) is not this config's source as it is now ("" if it is).
std::string store_difference(const StoreState& state, const Config& cfg,
                             std::optional<int> format) {
  if (auto why = format_difference(format); !why.empty()) return why;
  const auto recorded = state.sources();
  if (!recorded || !recorded->is_array()) return "it has no record of its sources";
  std::string change = source_difference(fingerprints_from(*recorded), cfg);
  return change.empty() ? "" : "the source changed: " + change;
}

std::optional<std::string> started_hash_of(const StoreState& state) {
  const auto s = state.started();
  if (!s || !s->is_object() || !s->contains("config_hash") || !(*s)["config_hash"].is_string())
    return std::nullopt;
  return (*s)["config_hash"].get<std::string>();
}

// An interrupted store of this config whose sources are unchanged: continued. "" when it is.
std::string why_not_continue(const std::string& root, const Config& cfg) {
  if (classify_target(root).kind != TargetKind::Ours) return "none";
  FileStore store(root);
  StoreState state(store);
  if (state.completed_hash() || started_hash_of(state) != cfg.content_hash())
    return "an unfinished cache of another config";
  return store_difference(state, cfg, state.started_format_version());
}

Decision decide_complete(const std::string& target, const std::string& staging, const Config& cfg,
                         const StoreState& state) {
  std::string why;
  if (state.completed_hash() != cfg.content_hash())
    why = "it was made from another config";
  else
    why = store_difference(state, cfg, state.completed_format_version());
  if (why.empty()) {
    const auto n = fingerprints_from(state.sources().value_or(nlohmann::json::array())).size();
    return {Decision::Kind::Hit, target,
            fmt::format("{} was made from this config and its {} source object{}, unchanged, "
                        "with output format version {}",
                        target, n, n == 1 ? "" : "s", kOutputFormatVersion)};
  }
  if (cfg.on_source_change == "error" && state.completed_hash() == cfg.content_hash() &&
      format_difference(state.completed_format_version()).empty())
    throw Error::source(target, why +
                                    " (on_source_change: error): the cache is left as it was made; "
                                    "set on_source_change: rebuild to update it");
  if (why_not_continue(staging, cfg).empty())
    return {Decision::Kind::Continue, staging,
            "the interrupted replacement of " + target + " (" + why +
                ") has this config and unchanged sources: continuing it in " + staging};
  return {Decision::Kind::Rebuild, "", target + ": " + why + "; building a replacement beside it"};
}

}  // namespace

std::string source_difference(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  if (auto listed = listing_difference(recorded, cfg); !listed.empty()) return listed;
  SourceAccess access(cfg.access);
  try {
    return first_change(recorded, access);
  } catch (const Error& e) {
    return std::string("cannot check it: ") + e.what();  // an unreachable source: no hit
  }
}

Decision decide(const std::string& target, const std::string& staging, const Config& cfg) {
  const TargetState t = classify_target(target);
  if (t.kind != TargetKind::Ours) {
    if (why_not_continue(staging, cfg).empty())
      return {Decision::Kind::Continue, staging,
              "the interrupted cache in " + staging +
                  " has this config and unchanged sources: continuing it"};
    return {Decision::Kind::New, "", "no cache at " + target + " yet: building it"};
  }
  FileStore store(target);
  StoreState state(store);
  if (state.completed_hash()) return decide_complete(target, staging, cfg, state);
  const std::string why = why_not_continue(target, cfg);
  if (why.empty())
    return {Decision::Kind::Continue, target,
            "the interrupted cache at " + target +
                " has this config and unchanged sources: continuing it (finished jobs kept)"};
  if (why_not_continue(staging, cfg).empty())
    return {Decision::Kind::Continue, staging,
            "the interrupted replacement in " + staging +
                " has this config and unchanged sources: continuing it"};
  return {
      Decision::Kind::Rebuild, "",
      "the unfinished cache at " + target + " is not continued (" + why + "): building it again"};
}

void announce(const Decision& d, int log_level) {
  if (d.kind == Decision::Kind::New) return;  // nothing there: nothing to decide, nothing to say
  const std::string what = d.kind == Decision::Kind::Hit ? "cache hit" : decision_name(d.kind);
  log_line(log_level, 1, what + ": " + d.reason);
}

nlohmann::json decision_fields(const Decision& d) {
  return {{"decision", decision_name(d.kind)}, {"reason", d.reason}};
}

}  // namespace zp
