#include "exec/object_store_slurm.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "exec/executor.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "store/file_store.hpp"
#include "store/private_folder.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace fs = std::filesystem;

namespace {

// This store's folder under the scratch folder: ours and private (private_folder.hpp), since
// SLURM's scripts and logs, the submissions and the secrets channel go there. Named by a digest:
// the store id comes from the bucket (untrusted) and never becomes a path by itself.
std::string run_folder(const Plan& plan, const Config& cfg) {
  const fs::path base = cfg.slurm.scratch.empty() ? fs::current_path() / "zarr-parallel-slurm"
                                                  : fs::path(cfg.slurm.scratch);
  const fs::path dir = base / ("s3-" + sha256_hex(plan.store + "\n" + plan.store_id).substr(0, 16));
  try {
    return private_folder(dir.string(), "the SLURM job scripts, logs and secrets of this store");
  } catch (const Error& e) {
    throw Error::config("slurm.scratch", e.what());
  }
}

}  // namespace

bool run_slurm_on_object_store(const ObjectStoreJobs& jobs, const Config& cfg) {
  const std::string dir = run_folder(jobs.plan, cfg);
  const FileStore files(dir);
  RunContext ctx{jobs.plan, files, jobs.state, cfg.log_level, jobs.plan_url};
  ctx.plan_sha256 = jobs.plan_sha256;
  ctx.store_options = jobs.plan.access.store.public_json().dump();
  {
    // SIGINT/SIGTERM/SIGHUP as for a folder store: the tasks scancelled, the secrets removed,
    // exit 128 + the signal; installed before the secrets are written, so none outlives a signal.
    const TerminationGuard guard;
    SecretsChannel secrets(jobs.plan.access, dir);  // sbatch exports its variable to the tasks
    bool finished = false;
    try {
      finished = run_slurm(ctx, jobs.pending, cfg);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Job)
        log_line(cfg.log_level, 1, "note: the SLURM tasks' logs stay in " + dir);
      throw;
    }
    if (!finished) {
      secrets.keep();  // the submitted tasks read it when they start
      log_line(cfg.log_level, 1,
               "note: the SLURM scripts and logs stay in " + dir +
                   (secrets.path().empty() ? std::string()
                                           : ", the storage secrets in " + secrets.path() +
                                                 " (mode 0600): delete it once the tasks ran"));
      return false;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);  // the run is complete: its scripts and logs are of no more use
  return true;
}

}  // namespace zp
