// deploy_mode mpi from the command line. Open MPI's libraries (seven with hwloc, libevent and udev)
// are linked only into zarr-parallel-mpi, installed beside this program, so that every other run
// starts without loading them. Each rank of `mpirun ... zarr-parallel cache CONFIG` execs it with
// the same arguments: the same process (pid, environment, mpirun's connection), now with MPI, and
// it calls MPI_Init before anything else of the run happens.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "exec/cache_run.hpp"

namespace zp {

namespace {

// zarr-parallel-mpi beside this executable ("" when /proc/self/exe cannot be read).
std::string mpi_program() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : (self.parent_path() / "zarr-parallel-mpi").string();
}

// This process's arguments as it was started (what the MPI program is given again).
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  return args;
}

}  // namespace

bool mpi_built() {
  const std::string program = mpi_program();
  return !program.empty() && ::access(program.c_str(), X_OK) == 0;
}

int run_cache_mpi(const Config&, const CacheOptions&) {
  const std::string program = mpi_program();
  if (!mpi_built())
    throw Error::config("deploy_mode", "deploy_mode mpi runs " +
                                           (program.empty() ? "zarr-parallel-mpi" : program) +
                                           ", which is not there: this zarr-parallel was "
                                           "installed without it; rebuild with libopenmpi-dev "
                                           "installed (scripts/setup.sh does) and install both");
  std::vector<std::string> args = own_arguments();
  if (args.empty())
    throw Error::internal("cannot read this process's arguments from /proc/self/cmdline");
  args[0] = program;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(program.c_str(), argv.data());
  throw Error::internal("cannot run " + program + ": " + errno_text(errno));
}

}  // namespace zp
