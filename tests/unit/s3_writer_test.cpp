// S3Writer against a live S3 on loopback. Skipped unless tests/e2e/test_s3_output.py runs them: it
// starts s3rver (and a fault-injecting S3 stand-in in front of it) and sets
//   ZP_TEST_S3_ENDPOINT  http://127.0.0.1:PORT (the server or the stand-in)
//   ZP_TEST_S3_BUCKET    an existing bucket
//   ZP_TEST_S3_FOLDER    (BatchUploadsAStore) a local Zarr store to upload
//   ZP_TEST_S3_PREFIX    where under the bucket this test writes
// and judges what is left in the bucket (objects, aborted uploads) from the outside.
#include "store/s3_writer.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "core/error.hpp"
#include "writable_checks.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::unique_ptr<S3Writer> writer_or_skip() {
  if (env("ZP_TEST_S3_ENDPOINT").empty()) return nullptr;
  StorageOptions o;
  o.key = "S3RVER";
  o.secret = "S3RVER";
  o.endpoint_url = env("ZP_TEST_S3_ENDPOINT");
  o.region = "us-east-1";
  return std::make_unique<S3Writer>(
      "s3://" + env("ZP_TEST_S3_BUCKET") + "/" + env("ZP_TEST_S3_PREFIX"), o);
}

#define S3_WRITER_OR_SKIP(w) \
  auto w = writer_or_skip(); \
  if (!w) GTEST_SKIP() << "run by tests/e2e/test_s3_output.py (needs s3rver)"

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<unsigned char>(rng());
  return b;
}

TEST(S3Writer, PutGetListDeleteAndPutIfAbsent) {
  S3_WRITER_OR_SKIP(w);
  w->put("a/b/0.0", std::string("hello"));
  w->put("a/b/0.0", std::string("world"));
  w->put("a/c", std::string(""));
  EXPECT_EQ(*w->get("a/b/0.0"), "world");
  EXPECT_EQ(*w->get("a/c"), "");
  EXPECT_FALSE(w->get("a/b/1.0").has_value());
  EXPECT_TRUE(w->exists("a/b/0.0"));
  EXPECT_EQ(w->list("a"), (std::vector<std::string>{"b", "c"}));
  w->remove("a/b/0.0");
  w->remove("a/b/0.0");  // absent: nothing happens
  EXPECT_FALSE(w->exists("a/b/0.0"));
  EXPECT_THROW(w->put("../x", std::string("y")), Error);
  // A conditional put creates; over an existing object it is refused only where the server
  // honours If-None-Match (the stand-in does, s3rver 3.7 does not): said, never assumed.
  EXPECT_TRUE(w->put_if_absent("lease", "one"));
  const bool honoured = w->conditional_puts_honoured();
  std::cout << "conditional puts honoured: " << (honoured ? "yes" : "no") << std::endl;
  EXPECT_EQ(w->put_if_absent("lease", "two"), !honoured);
  EXPECT_EQ(*w->get("lease"), honoured ? "one" : "two");
  // A compare-and-swap on the ETag: the version read is replaced, a stale one is not (where
  // If-Match is honoured).
  const auto read = w->get_tagged("lease");
  ASSERT_TRUE(read);
  const auto next = w->put_if_match("lease", "three", read->tag);
  ASSERT_TRUE(next);
  EXPECT_EQ(*w->get("lease"), "three");
  EXPECT_EQ(w->put_if_match("lease", "four", read->tag).has_value(), !honoured);
  EXPECT_EQ(*w->get("lease"), honoured ? "three" : "four");
  EXPECT_EQ(w->put_if_match("absent", "five", next->empty() ? "\"x\"" : *next).has_value(),
            !honoured);  // nothing there: no version matches
  w->remove("absent");
  EXPECT_THROW(w->open_append("log"), Error);
}

TEST(S3Writer, BatchUploadsAStore) {
  S3_WRITER_OR_SKIP(w);
  const fs::path folder = env("ZP_TEST_S3_FOLDER");
  if (folder.empty()) GTEST_SKIP() << "no ZP_TEST_S3_FOLDER";
  auto batch = w->batch();
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(folder)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const Bytes value((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const Bytes half1(value.begin(), value.begin() + static_cast<std::ptrdiff_t>(value.size() / 2));
    const Bytes half2(value.begin() + static_cast<std::ptrdiff_t>(value.size() / 2), value.end());
    batch->put(fs::relative(e.path(), folder).generic_string(), {&half1, &half2});
    ++n;
  }
  batch->finish();
  std::cout << "uploaded " << n << " objects" << std::endl;
  EXPECT_EQ(w->list_all("").size(), n);
}

TEST(S3Writer, LargeObjectsGoAsMultipartUploads) {
  S3_WRITER_OR_SKIP(w);
  ::setenv("ZP_S3_MULTIPART_MB", "5", 1);
  const Bytes big = random_bytes((12 << 20) + 17, 1);
  w->put("big/shard", big);
  const auto back = w->get("big/shard");
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(Bytes(back->begin(), back->end()) == big);
  ::unsetenv("ZP_S3_MULTIPART_MB");
}

// Through the stand-in, which the e2e test told to fail requests: each outcome is an Error named
// by the key's location (never a crash, never a partial object) or a success after retries.
TEST(S3Writer, InjectedFaults) {
  S3_WRITER_OR_SKIP(w);
  const std::string what = env("ZP_TEST_S3_FAULT");
  if (what.empty()) GTEST_SKIP() << "no ZP_TEST_S3_FAULT";
  ::setenv("ZP_S3_MULTIPART_MB", "5", 1);
  const Bytes value = random_bytes(what == "multipart" ? (11 << 20) : 1000, 2);
  try {
    w->put("faulty/0.0", value);
    std::cout << "put: ok" << std::endl;
    const auto back = w->get("faulty/0.0");
    EXPECT_TRUE(back && Bytes(back->begin(), back->end()) == value);
  } catch (const Error& e) {
    std::cout << "put: error " << static_cast<int>(e.kind()) << ": " << e.what() << std::endl;
    EXPECT_NE(std::string(e.what()).find(w->location_of("faulty/0.0")), std::string::npos);
  }
  ::unsetenv("ZP_S3_MULTIPART_MB");
}

// Ownership and the lease on S3: run on s3rver (If-None-Match ignored: a second lease is not
// refused, which the e2e test says) and on the stand-in that honours it.
TEST(S3Writer, ClaimAndLease) {
  S3_WRITER_OR_SKIP(w);
  StorageOptions o;
  o.key = o.secret = "S3RVER";
  o.endpoint_url = env("ZP_TEST_S3_ENDPOINT");
  const S3Writer foreign("s3://" + env("ZP_TEST_S3_BUCKET") + "/foreign", o);
  check_claim_and_lease(*w, foreign, w->conditional_puts_honoured());
}

}  // namespace
}  // namespace zp
