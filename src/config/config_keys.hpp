// The config file's keys, declared once: each key's type, allowed values or range, default and a
// line of documentation. parse_config reads a YAML document through this table, in the table's
// order (which is also the order errors are found in); its "unknown key" and "is not one of"
// messages come from it, a unit test checks it against the README's key table, and
// `zarr-parallel config-keys` prints it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "config/key_values.hpp"

namespace zp {

enum class KeyType {
  Text,         // a string (a number is taken as its text)
  Flag,         // true or false
  Count,        // an integer from 1 to `max`
  CountOrAuto,  // the same, or "auto": the default
  Choice,       // one of `choices`
  Size,         // bytes: 2GB, 1500MiB (core/units.hpp)
  Duration,     // seconds: MM:SS, HH:MM:SS, D-HH:MM:SS
  Structured,   // a map or list with rules of its own: its KeyReader reads it
};

using TextSetter = void (*)(Config&, std::string);
using FlagSetter = void (*)(Config&, bool);
using NumberSetter = void (*)(Config&, int64_t);
// Reads a Structured key from the whole document (some depend on keys read before them).
using KeyReader = void (*)(const KeyDocument& doc, Config& c, const std::string& base_dir);

struct ConfigKey {
  const char* name;
  KeyType type;
  const char* default_text;  // as the README's "default" column says it
  const char* doc;           // one line
  std::variant<TextSetter, FlagSetter, NumberSetter, KeyReader> set;
  std::vector<std::string> choices = {};  // Choice
  int64_t max = 0;                        // Count, CountOrAuto
};

// Every key, in the order parse_config reads them. Left out of a config, a key keeps the
// default of Config's member.
std::span<const ConfigKey> config_keys();
// The type column: "true or false", "integer 1 to 4096, or auto", "one of: auto, netcdf".
std::string key_type_text(const ConfigKey& k);
// The table as Markdown: | key | type | default | meaning |.
std::string config_keys_markdown();
// Reads a config document: unknown keys refused (the first in the document's order), then each
// key of the table.
Config read_config_keys(const KeyDocument& doc, const std::string& base_dir);

}  // namespace zp
