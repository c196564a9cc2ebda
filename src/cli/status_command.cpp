#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/terminal_text.hpp"
#include "exec/heartbeat.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"
#include "write/store_ownership.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace {

// A heartbeat file is untrusted: a field of the wrong type reads as absent.
double number_in(const nlohmann::json& b, const char* key) {
  const auto it = b.find(key);
  return it != b.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string text_in(const nlohmann::json& b, const char* key, const char* absent) {
  const auto it = b.find(key);
  return it != b.end() && it->is_string() ? it->get<std::string>() : absent;
}

bool finished(const nlohmann::json& b) {
  const auto it = b.find("finished");
  return it != b.end() && it->is_boolean() && it->get<bool>();
}

// A worker on this host whose process is gone is dead, however recent its last beat.
bool worker_gone(const nlohmann::json& b, const std::string& host) {
  const double pid = number_in(b, "pid");
  if (text_in(b, "host", "") != host || pid <= 0 || pid > 1e9) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  // A zombie nobody reaped yet (its parent died too) is gone as well.
  std::ifstream stat("/proc/" + std::to_string(static_cast<long>(pid)) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

std::string this_host() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// Workers beat every 2 s: five missed beats make one stale (stopped, hung, or on a host whose
// processes we cannot see), though the coordinator waits worker_timeout before it gives up on it.
constexpr double kStaleSeconds = 10;

// What a worker's last heartbeat says of it now: alive, stale, dead, finished or untrusted, and
// why.
struct WorkerView {
  std::string state, why;
  double age = 0;  // negative: dated in the future
};

WorkerView worker_view(const nlohmann::json& b, double now, const std::string& host,
                       int64_t worker_timeout) {
  // Dated later than the clock skew allows (beat_time's rule, as the executors count it): a
  // forged beat, or a host whose clock runs ahead. Never alive, whatever else it says.
  const double time = number_in(b, "time");
  if (time != 0 && beat_time(b, now) == 0)
    return {"untrusted",
            fmt::format("clock ahead: dated {:.0f} s in the future, more than the {:.0f} s of "
                        "clock skew allowed",
                        time - now, kHeartbeatClockSkew),
            now - time};
  const double age = std::max(0.0, now - time);
  if (finished(b)) return {"finished", "", age};
  if (worker_gone(b, host)) return {"dead", "process gone", age};
  if (age > static_cast<double>(worker_timeout))
    return {"dead", fmt::format("lost: silent longer than worker_timeout, {} s", worker_timeout),
            age};
  if (age > kStaleSeconds) return {"stale", "no heartbeat lately", age};
  return {"alive", "", age};
}

// The side folder is untrusted too (anyone who can write the store can add files): status lists
// at most this many names of a folder, reads at most this many heartbeats, and prints at most
// kMaxBeatLines of them (the rest as a count).
constexpr std::size_t kMaxListed = 100'000;
constexpr std::size_t kMaxBeats = 10'000;
constexpr std::size_t kMaxBeatLines = 50;

// What the store's side folder says: the plan, the jobs done, the workers' heartbeats.
struct StatusView {
  std::string store_path;
  Plan plan;
  int64_t done = 0;                   // done markers of the plan's job ids
  std::vector<std::string> notes;     // what was left unread, and why
  std::vector<nlohmann::json> beats;  // each with its "state" and "age_s"
  nlohmann::json live = nlohmann::json::array();
  std::map<std::string, int64_t> count;  // workers by state
  bool complete = false;
};

// The store's plan: read through the store (a folder's plan also has its digest checked).
Plan plan_in(const Writable& store, const StoreState& state) {
  if (dynamic_cast<const FileStore*>(&store)) return load_store_plan(state.plan_path());
  const std::string key = std::string(StoreState::kFolder) + "/plan.json";
  const auto text = store.get(key);
  if (!text) throw Error::store(store.root(), "has no saved plan (the run never got that far)");
  return plan_from_text(*text, store.location_of(key));
}

// A folder, or an S3 prefix (credentials and endpoint from the AWS environment, as for sources).
std::unique_ptr<Writable> open_status_store(const std::string& store_path) {
  const bool s3 = backend_of(store_path) == Backend::S3;
  std::unique_ptr<Writable> store;
  if (s3)
    store = std::make_unique<S3Writer>(store_path, StorageOptions{});
  else if (std::filesystem::exists(std::filesystem::path(store_path) / StoreState::kFolder))
    store = std::make_unique<FileStore>(store_path);
  if (!store || (s3 && !store->exists(std::string(StoreState::kFolder) + "/store.json")))
    throw Error::store(store_path,
                       "no zarr-parallel state here (not made by zarr-parallel, or never started)");
  return store;
}

// Done markers ("N.done") of job ids the plan has; others (forged, or an older plan's) are not
// counted. The listing stops after the plan's jobs and kMaxListed more names.
int64_t count_done(const StoreState& state, const Plan& plan, std::vector<std::string>& notes) {
  std::unordered_set<int64_t> ids;
  for (const auto& j : plan.jobs) ids.insert(j.id);
  const std::size_t max = plan.jobs.size() + kMaxListed;
  const auto names = state.list_at_most("jobs", max);
  if (names.size() >= max)
    notes.push_back(fmt::format("jobs: stopped listing after {} files", names.size()));
  std::unordered_set<int64_t> done;
  for (const auto& name : names) {
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    // Named as workers name them: "01.done" is no marker of job 1 (is_done() never sees it).
    if (ec == std::errc() && std::string_view(end) == ".done" && ids.count(id) &&
        name == std::to_string(id) + ".done")
      done.insert(id);
  }
  return static_cast<int64_t>(done.size());
}

// The heartbeats of the plan's jobs (or of no job: a worker between jobs or finished), at most
// kMaxBeats of them.
std::vector<nlohmann::json> plan_heartbeats(const StoreState& state, const Plan& plan,
                                            std::vector<std::string>& notes) {
  std::unordered_set<int64_t> ids;
  for (const auto& j : plan.jobs) ids.insert(j.id);
  const auto names = state.list_at_most("heartbeats", kMaxListed);
  if (names.size() >= kMaxListed)
    notes.push_back(fmt::format("heartbeats: stopped listing after {} files", names.size()));
  std::vector<nlohmann::json> out;
  std::size_t skipped = 0;
  for (const auto& name : names) {
    if (!name.ends_with(".json") || name.size() <= 5) continue;
    if (out.size() >= kMaxBeats) {
      ++skipped;
      continue;
    }
    auto b = state.heartbeat(name.substr(0, name.size() - 5));
    if (!b || !b->is_object()) continue;
    const auto job = b->find("job");
    if (job != b->end() && !job->is_null() &&
        !(job->is_number_integer() && ids.count(job->get<int64_t>())))
      continue;
    out.push_back(std::move(*b));
  }
  if (skipped > 0)
    notes.push_back(
        fmt::format("heartbeats: {} more files not read (at most {})", skipped, kMaxBeats));
  return out;
}

StatusView status_of(const std::string& store_path) {
  const std::unique_ptr<Writable> store = open_status_store(store_path);
  StoreState state(*store);
  StatusView v{store_path, plan_in(*store, state)};
  v.done = count_done(state, v.plan, v.notes);
  v.complete = state.completed_hash().has_value();
  const double now = now_seconds();
  const std::string host = this_host();
  for (auto b : plan_heartbeats(state, v.plan, v.notes)) {
    const WorkerView w = worker_view(b, now, host, v.plan.worker_timeout);
    b["state"] = w.state;
    b["age_s"] = w.age;
    if (!w.why.empty()) b["why"] = w.why;
    ++v.count[w.state];
    if (w.state == "alive") v.live.push_back(b);
    v.beats.push_back(std::move(b));
  }
  return v;
}

void print_status_json(const StatusView& v) {
  fmt::print("{}\n", nlohmann::json{{"store", v.store_path},
                                    {"complete", v.complete},
                                    {"jobs_done", v.done},
                                    {"jobs_total", v.plan.jobs.size()},
                                    {"live_workers", v.live},
                                    {"workers", v.count},
                                    {"heartbeats", v.beats},
                                    {"notes", v.notes}}
                         .dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_heartbeat(const nlohmann::json& b) {
  const auto job = b.find("job");
  const std::string why = b.contains("why") ? " (" + b["why"].get<std::string>() + ")" : "";
  const double age = b["age_s"].get<double>();
  const std::string when = age < 0 ? "" : fmt::format(", last heartbeat {:.0f} s ago", age);
  print_safe("  {:<24} pid {:<8} job {:<6} chunks {}/{}  {}{}{}\n", text_in(b, "worker", "?"),
             number_in(b, "pid"), job != b.end() && job->is_number_integer() ? job->dump() : "-",
             number_in(b, "chunks_done"), number_in(b, "chunks_total"),
             b["state"].get<std::string>(), why, when);
}

std::string worker_counts(const StatusView& v) {
  const auto n = [&](const char* state) {
    const auto it = v.count.find(state);
    return it == v.count.end() ? int64_t{0} : it->second;
  };
  std::string text = fmt::format("{} live", n("alive"));
  for (const char* state : {"stale", "untrusted", "dead", "finished"})
    if (n(state) > 0) text += fmt::format(", {} {}", n(state), state);
  return text;
}

void print_status_text(const StatusView& v) {
  print_safe("store      {}\n", v.store_path);
  print_safe("state      {}\n", v.complete ? "complete" : "incomplete");
  const bool s3 = backend_of(v.store_path) == Backend::S3;  // rewritten in place, no staging
  const std::string staging = s3 ? "" : staging_path_for(canonical_path(v.store_path));
  if (!s3 && classify_target(staging).kind == TargetKind::Ours)
    print_safe(
        "replacing  a replacement is being built (or was left) in {}: `zarr-parallel status "
        "{}` shows it\n",
        staging, staging);
  print_safe("jobs       {} / {} done\n", v.done, v.plan.jobs.size());
  print_safe("workers    {}\n", worker_counts(v));
  // The workers still at work first; past kMaxBeatLines, a count.
  std::vector<const nlohmann::json*> shown;
  for (const char* state : {"alive", "stale", "untrusted", "dead", "finished"})
    for (const auto& b : v.beats)
      if (b["state"] == state) shown.push_back(&b);
  for (std::size_t i = 0; i < shown.size() && i < kMaxBeatLines; ++i) print_heartbeat(*shown[i]);
  if (shown.size() > kMaxBeatLines)
    print_safe("  ... and {} more (status --json lists them)\n", shown.size() - kMaxBeatLines);
  for (const auto& note : v.notes) print_safe("note       {}\n", note);
}

}  // namespace

int status_command(const std::string& store_path, bool as_json) {
  const StatusView v = status_of(store_path);
  if (as_json)
    print_status_json(v);
  else
    print_status_text(v);
  return v.complete ? 0 : 1;  // the same in both modes
}

CommandRun setup_status(CLI::App& cmd) {
  auto store = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd.add_option("STORE", *store, "cache store")->required();
  cmd.add_flag("--json", *as_json, "JSON output");
  return [store, as_json] { return status_command(*store, *as_json); };
}

}  // namespace zp
