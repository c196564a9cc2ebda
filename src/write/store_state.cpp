#include "write/store_state.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include "core/error.hpp"
#include "core/json_limits.hpp"

namespace zp {

using json = nlohmann::json;

namespace {
std::string key(const std::string& rest) {
  return std::string(StoreState::kFolder) + "/" + rest;
}

// Bookkeeping files are small (state.json holds one fingerprint per source file: ~20 MB for
// 100,000 files); a larger one is not ours and is read as absent, as an unparsable one is.
constexpr uint64_t kBookkeepingBytes = uint64_t{64} << 20;

std::optional<json> read_json(const Writable& store, const std::string& k,
                              uint64_t max_bytes = kBookkeepingBytes) {
  const auto text = store.get_at_most(k, max_bytes);
  if (!text) return std::nullopt;
  if (json_too_deep(*text)) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<int> format_version_in(const std::optional<json>& j) {
  if (!j || !j->is_object() || !j->contains("format_version")) return std::nullopt;
  const json& v = (*j)["format_version"];
  if (!v.is_number_integer()) return std::nullopt;
  return v.get<int>();
}
}  // namespace

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string StoreState::plan_path() const {
  return store_.location_of(key("plan.json"));
}
std::string StoreState::log_path(int64_t job_id) const {
  return store_.location_of(key("logs/job-" + std::to_string(job_id) + ".log"));
}

int StoreState::open_log(int64_t job_id) const {
  return store_.open_append(key("logs/job-" + std::to_string(job_id) + ".log"));
}

void StoreState::put(const std::string& k, const std::string& text, WriteBatch* batch) const {
  if (!batch) return store_.put(k, text);
  const Bytes bytes(text.begin(), text.end());
  batch->put(k, {&bytes});
}

void StoreState::write_plan(const std::string& plan_json, WriteBatch* batch) const {
  put(key("plan.json"), plan_json, batch);
}

void StoreState::write_started(const std::string& config_hash, const std::string& plan_sha256,
                               WriteBatch* batch) const {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  put(key("state.json"),
      json{{"config_hash", config_hash},
           {"plan_sha256", plan_sha256},
           {"started", now_seconds()},
           {"host", host},
           {"pid", getpid()},
           {"tool_version", ZP_VERSION},
           {"format_version", kOutputFormatVersion}}
          .dump(2),
      batch);
}

std::optional<json> StoreState::started() const {
  return read_json(store_, key("state.json"));
}

void StoreState::mark_done(int64_t job_id, const json& stats) const {
  store_.put(key("jobs/" + std::to_string(job_id) + ".done"), stats.dump());
}

bool StoreState::is_done(int64_t job_id) const {
  return store_.exists(key("jobs/" + std::to_string(job_id) + ".done"));
}

std::optional<json> StoreState::done_info(int64_t job_id) const {
  const auto text =
      store_.get_at_most(key("jobs/" + std::to_string(job_id) + ".done"), kDoneRecordBytes);
  if (!text || json_too_deep(*text)) return std::nullopt;
  const json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  json out = json::object();
  for (const char* name : {"job", "chunks", "bytes_read", "bytes_written", "peak_rss", "pid"})
    if (j.contains(name) && j[name].is_number_integer() && j[name] >= 0) out[name] = j[name];
  if (j.contains("seconds") && j["seconds"].is_number() && j["seconds"] >= 0)
    out["seconds"] = j["seconds"];
  if (j.contains("worker") && j["worker"].is_string())
    out["worker"] = j["worker"].get<std::string>().substr(0, 256);
  return out;
}

std::vector<json> StoreState::done_records(std::size_t jobs) const {
  std::vector<json> out;
  for (std::size_t id = 0; id < jobs; ++id)
    if (auto j = done_info(static_cast<int64_t>(id))) out.push_back(std::move(*j));
  return out;
}

std::size_t StoreState::done_markers_listed(std::size_t max, bool& cut) const {
  std::size_t n = 0;
  const auto names = store_.list_at_most(key("jobs"), max);
  cut = names.size() >= max;
  for (const auto& name : names) {
    const auto digits = name.size() > 5 && name.ends_with(".done") ? name.size() - 5 : 0;
    if (digits > 0 && name.find_first_not_of("0123456789") == digits) ++n;
  }
  return n;
}

std::optional<json> StoreState::heartbeat(const std::string& worker) const {
  return read_json(store_, key("heartbeats/" + worker + ".json"), kHeartbeatBytes);
}

std::vector<std::string> StoreState::list_at_most(const std::string& sub, std::size_t max) const {
  return store_.list_at_most(key(sub), max);
}

void StoreState::write_heartbeat(const std::string& worker, const json& beat) const {
  store_.put(key("heartbeats/" + worker + ".json"), beat.dump(), Sync::Cached);
}

void StoreState::write_sources(const json& fingerprints, WriteBatch* batch) const {
  put(key("sources.json"), fingerprints.dump(), batch);
}

std::optional<json> StoreState::sources() const {
  return read_json(store_, key("sources.json"));
}

void StoreState::write_append(const json& record) const {
  store_.put(key("append.json"), record.dump());
}

std::optional<json> StoreState::append_record() const {
  return read_json(store_, key("append.json"));
}

void StoreState::remove_append() const {
  store_.remove(key("append.json"));
  store_.sync_folders({kFolder});
}

void StoreState::clear_done() const {
  for (const auto& name : store_.list(key("jobs")))
    if (name.ends_with(".done")) store_.remove(key("jobs/" + name));
  store_.sync_folders({key("jobs")});
}

void StoreState::write_stats(const json& stats, WriteBatch* batch) const {
  put(key("stats.json"), stats.dump(2), batch);
}

void StoreState::mark_complete(const std::string& config_hash) const {
  // The done markers it stands on first (the chunks were flushed before each marker was written),
  // then the marker itself: a store that claims completion after a crash is complete.
  store_.sync_folders({key("jobs")});
  store_.put(key("complete.json"), json{{"config_hash", config_hash},
                                        {"format_version", kOutputFormatVersion},
                                        {"finished", now_seconds()}}
                                       .dump(2));
  store_.sync_folders({kFolder});
}

void StoreState::sync() const {
  store_.sync_folders({kFolder});
}

std::optional<std::string> StoreState::completed_hash() const {
  const auto j = read_json(store_, key("complete.json"));
  if (!j || !j->contains("config_hash") || !(*j)["config_hash"].is_string()) return std::nullopt;
  return (*j)["config_hash"].get<std::string>();
}

std::optional<int> StoreState::completed_format_version() const {
  return format_version_in(read_json(store_, key("complete.json")));
}

std::optional<int> StoreState::started_format_version() const {
  return format_version_in(started());
}

}  // namespace zp
