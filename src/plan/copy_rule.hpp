// The straggler rule of speculative copies (issue 34), shared by the local executor, MPI's rank 0
// and `plan --simulate`'s model: once no job is left to start, an idle worker copies a running
// job when the job is expected to finish later than a copy of it would, and only once a few jobs
// have finished. A copy is expected to take the median seconds per weight (job_weight) of the
// finished jobs times the job's weight, so a large job is not taken for a slow one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "plan/plan.hpp"

namespace zp {

// Jobs that must have finished before any copy: 3, fewer in a run of fewer than 6 jobs (half of
// them, at least 1).
std::size_t finished_before_copies(std::size_t jobs_in_run);

// The bytes `job` reads and writes, at least 1.
double job_weight(const Job& job);

// What a running job tells of its progress: when it started, and from its last report (a
// heartbeat) the time of the report and the chunks written then out of the job's chunks.
struct JobProgress {
  double started = 0;
  double reported = 0;  // 0: no report for this job yet
  int64_t chunks_done = 0;
  int64_t chunks_total = 0;
};

// When the job is expected to finish at `now`: from its own rate (chunks done by the report's
// time) while that predicts a finish still to come; otherwise, with no usable rate, at `copy`
// (the time a copy would take) after its start while it has run less than that, and else at twice
// the time it has run so far (a job past that is taken to need about as long again).
double expected_finish(const JobProgress& job, double now, double copy);

// How much longer than a copy a job must take in all to count as a straggler: 1.5, Spark's
// speculation multiplier. On a busy machine every job is somewhat slower than the median; such a
// job is left to finish rather than have its chunks read twice for a small gain.
inline constexpr double kCopyMargin = 1.5;

// True when the job, `started` and expected to end at `expected_finish`, is a straggler (it takes
// more than kCopyMargin times the `copy` seconds a copy takes) and a copy started `now` would
// finish first.
bool copy_pays(double started, double expected_finish, double now, double copy);

}  // namespace zp
