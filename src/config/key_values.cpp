#include "config/key_values.hpp"

#include <filesystem>

#include "core/error.hpp"

namespace zp {

namespace fs = std::filesystem;

bool given(const KeyDocument& doc, const std::string& key) {
  return doc.contains(key) && !doc[key].is_null();
}

std::string get_string(const KeyDocument& doc, const std::string& key,
                       const std::string& fallback) {
  if (!given(doc, key)) return fallback;
  if (doc[key].is_string()) return doc[key].get<std::string>();
  if (doc[key].is_number()) return doc[key].dump();
  throw Error::config(key, "expected a string, got " + doc[key].dump());
}

bool get_bool(const KeyDocument& doc, const std::string& key, bool fallback) {
  if (!given(doc, key)) return fallback;
  if (!doc[key].is_boolean())
    throw Error::config(key, "expected true or false, got " + doc[key].dump());
  return doc[key].get<bool>();
}

int64_t get_positive_int(const KeyDocument& doc, const std::string& key, int64_t fallback,
                         int64_t max) {
  if (!given(doc, key)) return fallback;
  const KeyDocument& v = doc[key];
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) ||
      v.get<int64_t>() < 1 || v.get<int64_t>() > max)
    throw Error::config(
        key, "expected an integer from 1 to " + std::to_string(max) + ", got " + v.dump());
  return v.get<int64_t>();
}

std::string one_of(const KeyDocument& doc, const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& allowed) {
  const std::string v = get_string(doc, key, fallback);
  for (const auto& a : allowed)
    if (v == a) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw Error::config(key, "'" + v + "' is not one of: " + list);
}

std::string resolve_path(const std::string& p, const std::string& base_dir) {
  if (p.empty() || fs::path(p).is_absolute() || p.find("://") != std::string::npos) return p;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

}  // namespace zp
