#include "exec/slurm_jobs.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <sstream>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "exec/run_program.hpp"

namespace zp {

namespace {

// "4-7,9" (an array's pending tasks, "%2" cut off) into `out`; false when it is not that.
bool add_ranges(const std::string& ranges, std::set<int64_t>& out) {
  std::istringstream parts(ranges);
  for (std::string part; std::getline(parts, part, ',');) {
    const auto dash = part.find('-');
    try {
      const int64_t a = std::stoll(part.substr(0, dash));
      const int64_t b = dash == std::string::npos ? a : std::stoll(part.substr(dash + 1));
      if (a < 0 || b < a || b - a > 1000000) return false;  // squeue's text: bounded
      for (int64_t i = a; i <= b; ++i) out.insert(i);
    } catch (const std::exception&) {
      return false;
    }
  }
  return true;
}

// The task indices of squeue's "ID_3" or "ID_[4-7%2]" (the part after "ID_").
bool add_tasks(const std::string& idx, std::set<int64_t>& out) {
  if (idx.empty()) return false;
  if (idx.front() != '[') return add_ranges(idx, out);
  return add_ranges(idx.substr(1, idx.find_first_of("%]") - 1), out);
}

bool active_state(const std::string& state) {
  static const std::set<std::string> kActive = {
      "PENDING",  "RUNNING",   "CONFIGURING", "COMPLETING",   "SUSPENDED",  "REQUEUED",
      "RESIZING", "SIGNALING", "STAGE_OUT",   "REQUEUE_HOLD", "REQUEUE_FED"};
  return kActive.count(state) > 0;
}

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  return a == std::string::npos ? std::string() : s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

}  // namespace

SlurmIdentity slurm_identity(const RunContext& ctx) {
  const std::string digest = sha256_hex(ctx.plan.store_id + "\n" + handed_digest(ctx));
  return {std::to_string(::geteuid()), "zarr-parallel-" + digest.substr(0, 16)};
}

SlurmTasks slurm_tasks(const std::string& id, const SlurmIdentity& me) {
  const std::vector<std::string> argv = {"squeue", "-h",  "-r", "-j",         id,
                                         "-t",     "all", "-o", "%i %T %U %j"};
  const ProgramResult r = run_program(argv);
  SlurmTasks out;
  if (r.status != 0) {
    if (r.out.find("Invalid job id") != std::string::npos) return out;  // purged: nothing active
    throw Error(ErrorKind::Job, "'" + command_text(argv) + "' failed: " + r.out);
  }
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string task, state, uid, name;
    if (!(words >> task >> state >> uid)) continue;
    std::getline(words, name);
    name = trimmed(name);
    const auto us = task.find('_');
    if (us == std::string::npos || task.substr(0, us) != id) continue;  // another job's line
    if (uid != me.uid || name != me.name) {
      if (out.foreign.empty())
        out.foreign = fmt::format("uid {}, job name '{}'", uid.substr(0, 20), name.substr(0, 80));
      continue;
    }
    if (active_state(state)) add_tasks(task.substr(us + 1), out.active);
  }
  return out;
}

void scancel_ours(const std::string& target, const SlurmIdentity& me) {
  run_program({"scancel", "--user=" + me.uid, "--name=" + me.name, target});
}

}  // namespace zp
