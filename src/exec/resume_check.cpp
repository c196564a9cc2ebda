#include "exec/resume_check.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "source/fingerprint.hpp"

namespace zp {

void check_resumable(const std::string& root, const Plan& plan) {
  SourceAccess access(plan.access);
  const std::string change = first_change(plan.sources, access);
  if (!change.empty())
    throw Error::source(root, change + " since the cache at " + root +
                                  " was started; it cannot be finished from two versions of the "
                                  "source: run again with resume: false to rebuild it");
}

void check_same_files(const std::string& root, const Plan& stored, const Plan& fresh) {
  std::vector<std::string> a, b;
  for (const auto& f : stored.sources) a.push_back(f.path);
  for (const auto& f : fresh.sources) b.push_back(f.path);
  if (stored.files == fresh.files && a == b) return;
  std::string first;
  for (std::size_t i = 0; first.empty() && i < std::max(a.size(), b.size()); ++i)
    if (i >= a.size() || i >= b.size() || a[i] != b[i]) first = i < a.size() ? a[i] : b[i];
  if (first.empty()) first = "its chunk files";
  throw Error::store(root,
                     "its saved plan reads other files than the source has now (first: " + first +
                         "): the source changed since the cache was started, or the plan "
                         "was edited; run again with resume: false to rebuild it");
}

}  // namespace zp
