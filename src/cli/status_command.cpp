#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"
#include "write/store_ownership.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace {

// A worker on this host whose process is gone is lost, however recent its last beat.
bool worker_gone(const nlohmann::json& b, const std::string& host) {
  const long pid = b.value("pid", 0L);
  if (b.value("host", std::string()) != host || pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  // A zombie nobody reaped yet (its parent died too) is gone as well.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
}

std::string this_host() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// What the store's side folder says: the plan, the jobs done, the workers' heartbeats.
struct StatusView {
  std::string store_path;
  Plan plan;
  std::vector<nlohmann::json> done;
  std::vector<nlohmann::json> beats;
  nlohmann::json live = nlohmann::json::array();
  bool complete = false;
  double now = 0;
  std::string host;
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

StatusView status_of(const std::string& store_path) {
  const std::unique_ptr<Writable> store = open_status_store(store_path);
  StoreState state(*store);
  StatusView v{store_path, plan_in(*store, state)};
  v.done = state.done_jobs();
  v.beats = state.heartbeats();
  v.complete = state.completed_hash().has_value();
  v.now = now_seconds();
  v.host = this_host();
  for (const auto& b : v.beats)
    if (!b.value("finished", false) && !worker_gone(b, v.host) &&
        v.now - b.value("time", 0.0) < static_cast<double>(v.plan.worker_timeout))
      v.live.push_back(b);
  return v;
}

void print_status_json(const StatusView& v) {
  fmt::print("{}\n", nlohmann::json{{"store", v.store_path},
                                    {"complete", v.complete},
                                    {"jobs_done", v.done.size()},
                                    {"jobs_total", v.plan.jobs.size()},
                                    {"live_workers", v.live},
                                    {"heartbeats", v.beats}}
                         .dump(2));
}

void print_heartbeat(const StatusView& v, const nlohmann::json& b) {
  const double age = v.now - b.value("time", 0.0);
  fmt::print("  {:<24} pid {:<8} job {:<6} chunks {}/{}  last heartbeat {:.0f} s ago{}\n",
             b.value("worker", "?"), b.value("pid", 0),
             b.contains("job") && !b["job"].is_null() ? b["job"].dump() : "-",
             b.value("chunks_done", 0), b.value("chunks_total", 0), age,
             b.value("finished", false)
                 ? " (finished)"
                 : (worker_gone(b, v.host)
                        ? " (process gone)"
                        : (age > static_cast<double>(v.plan.worker_timeout) ? " (lost)" : "")));
}

void print_status_text(const StatusView& v) {
  fmt::print("store      {}\n", v.store_path);
  fmt::print("state      {}\n", v.complete ? "complete" : "incomplete");
  const bool s3 = backend_of(v.store_path) == Backend::S3;  // rewritten in place, no staging
  const std::string staging = s3 ? "" : staging_path_for(canonical_path(v.store_path));
  if (!s3 && classify_target(staging).kind == TargetKind::Ours)
    fmt::print(
        "replacing  a replacement is being built (or was left) in {}: `zarr-parallel status "
        "{}` shows it\n",
        staging, staging);
  fmt::print("jobs       {} / {} done\n", v.done.size(), v.plan.jobs.size());
  fmt::print("workers    {} live\n", v.live.size());
  for (const auto& b : v.beats) print_heartbeat(v, b);
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
