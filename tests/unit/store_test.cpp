// FileStore: atomic puts, key safety (nothing is ever written outside the store).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "store/file_store.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

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

}  // namespace
}  // namespace zp
