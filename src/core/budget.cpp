#include "core/budget.hpp"

#include "core/error.hpp"

namespace zp::budget {

int64_t checked_product(const std::vector<int64_t>& sizes, int64_t limit, const std::string& where,
                        const std::string& what) {
  int64_t n = 1;
  for (const int64_t s : sizes) {
    if (s < 0) throw Error::source(where, "a negative size (" + std::to_string(s) + ") in " + what);
    if (s == 0) return 0;
  }
  for (const int64_t s : sizes)
    if (__builtin_mul_overflow(n, s, &n) || n > limit)
      throw Error::source(where, "more than " + std::to_string(limit) + " " + what +
                                     ": the metadata is implausible; refusing to read it");
  return n;
}

}  // namespace zp::budget
