#include "exec/object_store_workers.hpp"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat_mirror.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace fs = std::filesystem;

namespace {

// A private folder of this run (0700), removed with everything in it unless kept.
class ScratchFolder {
 public:
  ScratchFolder() {
    std::string tmpl = (fs::temp_directory_path() / "zp-run-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw Error::internal("cannot create a scratch folder in " +
                            fs::temp_directory_path().string() + ": " + errno_text(errno));
    path_ = tmpl;
  }
  ~ScratchFolder() {
    std::error_code ec;
    if (!kept_) fs::remove_all(path_, ec);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const std::string& path() const { return path_; }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  bool kept_ = false;
};

}  // namespace

void run_local_on_object_store(const StoreState& state, const Plan& plan,
                               const std::vector<int64_t>& pending, const Config& cfg,
                               const Writable& store, const std::function<void()>& check_lease) {
  ScratchFolder scratch;
  const FileStore files(scratch.path());
  // Not named .zarr-parallel/plan.json: a worker then writes where the plan says (the prefix), not
  // into the folder the file is in.
  files.put("plan.json", plan_to_json(plan).dump());
  RunContext ctx{plan, files, state, cfg.log_level, files.path_of("plan.json")};
  const StoreState scratch_state(files);
  HeartbeatMirror mirror(scratch_state, store);
  ctx.on_tick = [&] {
    check_lease();  // first: a run that lost its lease puts nothing more
    mirror.tick(now_seconds());
  };
  const SecretsChannel secrets(plan.access, fs::temp_directory_path().string());
  try {
    run_local(ctx, pending, cfg.simultaneous_worker_limit, cfg.worker_timeout);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Job) throw;
    scratch.keep();
    log_line(cfg.log_level, 1,
             "note: the workers' logs stay in " + scratch.path() + ": delete it once read");
    throw;
  }
}

}  // namespace zp
