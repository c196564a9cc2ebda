#include "write/remote_plan.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "plan/plan_json.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace {

const std::string kPlanKey = std::string(StoreState::kFolder) + "/plan.json";

}  // namespace

bool is_remote_plan(const std::string& path) {
  return backend_of(path) == Backend::S3;
}

Plan load_remote_plan(const std::string& url, const std::string& sha256,
                      const AccessOptions& handed) {
  const std::string suffix = "/" + kPlanKey;
  if (url.size() <= suffix.size() ||
      url.compare(url.size() - suffix.size(), suffix.size(), suffix) != 0)
    throw Error::config("PLAN", "'" + url + "' is not a store's plan (…/" + kPlanKey + ")");
  if (sha256.empty())
    throw Error::config("--plan-sha256",
                        "a plan on S3 is read only with the SHA-256 its coordinator handed the "
                        "worker: anyone who can write the bucket could have replaced it");
  const std::string root = url.substr(0, url.size() - suffix.size());
  const S3Writer store(root, handed.store);
  const auto text = store.get(kPlanKey);
  if (!text) throw Error::store(root, "has no saved plan " + url);
  if (sha256_hex(*text) != sha256)
    throw Error::store(root,
                       "its plan " + url +
                           " changed after the run's coordinator read it (its SHA-256 is not the "
                           "one the coordinator handed this worker): edited by someone else; "
                           "this worker runs none of it");
  Plan plan = plan_from_text(*text, url);
  plan.store = root;
  plan.access.store = handed.store;
  plan.access.store_given = true;
  return plan;
}

AccessOptions handed_store_access(const std::string& store_options_json) {
  AccessOptions access;
  if (!store_options_json.empty()) {
    const auto j = nlohmann::json::parse(store_options_json, nullptr, false);
    if (j.is_discarded()) throw Error::config("--store-options", "not JSON");
    access.store = StorageOptions::from_json(j, "--store-options");
    if (access.store.has_secrets())
      throw Error::config("--store-options",
                          "holds a secret: secrets never go on a command line (workers take "
                          "them from their environment or the run's secrets channel)");
  }
  access.store_given = true;
  access.add_secrets_from_environment();  // the coordinator's whole access, when it sent one
  return access;
}

}  // namespace zp
