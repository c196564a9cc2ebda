#include "core/json_int.hpp"

#include "core/error.hpp"

namespace zp {

int64_t json_int(const nlohmann::json& j, const std::string& what, int64_t lo, int64_t hi) {
  bool ok = j.is_number_integer();
  int64_t v = 0;
  if (ok && j.is_number_unsigned()) {
    ok = j.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
    if (ok) v = static_cast<int64_t>(j.get<uint64_t>());
  } else if (ok) {
    v = j.get<int64_t>();
  }
  if (!ok || v < lo || v > hi)
    throw Error(ErrorKind::Source,
                what + ": expected an integer" +
                    (lo == INT64_MIN ? std::string() : " >= " + std::to_string(lo)) + ", got " +
                    j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return v;
}

int64_t json_int_or(const nlohmann::json& j, const char* key, int64_t fallback,
                    const std::string& what, int64_t lo, int64_t hi) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  return json_int(j[key], what + " " + key, lo, hi);
}

std::vector<int64_t> json_int_list(const nlohmann::json& j, const std::string& what, int64_t lo) {
  if (!j.is_array()) throw Error(ErrorKind::Source, what + ": expected a list of integers");
  std::vector<int64_t> out;
  for (const auto& x : j) out.push_back(json_int(x, what, lo));
  return out;
}

}  // namespace zp
