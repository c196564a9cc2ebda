// `plan --simulate`'s list-scheduling model on cases small enough to compute by hand.
#include "plan/simulate.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace zp {
namespace {

// A uniform() that returns `values` in turn, then 0.99 (no failure) forever.
std::function<double()> sequence(std::vector<double> values) {
  auto i = std::make_shared<std::size_t>(0);
  return [values, i] { return *i < values.size() ? values[(*i)++] : 0.99; };
}

SimulationModel no_startup() {
  SimulationModel m;
  m.startup_seconds = 0;
  return m;
}

TEST(Simulate, ParsesTheSpec) {
  const SimulateSpec s = parse_simulate_spec("100,slow=5%x3,fail=1%");
  EXPECT_EQ(s.workers, 100);
  EXPECT_DOUBLE_EQ(s.slow_fraction, 0.05);
  EXPECT_DOUBLE_EQ(s.slow_factor, 3);
  EXPECT_DOUBLE_EQ(s.fail_fraction, 0.01);
  const SimulateSpec plain = parse_simulate_spec("7");
  EXPECT_EQ(plain.workers, 7);
  EXPECT_EQ(plain.slow_fraction, 0);
  EXPECT_EQ(plain.fail_fraction, 0);
}

TEST(Simulate, RefusesBadSpecsNamingTheOption) {
  for (const char* bad : {"", "0", "2.5", "abc", "100,slow=5%", "100,slow=5%x0.5", "100,fail=60%",
                          "100,foo=1", "100,", "-3", "2000000"}) {
    try {
      parse_simulate_spec(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config) << bad;
      EXPECT_NE(std::string(e.what()).find("--simulate"), std::string::npos) << e.what();
    }
  }
}

TEST(Simulate, ListSchedulingHandsJobsOutInOrder) {
  // 3 s, 1 s, 1 s on two workers: worker 0 takes the 3 s job, worker 1 the two others.
  EXPECT_DOUBLE_EQ(simulate_makespan({3, 1, 1}, {1, 1}, 0, false, no_startup(), sequence({})), 3);
  // Four 1.05 s jobs on two workers: two rounds.
  EXPECT_DOUBLE_EQ(
      simulate_makespan({1.05, 1.05, 1.05, 1.05}, {1, 1}, 0, true, no_startup(), sequence({})),
      2.1);
}

TEST(Simulate, ACopyOfTheStragglerFinishesFirst) {
  // Job 1 runs on a 4x slower worker: 40 s. Job 0 ends at 10 s, the median of one finished job
  // (enough in a run of 2): job 1 is expected at 40 s, a copy at 10 + 10 = 20 s, so worker 0
  // copies it at once; the copy ends at 20 s and the slow one stops.
  EXPECT_DOUBLE_EQ(simulate_makespan({10, 10}, {1, 4}, 0, false, no_startup(), sequence({})), 40);
  EXPECT_DOUBLE_EQ(simulate_makespan({10, 10}, {1, 4}, 0, true, no_startup(), sequence({})), 20);
  // 1.5x slower: expected at 15 s, before a copy's 20 s: no copy.
  EXPECT_DOUBLE_EQ(simulate_makespan({10, 10}, {1, 1.5}, 0, true, no_startup(), sequence({})), 15);
  // Three 10 s jobs on a fast and a 4x slower worker: no copy while a job is left to start, so
  // the fast one runs jobs 0 and 2 (ends 20 s); then a copy of job 1 (ends 30 s) beats 40 s.
  EXPECT_DOUBLE_EQ(simulate_makespan({10, 10, 10}, {1, 4}, 0, true, no_startup(), sequence({})),
                   30);
}

TEST(Simulate, AFailedAttemptIsRetriedFromItsStart) {
  // Fails (0.1 < 0.5) at half its 10 s, then runs again whole: 5 + 10.
  EXPECT_DOUBLE_EQ(simulate_makespan({10}, {1}, 0.5, false, no_startup(), sequence({0.1, 0.5})),
                   15);
  // Job 0 ok (ends 10), job 1 ok on the slow worker (ends 40); the copy started at 10 fails at
  // 15. A job gets one copy only and is not retried while its first attempt runs: 40.
  EXPECT_DOUBLE_EQ(
      simulate_makespan({10, 10}, {1, 4}, 0.5, true, no_startup(), sequence({0.9, 0.9, 0.1, 0.5})),
      40);
}

Plan plan_of(const std::vector<uint64_t>& read_bytes) {
  Plan p;
  for (const uint64_t b : read_bytes) {
    Job j;
    j.id = static_cast<int64_t>(p.jobs.size());
    j.read_bytes = b;
    p.jobs.push_back(j);
  }
  return p;
}

TEST(Simulate, PlanRatioCountsStartupAgainstTheIdeal) {
  // 4 x 100 MB at 100 MB/s plus 50 ms each, on 2 workers: 2.1 s against an ideal of 2 s.
  const SimulationResult r = simulate_plan(
      plan_of({100'000'000, 100'000'000, 100'000'000, 100'000'000}), parse_simulate_spec("2"));
  EXPECT_DOUBLE_EQ(r.ideal_seconds, 2.0);
  EXPECT_DOUBLE_EQ(r.makespan_seconds, 2.1);
  EXPECT_DOUBLE_EQ(r.ratio, 1.05);
  EXPECT_DOUBLE_EQ(r.ratio_without_copies, 1.05);
  EXPECT_EQ(r.jobs, 4);
}

TEST(Simulate, PlanWithASlowNodeOnEverySeed) {
  // Two 1 GB jobs (10.05 s), one of two workers 4x slower whichever the seed picks: 40.2 s
  // without copies; with them, the copy starts when the first job ends, 10.05 s, and ends at
  // 20.1 s. Ideal: 10 s.
  const SimulationResult r =
      simulate_plan(plan_of({1'000'000'000, 1'000'000'000}), parse_simulate_spec("2,slow=50%x4"));
  EXPECT_EQ(r.slow_workers, 1);
  EXPECT_NEAR(r.ratio_without_copies, 4.02, 1e-9);
  EXPECT_NEAR(r.ratio, 2.01, 1e-9);
}

TEST(Simulate, SeededAndFailuresOnlyCost) {
  std::vector<uint64_t> jobs(400, 290'000'000);
  const Plan p = plan_of(jobs);
  const SimulationResult clean = simulate_plan(p, parse_simulate_spec("100"));
  const SimulationResult a = simulate_plan(p, parse_simulate_spec("100,slow=5%x3,fail=1%"));
  const SimulationResult b = simulate_plan(p, parse_simulate_spec("100,slow=5%x3,fail=1%"));
  EXPECT_EQ(a.makespan_seconds, b.makespan_seconds);
  EXPECT_EQ(a.slow_workers, 5);
  EXPECT_GT(a.ratio_without_copies, clean.ratio_without_copies);
  EXPECT_LE(a.ratio, a.ratio_without_copies);
  // Whole rounds of equal jobs: 4 x 2.95 s against 4 x 2.9 s.
  EXPECT_NEAR(clean.ratio, 2.95 / 2.9, 1e-9);
}

}  // namespace
}  // namespace zp
