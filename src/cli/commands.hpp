// The subcommands of the command line. Each has a set-up that declares its options on its CLI11
// app and returns what runs it; main.cpp holds the table of them, parses, and runs the one chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace zp {

// What runs a parsed subcommand: its exit code (errors are thrown as zp::Error).
using CommandRun = std::function<int()>;

struct Subcommand {
  const char* name;
  const char* help;  // "": internal (children of our own), hidden from --help
  CommandRun (*setup)(CLI::App& cmd);
};

CommandRun setup_cache(CLI::App& cmd);
CommandRun setup_plan(CLI::App& cmd);
CommandRun setup_inspect(CLI::App& cmd);
CommandRun setup_refs(CLI::App& cmd);
CommandRun setup_scan_parts(CLI::App& cmd);
CommandRun setup_describe_url(CLI::App& cmd);
CommandRun setup_scan_grib(CLI::App& cmd);
CommandRun setup_worker(CLI::App& cmd);
CommandRun setup_status(CLI::App& cmd);
CommandRun setup_verify(CLI::App& cmd);
CommandRun setup_config_keys(CLI::App& cmd);

// `storage_options`, `remote_options`: JSON texts in the config's spelling ("" = none).
int inspect_command(const std::string& source, const std::string& engine, const std::string& group,
                    const std::string& concat_dim, bool json, const std::string& storage_options,
                    const std::string& remote_protocol, const std::string& remote_options);
int status_command(const std::string& store, bool json);
// Exit 0 identical, 1 different, 2 could not verify.
int verify_command(const std::string& config_path, const std::vector<std::string>& overrides);
// Writes `svg` to `path` for `plan --svg`: Error(Store) when something there is not an earlier
// plan picture (a user's file, a link, a FIFO).
void write_plan_svg_file(const std::string& path, const std::string& svg);

}  // namespace zp
