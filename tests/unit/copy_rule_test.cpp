// The straggler rule of speculative copies (plan/copy_rule) on hand-computed cases.
#include "plan/copy_rule.hpp"

#include <gtest/gtest.h>

namespace zp {
namespace {

TEST(CopyRule, AFewJobsFinishFirst) {
  EXPECT_EQ(finished_before_copies(1), 1u);
  EXPECT_EQ(finished_before_copies(2), 1u);
  EXPECT_EQ(finished_before_copies(5), 2u);
  EXPECT_EQ(finished_before_copies(6), 3u);
  EXPECT_EQ(finished_before_copies(800), 3u);
}

TEST(CopyRule, ItsOwnRateWhileItPredictsAFinishToCome) {
  // Started at 100, 2 of 8 chunks by 104: a chunk each 2 s, all 8 by 116.
  const JobProgress p{100, 104, 2, 8};
  EXPECT_DOUBLE_EQ(expected_finish(p, 105, 3), 116);
  EXPECT_TRUE(copy_pays(100, 116, 105, 3));    // a copy would end at 108
  EXPECT_FALSE(copy_pays(100, 116, 105, 12));  // at 117
  EXPECT_FALSE(copy_pays(100, 116, 105, 11));  // 116 against 116: no gain, no copy
  // A straggler takes more than 1.5 copies in all: a job of 16 s against a copy of 12 s is not
  // one, though a copy started at 101 would end at 113, before it; against a copy of 10 s it is.
  EXPECT_FALSE(copy_pays(100, 116, 101, 12));
  EXPECT_TRUE(copy_pays(100, 116, 101, 10));
  // A count above the job's chunks (a store file says so) is taken as all of them: 104.
  EXPECT_DOUBLE_EQ(expected_finish({100, 104, 50, 8}, 103, 3), 104);
}

TEST(CopyRule, WithoutARateTheMedianDecides) {
  // No report: within the median it is expected at started + median, never worth a copy.
  EXPECT_DOUBLE_EQ(expected_finish({100, 0, 0, 8}, 102, 3), 103);
  EXPECT_FALSE(copy_pays(100, 103, 102, 3));
  // Past the median: twice its time so far, so a copy pays once it ran longer than the median.
  EXPECT_DOUBLE_EQ(expected_finish({100, 0, 0, 8}, 104, 3), 108);
  EXPECT_TRUE(copy_pays(100, 108, 104, 3));
  // A rate whose finish is past (its reports stopped: a stopped worker) counts as none.
  EXPECT_DOUBLE_EQ(expected_finish({100, 101, 4, 8}, 110, 3), 120);
  // Zero chunks done, or a report from before the start, is no rate either.
  EXPECT_DOUBLE_EQ(expected_finish({100, 104, 0, 8}, 101, 3), 103);
  EXPECT_DOUBLE_EQ(expected_finish({100, 99, 2, 8}, 101, 3), 103);
}

TEST(CopyRule, AJobWeighsTheBytesItReadsAndWrites) {
  Job j;
  j.read_bytes = 3;
  j.output_bytes = 4;
  EXPECT_DOUBLE_EQ(job_weight(j), 7);
  EXPECT_DOUBLE_EQ(job_weight(Job{}), 1);
}

TEST(CopyRule, NoMedianNoCopy) {
  EXPECT_FALSE(copy_pays(0, 1e9, 0, 0));
}

}  // namespace
}  // namespace zp
