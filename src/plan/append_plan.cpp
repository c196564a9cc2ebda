#include "plan/append_plan.hpp"

#include <algorithm>

#include "plan/units.hpp"

namespace zp {

namespace {

// Index of `dim` in `a.dims`, or -1.
int dim_index(const ArrayPlan& a, const std::string& dim) {
  const auto it = std::find(a.dims.begin(), a.dims.end(), dim);
  return it == a.dims.end() ? -1 : static_cast<int>(it - a.dims.begin());
}

// The job cut to chunks from `first` on along `d`; false when nothing of it is left.
bool cut_job(Job& job, const ArrayPlan& a, std::size_t d, int64_t first) {
  job.region.lo[d] = std::max(job.region.lo[d], first);
  if (job.region.lo[d] >= job.region.hi[d]) return false;
  job.source_chunks = source_chunks_of(a, job.region);
  job.read_bytes = 0;
  for (int64_t s : job.source_chunks) job.read_bytes += stored_bytes(a.source, s);
  job.output_bytes = static_cast<uint64_t>(job.region.num_chunks()) * a.chunk_bytes();
  return true;
}

void count_job(const Job& job, PlanSummary& s) {
  s.read_bytes += job.read_bytes;
  s.needed_bytes += job.read_bytes;
  s.output_bytes += job.output_bytes;
  s.output_chunks += job.region.num_chunks();
  s.source_chunks += static_cast<int64_t>(job.source_chunks.size());
}

}  // namespace

bool kept_whole(const Plan& plan, const ArrayPlan& a) {
  return !plan.append_dim.empty() && dim_index(a, plan.append_dim) < 0;
}

Region written_region(const Plan& plan, const ArrayPlan& a) {
  Region r;
  r.lo.assign(a.ndim(), 0);
  for (std::size_t d = 0; d < a.ndim(); ++d) r.hi.push_back(a.chunks_along(d));
  if (plan.append_dim.empty()) return r;
  const int d = dim_index(a, plan.append_dim);
  if (d < 0) {
    r.hi = r.lo;  // kept as it is
  } else {
    r.lo[static_cast<std::size_t>(d)] = std::min(a.append_from, r.hi[static_cast<std::size_t>(d)]);
  }
  return r;
}

void restrict_to_tail(Plan& plan, const std::string& dim,
                      const std::map<std::string, int64_t>& old_length) {
  plan.append_dim = dim;
  for (ArrayPlan& a : plan.arrays) {
    const int d = dim_index(a, dim);
    const auto old = old_length.find(a.name);
    a.append_from = d < 0                     ? 0
                    : old == old_length.end() ? a.chunks_along(static_cast<std::size_t>(d))
                                              : old->second / a.chunks[static_cast<std::size_t>(d)];
  }
  std::vector<Job> kept;
  PlanSummary& s = plan.summary;
  const uint64_t peak = s.peak_memory;  // the jobs are cut, never grown
  s = PlanSummary{};
  s.peak_memory = peak;
  for (Job& job : plan.jobs) {
    const ArrayPlan& a = plan.arrays[static_cast<std::size_t>(job.array)];
    const int d = dim_index(a, dim);
    if (d < 0 || !cut_job(job, a, static_cast<std::size_t>(d), a.append_from)) continue;
    job.id = static_cast<int64_t>(kept.size());
    count_job(job, s);
    kept.push_back(std::move(job));
  }
  plan.jobs = std::move(kept);
}

std::string append_fields_problem(const Plan& plan) {
  for (const ArrayPlan& a : plan.arrays) {
    if (a.append_from == 0) continue;
    const int d = dim_index(a, plan.append_dim);
    if (plan.append_dim.empty() || d < 0)
      return "'" + a.name + "' has append_from but no append dimension";
    if (a.append_from > a.chunks_along(static_cast<std::size_t>(d)))
      return "append_from of '" + a.name + "' is beyond its chunks";
  }
  return "";
}

}  // namespace zp
