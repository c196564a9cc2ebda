#include "core/plural.hpp"

namespace zp {

std::string noun(int64_t n, std::string_view one, std::string_view many) {
  if (n == 1) return std::string(one);
  return many.empty() ? std::string(one) + "s" : std::string(many);
}

std::string counted(int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + noun(n, one, many);
}

}  // namespace zp
