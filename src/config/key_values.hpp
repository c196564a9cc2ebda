// One config value read as the type its key expects; errors are Error(Config) naming the key.
// Absent or null keys give `fallback`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zp {

// The YAML document as JSON, in its own key order (chunks, add_attrs keep theirs).
using KeyDocument = nlohmann::ordered_json;

bool given(const KeyDocument& doc, const std::string& key);  // present and not null
// A string; a number is taken as its text.
std::string get_string(const KeyDocument& doc, const std::string& key, const std::string& fallback);
bool get_bool(const KeyDocument& doc, const std::string& key, bool fallback);
int64_t get_positive_int(const KeyDocument& doc, const std::string& key, int64_t fallback,
                         int64_t max);
std::string one_of(const KeyDocument& doc, const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& allowed);
// Relative paths are relative to the config file's folder; URLs stay as they are.
std::string resolve_path(const std::string& p, const std::string& base_dir);

}  // namespace zp
