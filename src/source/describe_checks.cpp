#include "source/describe_checks.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace zp {

namespace {

std::string shown(const nlohmann::json& v) {
  const std::string s = v.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

}  // namespace

void check_fill_fits(const nlohmann::json& value, DType t, const std::string& where,
                     const std::string& what) {
  if (value.is_null()) return;
  std::vector<unsigned char> probe(static_cast<std::size_t>(std::max(t.size, 1)));
  try {
    store_from_json(probe.data(), 0, t, value);
  } catch (const std::exception&) {  // any kind: it is the source's value, not the user's config
    throw Error::source(where, what + " " + shown(value) + " is not a value of dtype " + t.str());
  }
}

void check_array_name(const std::string& name, const std::string& uri) {
  for (const unsigned char c : name)
    if (c < 0x20 || c == 0x7f)
      throw Error::source(uri, "array name " + shown(nlohmann::json(name)) +
                                   " has a control character; refusing to read it");
}

}  // namespace zp
