// `config-keys` (internal): the config key table as Markdown, from the table parsing uses
// (config/config_keys.hpp), for whoever writes the README's table.
#include <fmt/format.h>

#include "cli/commands.hpp"
#include "config/config_keys.hpp"

namespace zp {

CommandRun setup_config_keys(CLI::App&) {
  return [] {
    fmt::print("{}", config_keys_markdown());
    return 0;
  };
}

}  // namespace zp
