// Built when MPI was not found: deploy_mode mpi says how to get it.
#include "core/error.hpp"
#include "exec/cache_run.hpp"
#include "exec/executor.hpp"

namespace zp {

bool mpi_built() {
  return false;
}

int run_cache_mpi(const Config&, const CacheOptions&) {
  throw Error::config(
      "deploy_mode",
      "this zarr-parallel was built without MPI; install libopenmpi-dev (scripts/setup.sh "
      "does) and rebuild");
}

}  // namespace zp
