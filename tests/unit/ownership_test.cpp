// Store ownership, the path lock, JSON depth and source fingerprints: the pieces that decide what
// zarr-parallel may touch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>

#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "plan/plan_json.hpp"
#include "plan/planner.hpp"
#include "source/fingerprint.hpp"
#include "store/file_store.hpp"
#include "store/path_lock.hpp"
#include "test_dataset.hpp"
#include "writable_checks.hpp"
#include "write/job_runner.hpp"
#include "write/output_format.hpp"
#include "write/store_inventory.hpp"
#include "write/store_ownership.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("zp_own_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(Ownership, ClassifiesWhatIsAtThePath) {
  TempDir t;
  EXPECT_EQ(classify_target((t.path / "none").string()).kind, TargetKind::Absent);
  fs::create_directory(t.path / "empty");
  EXPECT_EQ(classify_target((t.path / "empty").string()).kind, TargetKind::Empty);
  write(t.path / "user" / "notes.txt", "mine");
  EXPECT_EQ(classify_target((t.path / "user").string()).kind, TargetKind::Foreign);
  write(t.path / "file", "x");
  EXPECT_EQ(classify_target((t.path / "file").string()).kind, TargetKind::Foreign);
  fs::create_directory_symlink(t.path / "empty", t.path / "link");
  EXPECT_EQ(classify_target((t.path / "link").string()).kind, TargetKind::Foreign);
  // A side folder without the marker: not provably ours (but maybe being created right now).
  fs::create_directories(t.path / "half" / ".zarr-parallel");
  const TargetState half = classify_target((t.path / "half").string());
  EXPECT_EQ(half.kind, TargetKind::Foreign);
  EXPECT_TRUE(half.being_created);
  write(t.path / "half" / "data", "x");
  EXPECT_FALSE(classify_target((t.path / "half").string()).being_created);
  const std::string id = create_store((t.path / "ours").string());
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(classify_target((t.path / "ours").string()).kind, TargetKind::Ours);
  EXPECT_EQ(store_id_of((t.path / "ours").string()), id);
  EXPECT_NE(create_store((t.path / "empty").string()), id);  // an empty folder is claimed
  EXPECT_THROW(create_store((t.path / "user").string()), Error);
}

TEST(Ownership, NeverDeletesWhatIsNotOurs) {
  TempDir t;
  write(t.path / "user" / "notes.txt", "mine");
  EXPECT_THROW(remove_our_store((t.path / "user").string()), Error);
  EXPECT_TRUE(fs::exists(t.path / "user" / "notes.txt"));
  create_store((t.path / "ours").string());
  remove_our_store((t.path / "ours").string());
  EXPECT_FALSE(fs::exists(t.path / "ours"));
}

TEST(Ownership, RefusesAnyOverlapWithTheSources) {
  TempDir t;
  write(t.path / "data" / "a.nc", "x");
  const std::vector<std::string> src = {(t.path / "data" / "a.nc").string(),
                                        (t.path / "src.zarr").string()};
  EXPECT_THROW(check_not_source((t.path / "data").string(), src), Error);      // contains
  EXPECT_THROW(check_not_source((t.path / "src.zarr").string(), src), Error);  // is
  EXPECT_THROW(check_not_source((t.path / "src.zarr" / "c.zarr").string(), src), Error);  // inside
  EXPECT_THROW(check_not_source(t.path.string() + "/data/../data", src), Error);  // spelled apart
  EXPECT_NO_THROW(check_not_source((t.path / "data" / "cache.zarr").string(), src));  // beside
  EXPECT_NO_THROW(check_not_source((t.path / "src.zarr2").string(), src));  // a prefix, not inside
}

TEST(Ownership, SwapReplacesOnlyOurStoreAndKeepsItUntilThen) {
  TempDir t;
  const std::string target = (t.path / "s.zarr").string();
  const std::string staging = staging_path_for(target);
  EXPECT_EQ(fs::path(staging).filename(), ".s.zarr.zp-new");
  const std::string old_id = create_store(target);
  write(fs::path(target) / ".zarr-parallel" / "old", "old");
  const std::string new_id = create_store(staging);
  write(fs::path(staging) / ".zarr-parallel" / "new", "new");
  swap_in(staging, target);
  EXPECT_EQ(store_id_of(target), new_id);
  EXPECT_TRUE(fs::exists(fs::path(target) / ".zarr-parallel" / "new"));
  EXPECT_FALSE(fs::exists(staging));
  // Something not ours appeared at the target meanwhile: the new store stays staged.
  create_store(staging);
  fs::remove_all(target);
  write(fs::path(target) / "someone", "else");
  EXPECT_THROW(swap_in(staging, target), Error);
  EXPECT_TRUE(fs::exists(fs::path(target) / "someone"));
  EXPECT_TRUE(store_id_of(staging).has_value());
  (void)old_id;
}

