// Subcommands that need more than a few lines; main.cpp only parses arguments.
#pragma once

#include <string>
#include <vector>

namespace zp {

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
