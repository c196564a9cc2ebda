// The SLURM tasks' shared queue (exec/job_queue): one claim a job however many tasks race for it,
// and everything read back from the store checked.
#include "exec/job_queue.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.hpp"
#include "store/file_store.hpp"
#include "write/store_state.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

struct QueueFolder {
  fs::path root =
      fs::temp_directory_path() / ("zp-queue-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  QueueFolder() { fs::create_directories(root); }
  ~QueueFolder() { fs::remove_all(root); }
  fs::path claims() const { return root / JobQueue::kFolder / "claims"; }
  void write(const fs::path& p, const std::string& text) const { std::ofstream(p) << text; }
};

TEST(JobQueue, OneTaskOfManyGetsAJob) {
  QueueFolder f;
  const JobQueue q(f.root.string(), 4);
  q.write_order({3, 1, 0, 2});
  EXPECT_EQ(q.order(), (std::vector<int64_t>{3, 1, 0, 2}));
  std::atomic<int> won{0};
  std::vector<std::thread> tasks;
  for (int t = 0; t < 8; ++t)
    tasks.emplace_back([&, t] { won += q.claim(1, false, "slurm-7_" + std::to_string(t), 10); });
  for (auto& t : tasks) t.join();
  EXPECT_EQ(won, 1);
  EXPECT_TRUE(q.claim(1, true, "slurm-7_9", 12));  // its copy is a claim of its own
  EXPECT_FALSE(q.claim(1, true, "slurm-7_8", 13));
  const auto c = q.claims();
  ASSERT_EQ(c.first.size(), 1u);
  EXPECT_EQ(c.first.at(1).task.rfind("slurm-7_", 0), 0u);
  EXPECT_DOUBLE_EQ(c.first.at(1).started, 10);
  EXPECT_EQ(c.copies.at(1).task, "slurm-7_9");
  q.release(1, false);
  EXPECT_TRUE(q.claim(1, false, "slurm-8_0", 20));  // queued again
  EXPECT_EQ(q.claims().first.at(1).task, "slurm-8_0");
}

TEST(JobQueue, WhatTheStoreSaysIsChecked) {
  QueueFolder f;
  const JobQueue q(f.root.string(), 4);
  q.write_order({0});
  // A claim of another kind of name, of a job outside the plan, or temporary-looking: ignored.
  for (const char* name : {"9", "-1", "1.copy.x", ".2.tmp", "x"}) f.write(f.claims() / name, "{}");
  // A claim whose task is no worker id, or whose start is no time: the job stays held, unnamed.
  f.write(f.claims() / "0", R"({"task": "../../etc/passwd", "started": "soon"})");
  f.write(f.claims() / "1", std::string(100000, '['));
  f.write(f.claims() / "2", std::string(5000, ' ') + "{}");  // larger than a claim: none
  f.write(f.claims() / "3.copy", R"({"task": "slurm-1_2", "started": -5})");
  const auto c = q.claims();
  EXPECT_EQ(c.first.size(), 3u);
  EXPECT_EQ(c.first.at(2).task, "");
  EXPECT_EQ(c.first.at(0).task, "");
  EXPECT_EQ(c.first.at(0).started, 0);
  EXPECT_EQ(c.first.at(1).task, "");
  EXPECT_EQ(c.copies.at(3).task, "slurm-1_2");
  EXPECT_EQ(c.copies.at(3).started, 0);
  // An order naming a job outside the plan, twice, or not a number: a store error naming it.
  for (const char* bad : {"0\n4\n", "1\n1\n", "1\nx\n", "1\n\n2\n"}) {
    f.write(f.root / JobQueue::kFolder / "order.txt", bad);
    try {
      q.order();
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("order.txt"), std::string::npos) << e.what();
    }
  }
}

// A claim is named as claim() names it: "01", "-0", "00" would hold a job under a name release()
// never removes (found before as jobs 1, 0, 0).
TEST(JobQueue, OnlyAJobsOwnNameIsItsClaim) {
  QueueFolder f;
  const JobQueue q(f.root.string(), 4);
  q.write_order({0, 1});
  for (const char* name : {"01", "-0", "00", "01.copy", "+1", "1 "})
    f.write(f.claims() / name, R"({"task": "slurm-1_0", "started": 5})");
  const auto c = q.claims();
  EXPECT_TRUE(c.first.empty());
  EXPECT_TRUE(c.copies.empty());
  EXPECT_TRUE(q.claim(1, false, "slurm-2_0", 6));
  EXPECT_EQ(q.claims().first.size(), 1u);
  q.release(1, false);
  EXPECT_TRUE(q.claims().first.empty());
  f.write(f.root / JobQueue::kFolder / "order.txt", "01\n");
  EXPECT_THROW(q.order(), Error);
}

TEST(JobQueue, OnlyAJobsOwnNameIsItsDoneMarker) {
  QueueFolder f;
  const fs::path jobs = f.root / StoreState::kFolder / "jobs";
  fs::create_directories(jobs);
  for (const char* name : {"01.done", "-0.done", "00.done", "2.done", "3.done.x"})
    f.write(jobs / name, "{}");
  const FileStore store(f.root.string());
  EXPECT_EQ(done_jobs_listed(StoreState(store), 4), (std::set<int64_t>{2}));
}

TEST(JobQueue, TaskNames) {
  EXPECT_TRUE(valid_task_name("slurm-123_4"));
  EXPECT_FALSE(valid_task_name(""));
  EXPECT_FALSE(valid_task_name("../x"));
  EXPECT_FALSE(valid_task_name(".hidden"));
  EXPECT_FALSE(valid_task_name(std::string(129, 'a')));
}

}  // namespace
}  // namespace zp
