// SecretsChannel: how a coordinator hands its storage secrets (keys, tokens, headers, a data_uri's
// userinfo and signed URL) to the workers of one run, never through its own environment (which
// every later child of the process, and the next run of a Python session, would inherit). The
// secrets go into an 0600 file, created with O_EXCL in a new 0700 folder; only the file's path is
// put in the environment (kSecretsFileEnv) while the channel lives, and both the file and the
// variable are gone when it ends.
#pragma once

#include <string>

#include "store/storage_options.hpp"

namespace zp {

inline constexpr const char* kSecretsFileEnv = "ZP_STORAGE_SECRETS_FILE";

class SecretsChannel {
 public:
  // Nothing is written when `access` holds no secrets. `parent`: a folder the workers can read
  // (the temporary folder for local workers, the store's side folder for SLURM).
  SecretsChannel(const AccessOptions& access, const std::string& parent);
  ~SecretsChannel();
  SecretsChannel(const SecretsChannel&) = delete;
  SecretsChannel& operator=(const SecretsChannel&) = delete;
  const std::string& path() const { return file_; }
  // Leaves the file in place (SLURM jobs submitted without waiting read it when they start); the
  // variable is still restored. The run that finishes the store does not remove it: said in the
  // log, for the user to delete.
  void keep() { kept_ = true; }

 private:
  std::string dir_, file_;
  bool had_previous_ = false;
  bool kept_ = false;
  std::string previous_;
};

// While a process holds storage secrets it writes no core file (which would hold them) and other
// processes of the user cannot attach to it: PR_SET_DUMPABLE 0 when `access` has any.
void guard_secrets(const AccessOptions& access);

// The secrets a worker was handed (the file kSecretsFileEnv names), "" when none.
std::string secrets_from_channel();

}  // namespace zp
