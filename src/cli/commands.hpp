// Subcommands that need more than a few lines; main.cpp only parses arguments.
#pragma once

#include <string>
#include <vector>

namespace zp {

int inspect_command(const std::string& source, const std::string& engine, const std::string& group,
                    const std::string& concat_dim, bool json);
int status_command(const std::string& store, bool json);
// Exit 0 identical, 1 different, 2 could not verify.
int verify_command(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace zp
