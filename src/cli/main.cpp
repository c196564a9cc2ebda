// zarr-parallel command line: the table of subcommands, parsing, and the one place errors become
// a message on stderr and the exit code of their kind (see README, "Exit codes").
#include <fmt/format.h>
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "cli/commands.hpp"
#include "core/console.hpp"
#include "core/error.hpp"
#include "core/terminal_text.hpp"
#include "exec/cache_run.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "source/scan_cache.hpp"
#include "source/scan_children.hpp"
#include "store/url_scope.hpp"

namespace {

// In the order --help lists them.
const zp::Subcommand kSubcommands[] = {
    {"cache", "plan and write the cache", zp::setup_cache},
    {"plan", "print the plan and recommendations; writes nothing", zp::setup_plan},
    {"inspect", "dimensions, coordinates, variables, encodings, source chunk grid",
     zp::setup_inspect},
    {"refs", "write a kerchunk reference set of NetCDF-4/HDF5 or GRIB files or a Zarr store",
     zp::setup_refs},
    {"scan-parts", "", zp::setup_scan_parts},
    {"describe-url", "", zp::setup_describe_url},
    {"scan-grib", "", zp::setup_scan_grib},
    {"worker", "run jobs of a saved plan (what executors call)", zp::setup_worker},
    {"status", "jobs done / total, live workers, heartbeats", zp::setup_status},
    {"verify", "re-read the source selection and compare it with the cache", zp::setup_verify},
    {"config-keys", "", zp::setup_config_keys},
};

// Chunk buffers (hundreds of KB to tens of MB) come from the heap and are reused. glibc's default
// maps each one fresh and unmaps it when freed: W2's 2 MB chunks spent 1.0 s of system time in
// page faults and zeroing, 0.6 s with this. Our own processes only: the Python module leaves its
// host's allocator alone.
void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

// Large NetCDF globs are scanned by children running this binary (`scan-parts`).
void find_own_executable() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) zp::set_scan_executable(self.string());
  zp::allow_forked_scanners(true);
}

int exit_code_of(const zp::Error& e) {
  if (e.kind() == zp::ErrorKind::Interrupted) return 128 + zp::termination_signal();
  return e.exit_code();
}

// Runs the parsed subcommand; errors become one line on stderr (and an `error` event).
int run_reporting_errors(const zp::CommandRun& run) {
  try {
    return run();
  } catch (const zp::Error& e) {
    // Whatever location a message quotes is shown redacted, however it reached the message.
    const std::string message = zp::redact_urls_in(e.what());
    // Messages quote what sources, stores and servers said: escaped for the terminal.
    zp::say(stderr, fmt::format("zarr-parallel: error: {}\n", zp::terminal_safe(message)));
    zp::emit_event("error", {{"message", message}, {"exit_code", exit_code_of(e)}});
    return exit_code_of(e);
  } catch (const std::system_error& e) {
    // `plan ... | head`: the reader has what it wanted. Quiet, with the status a shell gives a
    // tool that SIGPIPE ended (a cache run never gets here: its output goes through say()).
    if (e.code().value() == EPIPE) return 128 + SIGPIPE;
    zp::say(stderr, fmt::format("zarr-parallel: internal error: {}\n",
                                zp::terminal_safe(zp::redact_urls_in(e.what()))));
    return 1;
  } catch (const std::exception& e) {
    zp::say(stderr, fmt::format("zarr-parallel: internal error: {}\n",
                                zp::terminal_safe(zp::redact_urls_in(e.what()))));
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
  // A reader that goes away (`cache --json | head`) must not kill a run midway: writes to it fail
  // with EPIPE instead, and the run finishes its store with the stream silent (core/console.hpp).
  // Programs we start get the default back (run_program, local workers).
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "zarr-parallel: cache gridded archives (NetCDF/HDF5, kerchunk, Zarr) into rechunked Zarr "
      "stores, in parallel",
      // Named, not taken from argv[0]: an installed Python package runs its engine binary from
      // inside site-packages, a path --help should not show.
      "zarr-parallel"};
  app.set_version_flag("--version",
                       std::string(ZP_VERSION) + (zp::mpi_built() ? " (mpi)" : " (no mpi)"));
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, zp::CommandRun>> runs;
  for (const auto& s : kSubcommands) {
    CLI::App* cmd = app.add_subcommand(s.name, s.help);
    if (*s.help == '\0') cmd->group("");  // internal
    runs.emplace_back(cmd, s.setup(*cmd));
  }
  find_own_executable();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  for (const auto& [cmd, run] : runs) {
    if (!*cmd) continue;
    const int rc = run_reporting_errors(run);
    // What stdio still buffers goes now: a reader that left before it (`plan | head -1`) ends us
    // quietly, with SIGPIPE's status, as it would a tool that SIGPIPE ends.
    if (std::fflush(stdout) != 0 && errno == EPIPE) return rc != 0 ? rc : 128 + SIGPIPE;
    return rc;
  }
  return 0;
}
