// The progress line fits any terminal width; progress counts chunks of running jobs, so bytes and
// the ETA move within a job (before, they moved only when a whole job ended).
#include "exec/progress.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "exec/progress_line.hpp"

namespace zp {
namespace {

TEST(ProgressLine, FitsEveryWidth) {
  const ProgressView v{3, 12, 0.47, 12.3e6, 4, 55.0};
  for (int cols = 1; cols <= 200; ++cols) {
    const std::string line = progress_line(v, cols);
    EXPECT_LE(static_cast<int>(line.size()), std::max(cols - 1, 1)) << cols << ": " << line;
    EXPECT_FALSE(line.empty());
  }
  EXPECT_NE(progress_line(v, 120).find("3/12 jobs"), std::string::npos);
  EXPECT_NE(progress_line(v, 120).find("ETA 55 s"), std::string::npos);
  EXPECT_EQ(progress_line(v, 120).front(), '[');                   // a bar where there is room
  EXPECT_NE(progress_line(v, 30).find("ETA"), std::string::npos);  // the ETA stays longest
}

TEST(ProgressLine, Durations) {
  EXPECT_EQ(format_duration(55.4), "55 s");
  EXPECT_EQ(format_duration(185), "3 min 05 s");
  EXPECT_EQ(format_duration(7650), "2 h 07 min");
}

TEST(Progress, RunningJobsMoveBytesChunksAndEta) {
  set_json_events(true);
  testing::internal::CaptureStdout();
  {
    Progress p(2, 0);
    p.set_job_chunks({{0, 10}, {1, 10}});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.job_progress(0, 5, 1000, 2000);  // a quarter of the chunks, no job done yet
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.job_progress(0, 5, 1000, 2000);  // no further: the estimate counts down, never climbs
  }
  set_json_events(false);
  std::istringstream out(testing::internal::GetCapturedStdout());
  std::vector<nlohmann::json> events;
  for (std::string line; std::getline(out, line);)
    if (const auto j = nlohmann::json::parse(line); j["event"] == "progress") events.push_back(j);
  // The first record at once (nothing written yet), then one a second.
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["chunks_done"], 0);
  EXPECT_LT(events[0]["elapsed_s"].get<double>(), 0.5);
  EXPECT_FALSE(events[0].contains("eta_s"));
  events.erase(events.begin());
  const nlohmann::json& last = events[0];
  EXPECT_EQ(last["jobs_done"], 0);
  EXPECT_EQ(last["chunks_done"], 5);
  EXPECT_EQ(last["chunks_total"], 20);
  EXPECT_EQ(last["bytes_read"], 2000);
  EXPECT_EQ(last["bytes_written"], 1000);
  // A quarter done after elapsed seconds: three times as long again.
  EXPECT_NEAR(last["eta_s"].get<double>(), 3 * last["elapsed_s"].get<double>(), 1e-6);
  const double waited = events[1]["elapsed_s"].get<double>() - last["elapsed_s"].get<double>();
  EXPECT_NEAR(events[1]["eta_s"].get<double>(), last["eta_s"].get<double>() - waited, 1e-6);
}

// A finished job is reported at once, not with the next tick a second later.
TEST(Progress, AFinishedJobIsReportedAtOnce) {
  set_json_events(true);
  testing::internal::CaptureStdout();
  {
    Progress p(2, 0);
    p.set_job_chunks({{0, 10}, {1, 10}});
    p.job_progress(0, 5, 1000, 2000);  // within the second: no record
    p.job_finished(0, 0.01);
    p.update(1, 2000, 1, 4000);
  }
  set_json_events(false);
  std::istringstream out(testing::internal::GetCapturedStdout());
  std::vector<std::string> names;
  nlohmann::json after_job;
  for (std::string line; std::getline(out, line);) {
    const auto j = nlohmann::json::parse(line);
    names.push_back(j["event"]);
    if (names.size() >= 2 && names[names.size() - 2] == "job_done") after_job = j;
  }
  ASSERT_EQ(names, (std::vector<std::string>{"start", "progress", "job_done", "progress"}));
  EXPECT_EQ(after_job["jobs_done"], 1);
  EXPECT_EQ(after_job["chunks_done"], 10);
  EXPECT_EQ(after_job["bytes_written"], 2000);
}

}  // namespace
}  // namespace zp
