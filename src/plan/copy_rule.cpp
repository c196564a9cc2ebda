#include "plan/copy_rule.hpp"

#include <algorithm>

namespace zp {

double job_weight(const Job& job) {
  return std::max(1.0, static_cast<double>(job.read_bytes) + static_cast<double>(job.output_bytes));
}

std::size_t finished_before_copies(std::size_t jobs_in_run) {
  return std::clamp<std::size_t>(jobs_in_run / 2, 1, 3);
}

double expected_finish(const JobProgress& job, double now, double copy) {
  // A report's numbers come from a store file: only a rate that makes sense is used.
  const int64_t done = std::min(job.chunks_done, job.chunks_total);
  if (done > 0 && job.reported > job.started) {
    const double by_rate = job.started + (job.reported - job.started) *
                                             static_cast<double>(job.chunks_total) /
                                             static_cast<double>(done);
    if (by_rate > now) return by_rate;
  }
  const double ran = std::max(0.0, now - job.started);
  return ran < copy ? job.started + copy : job.started + 2 * ran;
}

bool copy_pays(double started, double expected_finish, double now, double copy) {
  return copy > 0 && expected_finish > now + copy && expected_finish - started > kCopyMargin * copy;
}

}  // namespace zp
