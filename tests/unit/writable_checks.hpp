// Checks of what the writer builds on a Writable, run on every backend: on a folder
// (ownership_test.cpp) and on S3 (s3_writer_test.cpp, through tests/e2e/test_s3_output.py).
#pragma once

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "store/writable.hpp"
#include "write/store_claim.hpp"
#include "write/store_lease.hpp"

namespace zp {

// `w` must be empty; `conditional`: the backend honours put-if-absent.
inline void check_claim_and_lease(const Writable& w, const Writable& foreign, bool conditional) {
  EXPECT_EQ(classify_store(w).kind, TargetKind::Absent);
  const std::string id = claim_store(w);
  EXPECT_EQ(classify_store(w).kind, TargetKind::Ours);
  EXPECT_EQ(claim_store(w), id);  // claimed once, recognised after
  foreign.put("data.bin", std::string("not ours"));
  EXPECT_EQ(classify_store(foreign).kind, TargetKind::Foreign);
  try {
    claim_store(foreign);
    ADD_FAILURE() << "a foreign prefix was claimed";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    EXPECT_NE(std::string(e.what()).find(foreign.root()), std::string::npos) << e.what();
  }
  EXPECT_EQ(*foreign.get("data.bin"), "not ours");
  EXPECT_FALSE(foreign.exists(".zarr-parallel/store.json"));

  auto lease = StoreLease::acquire(w, 60, 1000);
  if (conditional) {
    EXPECT_THROW(StoreLease::acquire(w, 60, 1010), Error);  // held: refused
  }
  lease->renew(1050);  // now until 1110
  if (conditional) {
    EXPECT_THROW(StoreLease::acquire(w, 60, 1100), Error);
  }
  auto taker = StoreLease::acquire(w, 60, 1200);  // expired: taken over
  EXPECT_THROW(lease->renew(1201), Error);        // the first holder learns it lost the store
  lease.reset();                                  // and leaves the taker's lease alone
  EXPECT_TRUE(w.exists(".zarr-parallel/lease.json"));
  taker.reset();
  EXPECT_FALSE(w.exists(".zarr-parallel/lease.json"));
}

}  // namespace zp
