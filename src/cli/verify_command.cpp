#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "exec/cache_run.hpp"
#include "source/fingerprint.hpp"
#include "source/scan_cache.hpp"
#include "write/store_state.hpp"
#include "write/verify_store.hpp"

namespace zp {

int verify_command(const std::string& config_path, const std::vector<std::string>& overrides) {
  try {
    const Config cfg = load_config(config_path, overrides);
    bypass_scan_cache();  // what the sources hold now, not what a cache entry says they held
    if (!std::filesystem::is_directory(cfg.cache_store))
      throw Error::store(cfg.cache_store, "does not exist");
    const Prepared p = prepare(cfg);
    FileStore store(cfg.cache_store);
    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const VerifyReport r = verify_store(p.plan, store, threads);
    const StoreState state(store);
    const bool complete = state.completed_hash() == cfg.content_hash();
    const auto recorded = state.sources();
    SourceAccess access(cfg.access);
    const std::string change = recorded ? first_change(fingerprints_from(*recorded), access) : "";
    fmt::print("{}: {} chunks checked, {} different{}\n", cfg.cache_store, r.chunks_checked,
               r.chunks_different, complete ? "" : " (store not marked complete for this config)");
    if (!change.empty()) fmt::print("  source: {} since the cache was made\n", change);
    for (const auto& d : r.differences) fmt::print("  {}\n", d);
    return r.identical() && complete && change.empty() ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "zarr-parallel: could not verify: {}\n", e.what());
    return 2;
  }
}

CommandRun setup_verify(CLI::App& cmd) {
  auto config_path = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  cmd.add_option("CONFIG", *config_path, "YAML config")->required();
  cmd.add_option("--set", *sets, "override a config key: KEY=VALUE");
  return [config_path, sets] { return verify_command(*config_path, *sets); };
}

}  // namespace zp
