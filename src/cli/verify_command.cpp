#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "cli/commands.hpp"
#include "core/console.hpp"
#include "core/error.hpp"
#include "core/plural.hpp"
#include "core/terminal_text.hpp"
#include "exec/cache_run.hpp"
#include "source/fingerprint.hpp"
#include "source/scan_cache.hpp"
#include "store/file_store.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"
#include "write/append_check.hpp"
#include "write/store_state.hpp"
#include "write/verify_store.hpp"

namespace zp {

namespace {

// The cache store as the config names it: a folder, or an S3 prefix.
std::unique_ptr<Writable> open_cache_store(const Config& cfg) {
  if (backend_of(cfg.cache_store) == Backend::S3)
    return std::make_unique<S3Writer>(cfg.cache_store, cfg.cache_options);
  if (!std::filesystem::is_directory(cfg.cache_store))
    throw Error::store(cfg.cache_store, "does not exist");
  return std::make_unique<FileStore>(cfg.cache_store);
}

// A store whose run has not finished cannot be compared: most of it is missing by design. Says so,
// and how to finish it, rather than listing every chunk not written yet as a difference.
std::optional<std::string> incomplete_store(const std::string& config_path, const Config& cfg,
                                            const StoreState& state) {
  if (state.completed_hash()) return std::nullopt;
  if (!state.started())
    return fmt::format(
        "store '{}' holds no finished zarr-parallel cache (not made by "
        "zarr-parallel, or its run never started)",
        cfg.cache_store);
  // Without a plan to go by, only the first names are looked at (a store may hold a million).
  constexpr std::size_t kMaxListed = 100000;
  bool cut = false;
  const std::size_t done = state.done_markers_listed(kMaxListed, cut);
  return fmt::format(
      "store '{}' is incomplete ({}{} done; its run was interrupted or is still going): finish it "
      "with `zarr-parallel cache {} --set resume=true` (Python: cache(..., resume=True)), then "
      "verify again",
      cfg.cache_store, cut ? "at least " : "", counted(static_cast<int64_t>(done), "job"),
      config_path);
}

}  // namespace

int verify_command(const std::string& config_path, const std::vector<std::string>& overrides) {
  try {
    const Config cfg = load_config(config_path, overrides);
    bypass_scan_cache();  // what the sources hold now, not what a cache entry says they held
    const std::unique_ptr<Writable> store = open_cache_store(cfg);
    if (const auto why = incomplete_store(config_path, cfg, StoreState(*store))) {
      say(stderr, fmt::format("zarr-parallel: could not verify: {}\n", terminal_safe(*why)));
      return 2;
    }
    Prepared p = prepare(cfg);
    adopt_store_chunks(p.plan, *store);  // coordinates keep the chunks they were first written with
    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const VerifyReport r = verify_store(p.plan, *store, threads);
    const StoreState state(*store);
    const bool complete = state.completed_hash() == cfg.content_hash();
    const auto recorded = state.sources();
    SourceAccess access(cfg.access);
    const std::string change = recorded ? first_change(fingerprints_from(*recorded), access) : "";
    // Differences and changes name source files and variables: escaped for the terminal.
    print_safe("{}: {} checked, {} different{}\n", cfg.cache_store,
               counted(static_cast<int64_t>(r.chunks_checked), "chunk"), r.chunks_different,
               complete ? "" : " (the store is the complete cache of another config)");
    if (!change.empty()) print_safe("  source: {} since the cache was made\n", change);
    for (const auto& d : r.differences) print_safe("  {}\n", d);
    return r.identical() && complete && change.empty() ? 0 : 1;
  } catch (const Error& e) {
    say(stderr, fmt::format("zarr-parallel: could not verify: {}\n", terminal_safe(e.what())));
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
