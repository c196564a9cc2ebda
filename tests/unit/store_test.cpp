// FileStore: atomic puts, key safety (nothing is ever written outside the store). FileReader:
// byte ranges from many files and threads through a bounded set of descriptors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/error.hpp"
#include "store/file_reader.hpp"
#include "store/file_store.hpp"
#include "store/pending_flushes.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

TEST(FileReader, ManyFilesFromManyThroughFewDescriptors) {
  // 60 files read at random from 4 threads through 3 descriptors: a file closed for another while
  // a thread is inside pread must not hand that thread another file's bytes.
  const fs::path dir = fs::temp_directory_path() / ("zp_reader_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::vector<std::string> paths;
  for (int i = 0; i < 60; ++i) {
    paths.push_back((dir / std::to_string(i)).string());
    std::ofstream(paths.back(), std::ios::binary) << std::string(4096, static_cast<char>('A' + i));
  }
  FileReader reader(3);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int k = 0; k < 3000; ++k) {
        const int i = static_cast<int>(rng() % 60);
        const Bytes b = reader.read(paths[static_cast<std::size_t>(i)], rng() % 2048, 2048);
        for (unsigned char c : b)
          if (c != static_cast<unsigned char>('A' + i)) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  // Descriptors held: the reader's three at most, not one per file read.
  int open_fds = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (fs::read_symlink(e.path(), ec).parent_path() == dir) ++open_fds;
  }
  EXPECT_LE(open_fds, 3);
  EXPECT_THROW(reader.read((dir / "absent").string(), 0, 1), Error);
  fs::remove_all(dir);
}

TEST(FileStore, PutGetListAndNoTemporariesLeft) {
  const fs::path root = fs::temp_directory_path() / ("zp_store_" + std::to_string(getpid()));
  FileStore store(root.string());
  store.put("a/b/0.0", std::string("hello"));
  store.put("a/b/0.0", std::string("world"));
  EXPECT_EQ(*store.get("a/b/0.0"), "world");
  EXPECT_FALSE(store.get("a/b/1.0").has_value());
  EXPECT_EQ(store.list("a/b"), std::vector<std::string>{"0.0"});
  fs::remove_all(root);
}

TEST(FileStore, UnsafeKeysAreRefused) {
  FileStore store("/tmp/zp_never_created");
  for (const std::string& key : std::vector<std::string>{
           "../x", "/etc/passwd", "a/../../b", "a//b", "", "a/./b", std::string("a\0b", 3), "a\nb"})
    EXPECT_THROW(store.put(key, std::string("x")), Error) << key;
  EXPECT_FALSE(fs::exists("/tmp/zp_never_created"));
}

TEST(FileStore, UnwritableStoreIsAStoreError) {
  // A store whose root is a file cannot be written, even by root.
  const fs::path file = fs::temp_directory_path() / ("zp_store_file_" + std::to_string(getpid()));
  { std::ofstream(file) << "x"; }
  FileStore store(file.string());
  try {
    store.put("a/0", std::string("y"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos);
  }
  fs::remove(file);
}

TEST(FileStore, FoldersAreFlushedUpToTheRootAndMissingOnesSkipped) {
  EXPECT_EQ(folder_of("d2m/0/1/2"), "d2m/0/1");
  EXPECT_EQ(folder_of(".zmetadata"), "");
  const fs::path root = fs::temp_directory_path() / ("zp_sync_" + std::to_string(getpid()));
  FileStore store(root.string());
  store.put("a/b/0.0", std::string("x"));
  store.put("hb", std::string("y"), Sync::Cached);
  EXPECT_EQ(*store.get("hb"), "y");
  EXPECT_NO_THROW(store.sync_folders({"a/b", "a", "", "never/written"}));
  try {
    sync_path((root / "missing").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    EXPECT_NE(std::string(e.what()).find((root / "missing").string()), std::string::npos);
  }
  fs::remove_all(root);
}

TEST(FileStore, PutIfAbsentNeverReplacesAndLeavesNoTemporary) {
  const fs::path root = fs::temp_directory_path() / ("zp_absent_" + std::to_string(getpid()));
  FileStore store(root.string());
  const Writable& w = store;  // through the interface the writer uses
  EXPECT_TRUE(w.put_if_absent(".zarr-parallel/store.json", "first"));
  EXPECT_FALSE(w.put_if_absent(".zarr-parallel/store.json", "second"));
  EXPECT_EQ(*w.get(".zarr-parallel/store.json"), "first");
  EXPECT_EQ(w.list(".zarr-parallel"), std::vector<std::string>{"store.json"});
  // Racing creators: exactly one wins.
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] { won += w.put_if_absent("lease", std::to_string(t)) ? 1 : 0; });
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  w.remove("lease");
  EXPECT_FALSE(w.exists("lease"));
  EXPECT_TRUE(w.put_if_absent("lease", "again"));
  fs::remove_all(root);
}

TEST(FileStore, ABatchPutsKeysInPlaceAndFinishesOnce) {
  const fs::path root = fs::temp_directory_path() / ("zp_batch_" + std::to_string(getpid()));
  FileStore store(root.string());
  const Writable& w = store;
  auto batch = w.batch();
  const Bytes a{'a', 'b'}, b{'c'};
  for (int i = 0; i < 100; ++i)
    batch->put("t/" + std::to_string(i % 7) + "/" + std::to_string(i), {&a, &b});
  EXPECT_EQ(*w.get("t/3/10"), "abc");  // in place before finish
  EXPECT_NO_THROW(batch->finish());
  EXPECT_NO_THROW(batch->finish());  // nothing left
  EXPECT_EQ(w.list("t").size(), 7u);
  fs::remove_all(root);
}

TEST(PendingFlushes, KeysAreInPlaceBeforeTheFlushAndAFailedFlushIsNamed) {
  const fs::path root = fs::temp_directory_path() / ("zp_flush_" + std::to_string(getpid()));
  FileStore store(root.string());
  PendingFlushes later;
  for (std::size_t i = 0; i < PendingFlushes::kMaxPending + 3; ++i) {
    store.put_parts("a/" + std::to_string(i), {}, Sync::Durable, &later);
    EXPECT_TRUE(store.get("a/" + std::to_string(i)).has_value());  // in place before the flush
  }
  // A descriptor that cannot be flushed: closed already (EBADF).
  const int bad = ::dup(0);
  ::close(bad);
  later.add(bad, "the-bad-one");
  try {
    later.flush();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    EXPECT_NE(std::string(e.what()).find("the-bad-one"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(later.flush());  // nothing left
  fs::remove_all(root);
}

}  // namespace
}  // namespace zp
