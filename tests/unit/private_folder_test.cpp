// private_folder / only_own_files (store/private_folder): the folders SLURM writes into or reads
// from are made private or refused, whoever made them first.
#include "store/private_folder.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

struct Folder {
  fs::path root =
      fs::temp_directory_path() / ("zp-private-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Folder() {
    fs::create_directories(root);
    fs::permissions(root, fs::perms(0755));
  }
  ~Folder() { fs::remove_all(root); }
};

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

// The message of the refusal, "" when none.
std::string refusal(const fs::path& p) {
  try {
    private_folder(p.string(), "the test's files");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Store);
    return e.what();
  }
  return "";
}

TEST(PrivateFolder, MadeWithMode0700EvenUnderAWideUmask) {
  Folder f;
  fs::create_directory(f.root / "a");
  const mode_t old = ::umask(0);
  const std::string real = private_folder((f.root / "a" / "run").string(), "x");
  ::umask(old);
  EXPECT_EQ(real, fs::canonical(f.root / "a" / "run").string());
  EXPECT_EQ(mode_of(f.root / "a" / "run"), 0700u);
  EXPECT_EQ(private_folder(real, "x"), real);  // an existing one of ours is kept
}

TEST(PrivateFolder, AnOpenFolderOfOursIsClosedALinkOrAFileIsRefused) {
  Folder f;
  fs::create_directory(f.root / "open");
  fs::permissions(f.root / "open", fs::perms(0777));
  EXPECT_EQ(refusal(f.root / "open"), "");  // ours: made private, not refused
  EXPECT_EQ(mode_of(f.root / "open"), 0700u);
  fs::create_directory(f.root / "theirs");
  fs::create_directory_symlink(f.root / "theirs", f.root / "link");
  EXPECT_NE(refusal(f.root / "link").find("not a folder"), std::string::npos);
  std::ofstream(f.root / "file") << "x";
  EXPECT_NE(refusal(f.root / "file").find("not a folder"), std::string::npos);
}

TEST(PrivateFolder, AnotherUsersFolderIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a folder away";
  Folder f;
  fs::create_directory(f.root / "theirs");
  ASSERT_EQ(::chown((f.root / "theirs").c_str(), 65534, 65534), 0);
  EXPECT_NE(refusal(f.root / "theirs").find("belongs to uid 65534"), std::string::npos);
}

TEST(PrivateFolder, AFolderAboveOthersCanWriteIsRefusedUnlessSticky) {
  Folder f;
  fs::permissions(f.root, fs::perms(0777));
  const std::string why = refusal(f.root / "run");
  EXPECT_NE(why.find("the folder above it, " + fs::canonical(f.root).string()), std::string::npos)
      << why;
  fs::permissions(f.root, fs::perms(01777));  // as /tmp: our folder cannot be renamed
  EXPECT_EQ(refusal(f.root / "run"), "");
  fs::permissions(f.root, fs::perms(02775));  // a group's project folder: the group is trusted
  EXPECT_EQ(refusal(f.root / "run"), "");
}

TEST(PrivateFolder, OnlyOwnFilesRefusesPlantedNames) {
  Folder f;
  const std::string logs = private_folder((f.root / "logs").string(), "x");
  std::ofstream(f.root / "logs" / "slurm-1_0.log") << "ours";
  fs::create_symlink(f.root / "victim", f.root / "logs" / "job-1.log");  // not a SLURM name
  EXPECT_NO_THROW(only_own_files(logs, "slurm-", "x"));
  fs::create_symlink(f.root / "victim", f.root / "logs" / "slurm-2_0.log");
  EXPECT_THROW(only_own_files(logs, "slurm-", "x"), Error);
  fs::remove(f.root / "logs" / "slurm-2_0.log");
  fs::create_hard_link(f.root / "logs" / "slurm-1_0.log", f.root / "logs" / "slurm-3_0.log");
  EXPECT_THROW(only_own_files(logs, "slurm-", "x"), Error);
}

}  // namespace
}  // namespace zp
