#include "write/store_claim.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "core/plural.hpp"
#include "write/store_state.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

constexpr const char* kMarkerFormat = "zarr-parallel-store";  // as store_ownership.cpp's

std::string marker_key() {
  return std::string(StoreState::kFolder) + "/store.json";
}

std::string new_marker() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char id[33];
  snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(gen()),
           static_cast<unsigned long long>(gen()));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return json{{"format", kMarkerFormat},
              {"store_id", id},
              {"host", host},
              {"pid", getpid()},
              {"tool_version", ZP_VERSION}}
      .dump(2);
}

}  // namespace

std::optional<std::string> store_id_in(const Writable& store) {
  // A marker is ~200 bytes: a larger one is not ours (and never read whole).
  const auto text = store.get_at_most(marker_key(), uint64_t{64} << 10);
  if (!text || json_too_deep(*text)) return std::nullopt;
  const json j = json::parse(*text, nullptr, false);
  if (!j.is_object() || j.value("format", "") != kMarkerFormat || !j.contains("store_id") ||
      !j["store_id"].is_string())
    return std::nullopt;
  return j["store_id"].get<std::string>();
}

TargetState classify_store(const Writable& store) {
  if (store_id_in(store)) return {TargetKind::Ours, "", false};
  const auto names = store.list("");
  if (names.empty()) return {TargetKind::Absent, "", false};
  return {
      TargetKind::Foreign,
      "holds " +
          counted(static_cast<int64_t>(names.size()), "object or folder", "objects or folders") +
          " and no .zarr-parallel/store.json of ours",
      false};
}

std::string claim_store(const Writable& store) {
  const TargetState t = classify_store(store);
  if (t.kind == TargetKind::Foreign)
    throw Error::store(store.root(), t.why +
                                         "; zarr-parallel writes only into stores it created "
                                         "(choose another cache_store)");
  if (t.kind == TargetKind::Absent) store.put_if_absent(marker_key(), new_marker());
  const auto id = store_id_in(store);  // ours, or the run's that created it this instant
  if (!id) throw Error::store(store.root(), "its marker .zarr-parallel/store.json is not ours");
  return *id;
}

}  // namespace zp