// A store of ours as the tool writes it: plan, metadata and every chunk key of a 10 x 6 array in
// (5, 3) chunks.
Plan write_planned_store(const std::string& root) {
  const Dataset ds = testing::make_dataset({10, 6}, {5, 3});
  Config cfg;
  cfg.chunks_auto = false;
  cfg.chunks = {{"d0", 5}, {"d1", 3}};
  cfg.compressor = nullptr;
  Plan p;
  p.arrays = build_arrays(ds, apply_preprocessors(ds, testing::index_coordinates(ds), {}), cfg);
  p.files =
      ds.files.empty() ? std::vector<std::string>{"source.nc"} : ds.files;  // refs name file 0
  plan_jobs(p, PlanOptions{});
  create_store(root);
  const FileStore store(root);
  store.put(".zarr-parallel/plan.json", plan_to_json(p).dump());
  write_metadata(p, store);
  write_consolidated(p, store);
  for (const auto& chunk : chunks_in(Region{{0, 0}, {2, 2}}))
    for (const auto& key : chunk_keys(p.arrays[0], chunk, output_format(2))) store.put(key, "c");
  return p;
}

TEST(Ownership, OurStoreIsWhatItsPlanWrote) {
  TempDir t;
  const std::string root = (t.path / "s.zarr").string();
  write_planned_store(root);
  write(fs::path(root) / ".zarr-parallel" / "logs" / "job-0.log", "ours");
  write(fs::path(root) / "x" / "1.1.zptmp.77.0", "a killed writer's temporary: ours");
  EXPECT_EQ(entries_not_ours(root).count, 0);
  EXPECT_TRUE(fs::exists(fs::path(root) / "x" / "1.1"));

  // What users add: a variable (xarray's to_zarr mode="a"), a step appended past the grid, a note
  // beside a chunk, a link to their data.
  write(fs::path(root) / "extra" / ".zarray", "{}");
  write(fs::path(root) / "extra" / "0.0", "theirs");
  write(fs::path(root) / "x" / "2.0", "theirs");
  write(fs::path(root) / "x" / "0.0.bak", "theirs");
  fs::create_directory(t.path / "data");
  fs::create_directory_symlink(t.path / "data", fs::path(root) / "link");
  const ForeignEntries f = entries_not_ours(root, 10);
  EXPECT_EQ(f.count, 4);  // the folder counts once
  const std::set<std::string> seen(f.examples.begin(), f.examples.end());
  EXPECT_EQ(seen, (std::set<std::string>{"extra/", "x/2.0", "x/0.0.bak", "link"}));
  EXPECT_EQ(entries_not_ours(root, 1).describe(),
            "'" + entries_not_ours(root, 1).examples[0] + "' and 3 more");
  try {
    remove_our_store(root);
    FAIL() << "deleted a store holding the user's files";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    EXPECT_NE(std::string(e.what()).find("did not write"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(fs::path(root) / "extra" / "0.0"));
  EXPECT_TRUE(fs::exists(t.path / "data"));

  // An unreadable plan: what is ours is unknown, so nothing is deleted.
  write(fs::path(root) / ".zarr-parallel" / "plan.json", "{");
  EXPECT_THROW(entries_not_ours(root), Error);
}

TEST(Ownership, OnlyOurTemporariesAreCleanedUp) {
  TempDir t;
  const std::string root = (t.path / "s.zarr").string();
  const Plan plan = write_planned_store(root);
  const fs::path r(root);
  write(r / "x" / "1.1.zptmp.77.0", "a killed writer's chunk");
  write(r / ".zarr-parallel" / "jobs" / "0.done.zptmp.5.0", "a killed writer's marker");
  write(r / "extra" / "0.0.zptmp.1.2", "the user's, in the user's folder");
  write(r / "x" / "notes.zptmp.txt", "the user's, named like a temporary of no key of ours");
  remove_stale_temporaries(root, plan);
  EXPECT_FALSE(fs::exists(r / "x" / "1.1.zptmp.77.0"));
  EXPECT_FALSE(fs::exists(r / ".zarr-parallel" / "jobs" / "0.done.zptmp.5.0"));
  EXPECT_TRUE(fs::exists(r / "extra" / "0.0.zptmp.1.2"));
  EXPECT_TRUE(fs::exists(r / "x" / "notes.zptmp.txt"));
  EXPECT_TRUE(fs::exists(r / "x" / "1.1"));
  EXPECT_TRUE(fs::exists(r / ".zarr-parallel" / "plan.json"));
}

TEST(Ownership, SwapKeepsAnOldStoreHoldingTheUsersFiles) {
  TempDir t;
  const std::string target = (t.path / "s.zarr").string();
  const std::string staging = staging_path_for(target);
  create_store(target);
  write(fs::path(target) / "notes.txt", "written into the cache while it was rebuilt");
  const std::string new_id = create_store(staging);
  try {
    swap_in(staging, target);
    FAIL() << "swap deleted the user's file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("complete and in place"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store_id_of(target), new_id);
  EXPECT_TRUE(fs::exists(fs::path(staging) / "notes.txt"));
}

TEST(PathLock, OneHolderAtATimeAndReleasedOnDestruction) {
  TempDir t;
  const std::string target = (t.path / "l.zarr").string();
  {
    auto lock = PathLock::acquire(target);
    EXPECT_TRUE(fs::exists(lock->lock_file()));
    try {
      PathLock::acquire(target);  // another open file description: refused, even in this process
      FAIL() << "second lock taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(getpid())), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(PathLock::holder(target)->value("pid", 0L), static_cast<long>(getpid()));
  }
  EXPECT_FALSE(fs::exists(PathLock::lock_file_for(target)));
  EXPECT_NO_THROW(PathLock::acquire(target));
  // A file at the lock's name that is not ours is left alone.
  write(PathLock::lock_file_for(target), "my shopping list");
  EXPECT_THROW(PathLock::acquire(target), Error);
  std::ifstream in(PathLock::lock_file_for(target));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "my shopping list");
}

TEST(JsonLimits, CountsNestingOutsideStrings) {
  EXPECT_EQ(json_nesting_depth("{}", 10), 1);
  EXPECT_EQ(json_nesting_depth(R"({"a": [[1], {"b": "[[[["}]})", 10), 3);
  EXPECT_EQ(json_nesting_depth(R"(["\"[[[", 1])", 10), 1);
  EXPECT_TRUE(json_too_deep(std::string(100000, '[') + std::string(100000, ']')));
  EXPECT_FALSE(json_too_deep(std::string(200, '[') + std::string(200, ']')));
}

TEST(Fingerprint, SeesSizeAndModificationChanges) {
  TempDir t;
  const fs::path f = t.path / "a.nc";
  write(f, "12345");
  SourceAccess access;
  Fingerprint object;
  object.path = f.string();
  const auto before = take_fingerprints({object}, access);
  EXPECT_EQ(first_change(before, access), "");
  write(f, "123456");
  EXPECT_NE(first_change(before, access).find("changed size (5 → 6 bytes)"), std::string::npos);
  const auto again = take_fingerprints({object}, access);
  fs::last_write_time(f, fs::last_write_time(f) + std::chrono::seconds(1));
  EXPECT_NE(first_change(again, access).find("was modified"), std::string::npos);
  fs::remove(f);
  EXPECT_NE(first_change(again, access).find("is gone"), std::string::npos);
  EXPECT_EQ(fingerprints_from(fingerprints_json(again)), again);
  // Remote objects keep their ETag and access role through the plan's JSON.
  Fingerprint remote{"https://example.invalid/a.nc", 10, 0, "\"abc\"", AccessRole::Remote};
  EXPECT_EQ(fingerprints_from(fingerprints_json({remote})), std::vector<Fingerprint>{remote});
}

TEST(StoreClaim, AFolderIsClaimedLeasedAndAForeignOneRefused) {
  const fs::path root = fs::temp_directory_path() / ("zp_claim_" + std::to_string(getpid()));
  fs::remove_all(root);
  const FileStore store((root / "x.zarr").string()), foreign((root / "f").string());
  check_claim_and_lease(store, foreign, true);
  fs::remove_all(root);
}

// A folder whose first read of the lease calls `between` after reading and before answering: the
// moment another run can act between this run's look at an expired lease and its takeover.
class PausingStore : public FileStore {
 public:
  PausingStore(std::string root, std::function<void()> between)
      : FileStore(std::move(root)), between_(std::move(between)) {}
  std::optional<std::string> get(const std::string& key) const override {
    auto v = FileStore::get(key);
    pause(key);
    return v;
  }
  std::optional<Tagged> get_tagged(const std::string& key) const override {
    auto v = FileStore::get_tagged(key);
    pause(key);
    return v;
  }

 private:
  void pause(const std::string& key) const {
    if (key != ".zarr-parallel/lease.json" || !between_) return;
    auto once = std::move(between_);
    between_ = nullptr;
    once();
  }
  mutable std::function<void()> between_;
};

TEST(StoreLease, OfTwoRunsTakingOverAnExpiredLeaseOneProceeds) {
  // Before put-if-match, the second taker deleted the first taker's fresh lease and made its own:
  // both ran. Now the second finds the version it saw gone and is refused.
  TempDir t;
  const std::string root = (t.path / "x.zarr").string();
  const FileStore plain(root);
  { auto dead = StoreLease::acquire(plain, 60, 1000); }  // released: write one that expired
  plain.put(".zarr-parallel/lease.json", std::string(R"({"holder":"gone","expires":1060})"));
  std::unique_ptr<StoreLease> first;
  const PausingStore racing(root, [&] { first = StoreLease::acquire(plain, 60, 1200); });
  try {
    auto second = StoreLease::acquire(racing, 60, 1200);
    ADD_FAILURE() << "both runs took the lease";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds its lease"), std::string::npos) << e.what();
  }
  ASSERT_TRUE(first);
  EXPECT_NO_THROW(first->renew(1210));  // still the first run's
  EXPECT_NE(plain.get(".zarr-parallel/lease.json")->find(first->holder()), std::string::npos);
}

}  // namespace
}  // namespace zp
