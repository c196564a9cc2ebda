#include "plan/memory.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "core/units.hpp"
#include "plan/units.hpp"

namespace zp {

uint64_t predicted_peak(const ArrayPlan& a, int threads, bool remote) {
  uint64_t unit_chunks = 1;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    const DimUnits u = dim_units(a, d, a.per_chunk_units[d]);
    int64_t longest = 0;
    for (int64_t i = 0; i < u.count(); ++i)
      longest = std::max(longest, u.bounds[i + 1] - u.bounds[i]);
    unit_chunks *= static_cast<uint64_t>(longest);
  }
  uint64_t max_stored = 0;
  for (std::size_t i = 0; i < a.source.chunks.size(); ++i)
    max_stored = std::max(max_stored, stored_bytes(a.source, static_cast<int64_t>(i)));
  const uint64_t out = a.chunk_bytes();
  // Per thread in flight: one decoded and one stored source chunk, one encoded output chunk.
  const uint64_t per_thread = a.source.chunk_bytes() + max_stored + out + out / 16 + 64;
  const uint64_t fetched = remote ? kRemoteBatchBytes + max_stored : 0;
  return kWorkerBaseBytes + unit_chunks * out + static_cast<uint64_t>(threads) * per_thread +
         fetched;
}

// Chooses per-dimension units so the predicted peak fits; breaks the longest units first.
void fit_units(ArrayPlan& a, const PlanOptions& opt, bool remote) {
  while (predicted_peak(a, opt.threads_per_worker, remote) >
         static_cast<uint64_t>(opt.memory_limit)) {
    int best = -1;
    int64_t best_len = 1;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      if (a.per_chunk_units[d]) continue;
      const DimUnits u = dim_units(a, d, false);
      int64_t longest = 0;
      for (int64_t i = 0; i < u.count(); ++i)
        longest = std::max(longest, u.bounds[i + 1] - u.bounds[i]);
      if (longest > best_len) best = static_cast<int>(d), best_len = longest;
    }
    if (best < 0) {
      throw Error::config("memory_limit",
                          fmt::format("{} is too small for array '{}': one output chunk with {} "
                                      "needs {}; raise memory_limit or use smaller chunks",
                                      format_bytes(static_cast<double>(opt.memory_limit)), a.name,
                                      counted(opt.threads_per_worker, "thread"),
                                      format_bytes(static_cast<double>(
                                          predicted_peak(a, opt.threads_per_worker, remote)))));
    }
    a.per_chunk_units[static_cast<std::size_t>(best)] = true;
  }
}

}  // namespace zp
