#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "write/store_ownership.hpp"
#include "write/store_state.hpp"

namespace zp {

int status_command(const std::string& store_path, bool as_json) {
  if (!std::filesystem::exists(std::filesystem::path(store_path) / StoreState::kFolder))
    throw Error::store(store_path,
                       "no zarr-parallel state here (not made by zarr-parallel, or never started)");
  FileStore store(store_path);
  StoreState state(store);
  const Plan plan = load_store_plan(state.plan_path());
  const auto done = state.done_jobs();
  const auto beats = state.heartbeats();
  const auto complete = state.completed_hash();
  const double now = now_seconds();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  // A worker on this host whose process is gone is lost, however recent its last beat.
  auto gone = [&](const nlohmann::json& b) {
    const long pid = b.value("pid", 0L);
    if (b.value("host", std::string()) != host || pid <= 0) return false;
    if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
    // A zombie nobody reaped yet (its parent died too) is gone as well.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'Z';
  };
  nlohmann::json live = nlohmann::json::array();
  for (const auto& b : beats)
    if (!b.value("finished", false) && !gone(b) &&
        now - b.value("time", 0.0) < static_cast<double>(plan.worker_timeout))
      live.push_back(b);
  if (as_json) {
    fmt::print("{}\n", nlohmann::json{{"store", store_path},
                                      {"complete", complete.has_value()},
                                      {"jobs_done", done.size()},
                                      {"jobs_total", plan.jobs.size()},
                                      {"live_workers", live},
                                      {"heartbeats", beats}}
                           .dump(2));
    return complete ? 0 : 1;  // as in text mode
  }
  fmt::print("store      {}\n", store_path);
  fmt::print("state      {}\n", complete ? "complete" : "incomplete");
  const std::string staging = staging_path_for(canonical_path(store_path));
  if (classify_target(staging).kind == TargetKind::Ours)
    fmt::print(
        "replacing  a replacement is being built (or was left) in {}: `zarr-parallel status "
        "{}` shows it\n",
        staging, staging);
  fmt::print("jobs       {} / {} done\n", done.size(), plan.jobs.size());
  fmt::print("workers    {} live\n", live.size());
  for (const auto& b : beats) {
    const double age = now - b.value("time", 0.0);
    fmt::print("  {:<24} pid {:<8} job {:<6} chunks {}/{}  last heartbeat {:.0f} s ago{}\n",
               b.value("worker", "?"), b.value("pid", 0),
               b.contains("job") && !b["job"].is_null() ? b["job"].dump() : "-",
               b.value("chunks_done", 0), b.value("chunks_total", 0), age,
               b.value("finished", false)
                   ? " (finished)"
                   : (gone(b) ? " (process gone)"
                              : (age > static_cast<double>(plan.worker_timeout) ? " (lost)" : "")));
  }
  return complete ? 0 : 1;
}

}  // namespace zp
