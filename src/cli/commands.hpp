// Subcommands that need more than a few lines; main.cpp only parses arguments.
#pragma once

#include <string>

namespace zp {

int inspect_command(const std::string& source, const std::string& engine,
                    const std::string& concat_dim, bool json);
int status_command(const std::string& store, bool json);

}  // namespace zp
