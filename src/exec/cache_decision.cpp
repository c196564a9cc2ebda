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
    case Decision::Kind::Append:
      return "append";
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

struct Listing {
  bool listed = false;  // a local NetCDF glob, listed again
  std::vector<std::string> added, gone;
  std::string error;
};

// A local NetCDF glob is listed again: a file that now matches it, or one that no longer does, is a
// changed source even when every recorded file is unchanged. Other sources are one object (a URL,
// a reference set's JSON) whose fingerprint changes when it grows.
Listing list_again(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  Listing out;
  if (is_remote(cfg.data_uri) || resolve_engine(cfg.data_uri, cfg.engine) != "netcdf") return out;
  out.listed = true;
  std::vector<std::string> now;
  try {
    now = expand_glob(local_path_of(cfg.data_uri));
  } catch (const Error&) {
    out.error = "no file matches data_uri " + cfg.data_uri + " now";
    return out;
  }
  std::set<std::string> had;
  for (const auto& f : recorded) had.insert(local_path_of(f.path));
  const std::set<std::string> has(now.begin(), now.end());
  for (const auto& p : now)
    if (!had.count(p)) out.added.push_back(p);
  for (const auto& p : had)
    if (!has.count(p)) out.gone.push_back(p);
  return out;
}

std::string describe_listing(const Listing& l) {
  std::string out = l.error;
  if (!l.added.empty())
    out = fmt::format("{} new file{} match{} data_uri ({}{})", l.added.size(),
                      l.added.size() == 1 ? "" : "s", l.added.size() == 1 ? "es" : "",
                      l.added.front(), l.added.size() > 1 ? ", ..." : "");
  if (!l.gone.empty())
    out += fmt::format("{}{} {} no longer there ({}{})", out.empty() ? "" : "; ", l.gone.size(),
                       l.gone.size() == 1 ? "file read before is" : "files read before are",
                       l.gone.front(), l.gone.size() > 1 ? ", ..." : "");
  return out;
}

std::string listing_difference(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  if (!is_remote(cfg.data_uri) && resolve_engine(cfg.data_uri, cfg.engine) == "zarr")
    return zarr_listing_difference(recorded, cfg);
  return describe_listing(list_again(recorded, cfg));
}

// Why a changed source is not the old one plus files after its end ("" when it is): every file
// read before still there and unchanged, the new ones sorted after the last of them (the order
// the glob joins them in).
std::string why_not_appendable(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  const Listing l = list_again(recorded, cfg);
  if (!l.listed) return "only a local glob of NetCDF/HDF5 files grows by files";
  if (!l.error.empty() || !l.gone.empty()) return describe_listing(l);
  if (l.added.empty()) return "no new file: a file read before changed";
  std::string last;
  for (const auto& f : recorded) last = std::max(last, local_path_of(f.path));
  for (const auto& p : l.added)
    if (p < last)
      return p + " sorts before " + last + ", the last file read: it is not after the end";
  SourceAccess access(cfg.access);
  try {
    const std::string change = first_change(recorded, access);
    return change.empty() ? "" : "a file read before changed: " + change;
  } catch (const Error& e) {
    return std::string("cannot check it: ") + e.what();
  }
}

std::string format_difference(std::optional<int> recorded) {
  if (recorded == kOutputFormatVersion) return "";
  return fmt::format(
      "it was written with output format version {} and this zarr-parallel writes {}",
      recorded ? std::to_string(*recorded) : "none (an older zarr-parallel)", kOutputFormatVersion);
}

}  // namespace

std::string unversioned_sources(const std::vector<Fingerprint>& recorded, const Config& cfg) {
  if (cfg.assume_unchanged) return "";
  std::size_t n = 0;
  std::string first;
  for (const auto& f : recorded)
    if (is_remote(f.path) && f.size >= 0 && f.etag.empty() && n++ == 0) first = f.path;
  if (n == 0) return "";
  return fmt::format(
      "{}{} came without ETag or Last-Modified, so a replacement of the same size cannot be told "
      "apart (assume_unchanged: true takes an unchanged size as unchanged)",
      first, n > 1 ? fmt::format(" and {} more object{}", n - 1, n > 2 ? "s" : "") : "");
}

namespace {

// Why the store at `root` (of this config) is not this config's source as it is now ("" if it is).
// `unsure`: set when the only reason is a source without versions (not a change on_source_change
// acts on).
std::string store_difference(const StoreState& state, const Config& cfg, std::optional<int> format,
                             bool* unsure = nullptr) {
  if (auto why = format_difference(format); !why.empty()) return why;
  const auto recorded = state.sources();
  if (!recorded || !recorded->is_array()) return "it has no record of its sources";
  const auto fingerprints = fingerprints_from(*recorded);
  std::string change = source_difference(fingerprints, cfg);
  if (!change.empty()) return "the source changed: " + change;
  change = unversioned_sources(fingerprints, cfg);
  if (unsure) *unsure = !change.empty();
  return change.empty() ? "" : "the source may have changed: " + change;
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

// A complete store of this config and output format whose source changed: what
// on_source_change says. nullopt: a rebuild (`why` says why; an interrupted replacement may still
// be continued).
std::optional<Decision> on_source_change(const std::string& target, const Config& cfg,
                                         const StoreState& state, std::string& why) {
  if (cfg.on_source_change == "error")
    throw Error::source(target, why +
                                    " (on_source_change: error): the cache is left as it was made; "
                                    "set on_source_change: append or rebuild to update it");
  if (cfg.on_source_change == "rebuild") {
    why += " (on_source_change: rebuild)";
    return std::nullopt;
  }
  const std::string blocker =
      why_not_appendable(fingerprints_from(state.sources().value_or(nlohmann::json::array())), cfg);
  if (blocker.empty()) return Decision{Decision::Kind::Append, target, target + ": " + why};
  why += "; it cannot be appended: " + blocker;
  return std::nullopt;
}

Decision decide_complete(const std::string& target, const std::string& staging, const Config& cfg,
                         const StoreState& state) {
  const bool same = state.completed_hash() == cfg.content_hash() &&
                    format_difference(state.completed_format_version()).empty();
  bool unsure = false;
  std::string why = same ? store_difference(state, cfg, state.completed_format_version(), &unsure)
                    : state.completed_hash() != cfg.content_hash()
                        ? "it was made from another config"
                        : format_difference(state.completed_format_version());
  // Killed mid-append, then the new files taken away: its arrays' metadata may be the new ones.
  const bool undone = why.empty() && state.append_record().has_value();
  if (undone) {
    why = "an append to it was interrupted and its source is the old one again";
  } else if (why.empty()) {
    const auto n = fingerprints_from(state.sources().value_or(nlohmann::json::array())).size();
    return {Decision::Kind::Hit, target,
            fmt::format("{} was made from this config and its {} source object{}, unchanged, "
                        "with output format version {}",
                        target, n, n == 1 ? "" : "s", kOutputFormatVersion)};
  }
  if (same && !undone && !unsure)
    if (auto d = on_source_change(target, cfg, state, why)) return *d;
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
