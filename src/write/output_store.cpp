#include "write/output_store.hpp"

#include "store/file_store.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"

namespace zp {

std::unique_ptr<Writable> open_output_store(const Plan& plan) {
  if (backend_of(plan.store) != Backend::S3) return std::make_unique<FileStore>(plan.store);
  AccessOptions access = plan.access;
  access.add_secrets_from_environment();  // the coordinator's options and secrets, if it sent any
  return std::make_unique<S3Writer>(plan.store, access.store);
}

}  // namespace zp
