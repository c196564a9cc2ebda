#include "store/file_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <tuple>
#include <utility>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "store/folder_walk.hpp"

namespace zp {

namespace fs = std::filesystem;

static constexpr const char* kTempMarker = ".zptmp.";

void check_safe_key(const std::string& key) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Store, "unsafe store key '" + key + "': " + why);
  };
  if (key.empty()) throw bad("empty");
  if (key.front() == '/') throw bad("absolute path");
  for (unsigned char c : key)
    if (c < 0x20 || c == 0x7f) throw bad("control character");
  std::size_t start = 0;
  while (start <= key.size()) {
    const auto slash = key.find('/', start);
    const auto part =
        key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") throw bad("empty, '.' or '..' path component");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

FileStore::FileStore(std::string root) : root_(std::move(root)) {}

std::string FileStore::path_of(const std::string& key) const {
  check_safe_key(key);
  return root_ + "/" + key;
}

std::string folder_of(const std::string& key) {
  const auto slash = key.rfind('/');
  return slash == std::string::npos ? std::string() : key.substr(0, slash);
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error::store(path, "cannot open to flush it: " + errno_text(errno));
  flush_and_close(fd, path, true);
}

void FileStore::sync_folders(const std::set<std::string>& folders) const {
  std::set<std::string> all;
  for (std::string f : folders) {
    for (;;) {
      if (!all.insert(f).second || f.empty()) break;
      f = folder_of(f);
    }
  }
  // Deepest first: a folder's own name is flushed with its parent, after its entries.
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!it->empty()) check_safe_key(*it);
    UniqueFd dir = open_folder_beneath(root_, *it, false);
    if (dir.valid()) flush_and_close(dir.release(), it->empty() ? root_ : path_of(*it), true);
  }
}

void FileStore::put(const std::string& key, const Bytes& value, Sync sync) const {
  put_parts(key, {&value}, sync);
}

namespace {

std::string base_name(const std::string& key) {
  const auto slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

// A new temporary file beside `name` in `dir`, never an existing one (nor a link planted there).
std::pair<int, std::string> create_temporary(int dir, const std::string& name,
                                             const std::string& path) {
  static std::atomic<unsigned> counter{0};
  for (int tries = 0;; ++tries) {
    std::string tmp =
        name + kTempMarker + std::to_string(getpid()) + "." + std::to_string(counter++);
    const int fd =
        ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return {fd, std::move(tmp)};
    if (errno != EEXIST || tries == 8)
      throw Error::store(path, "cannot create a temporary file beside it: " + errno_text(errno));
  }
}

void write_all(int fd, const std::vector<const Bytes*>& parts, const std::string& path) {
  for (const Bytes* value : parts) {
    std::size_t done = 0;
    while (done < value->size()) {
      const ssize_t n = ::write(fd, value->data() + done, value->size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error::store(path, "cannot write it: " + errno_text(errno));
      }
      done += static_cast<std::size_t>(n);
    }
  }
}

}  // namespace

void FileStore::put_parts(const std::string& key, const std::vector<const Bytes*>& parts, Sync sync,
                          PendingFlushes* later) const {
  const std::string path = path_of(key);
  const std::string name = base_name(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), true);
  refuse_special_entry(dir.get(), name, path);  // a planted link is refused, not replaced
  auto created = create_temporary(dir.get(), name, path);
  int fd = created.first;  // not a structured binding: the lambda below captures these
  const std::string tmp = std::move(created.second);
  const auto publish = [&] {
    if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0)
      throw Error::store(path, "cannot rename its temporary file into place: " + errno_text(errno));
  };
  try {
    write_all(fd, parts, path);
    if (later && sync == Sync::Durable) {
      // Names may reach the disk before bytes here: what needs these keys durable flushes `later`.
      ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
      publish();
      later->add(std::exchange(fd, -1), path);
      return;
    }
    // Before the rename: a name that survives a crash has its bytes (the flush also reports the
    // write errors that network file systems hold back until then).
    if (sync == Sync::Durable) {
      flush_and_close(std::exchange(fd, -1), path);
    } else if (::close(std::exchange(fd, -1)) != 0) {
      throw Error::store(path, "cannot write it: " + errno_text(errno));
    }
    publish();
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    throw;
  }
}

void FileStore::put(const std::string& key, const std::string& value, Sync sync) const {
  put(key, Bytes(value.begin(), value.end()), sync);
}

bool FileStore::put_if_absent(const std::string& key, const std::string& value) const {
  const std::string path = path_of(key);
  const std::string name = base_name(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), true);
  refuse_special_entry(dir.get(), name, path);
  auto created = create_temporary(dir.get(), name, path);
  int fd = created.first;
  const std::string tmp = std::move(created.second);
  const Bytes bytes(value.begin(), value.end());
  bool linked = false;
  try {
    write_all(fd, {&bytes}, path);
    flush_and_close(std::exchange(fd, -1), path);  // the name never appears without its bytes
    // link(2), unlike rename(2), never replaces: EEXIST is someone else's value, kept.
    linked = ::linkat(dir.get(), tmp.c_str(), dir.get(), name.c_str(), 0) == 0;
    if (!linked && errno != EEXIST)
      throw Error::store(path, "cannot link its temporary file into place: " + errno_text(errno));
    // NFS: a link whose reply was lost is sent again and answered EEXIST; the temporary's link
    // count says whether the name is ours after all (what open(2) advises for lock files).
    struct stat st {};
    if (!linked && ::fstatat(dir.get(), tmp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      linked = st.st_nlink == 2;
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    throw;
  }
  ::unlinkat(dir.get(), tmp.c_str(), 0);
  return linked;
}

namespace {

// A key of a batch written piece by piece into its temporary file, renamed into place at commit
// with its write-back started (the batch's finish() waits for it, as for a put's).
class FilePieces : public PieceWriter {
 public:
  FilePieces(const FileStore& store, const std::string& key, PendingFlushes& later,
             std::function<void()> committed)
      : path_(store.path_of(key)),
        name_(base_name(key)),
        dir_(open_folder_beneath(store.root(), folder_of(key), true)),
        later_(later),
        committed_(std::move(committed)) {
    refuse_special_entry(dir_.get(), name_, path_);  // a planted link is refused, not replaced
    std::tie(fd_, tmp_) = create_temporary(dir_.get(), name_, path_);
  }
  ~FilePieces() override {
    if (fd_ < 0) return;
    ::close(fd_);
    ::unlinkat(dir_.get(), tmp_.c_str(), 0);
  }
  void append(const Bytes& piece) override { write_all(fd_, {&piece}, path_); }
  void commit() override {
    ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (::renameat(dir_.get(), tmp_.c_str(), dir_.get(), name_.c_str()) != 0)
      throw Error::store(path_,
                         "cannot rename its temporary file into place: " + errno_text(errno));
    later_.add(std::exchange(fd_, -1), path_);
    committed_();
  }

 private:
  std::string path_, name_;
  UniqueFd dir_;
  PendingFlushes& later_;
  std::function<void()> committed_;
  int fd_ = -1;
  std::string tmp_;
};

// A job's chunks: each file's write-back starts as it is written; finish() waits for all of them,
// then flushes the folders that received names.
class FileBatch : public WriteBatch {
 public:
  explicit FileBatch(const FileStore& store) : store_(store) {}
  void put(const std::string& key, const std::vector<const Bytes*>& parts) override {
    store_.put_parts(key, parts, Sync::Durable, &flushes_);
    add_folder(key);
  }
  std::unique_ptr<PieceWriter> open(const std::string& key) override {
    return std::make_unique<FilePieces>(store_, key, flushes_, [this, key] { add_folder(key); });
  }
  void add_folder(const std::string& key) {
    std::string folder = folder_of(key);
    const std::lock_guard guard(mutex_);
    folders_.insert(std::move(folder));
  }
  void finish() override {
    flushes_.flush();
    std::set<std::string> folders;
    {
      const std::lock_guard guard(mutex_);
      folders.swap(folders_);
    }
    store_.sync_folders(folders);
  }

 private:
  const FileStore& store_;
  PendingFlushes flushes_;
  std::mutex mutex_;
  std::set<std::string> folders_;
};

}  // namespace

std::unique_ptr<WriteBatch> FileStore::batch() const {
  return std::make_unique<FileBatch>(*this);
}

std::optional<std::string> FileStore::get(const std::string& key) const {
  return get_at_most(key, std::numeric_limits<uint64_t>::max());
}

// Refused by its size before reading (a sparse file costs nothing on disk), and read no further
// than `max_bytes` + 1 in case it grows meanwhile.
std::optional<std::string> FileStore::get_at_most(const std::string& key,
                                                  uint64_t max_bytes) const {
  const std::string path = path_of(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), false);
  if (!dir.valid()) return std::nullopt;
  const std::string name = base_name(key);
  refuse_special_entry(dir.get(), name, path);
  const UniqueFd fd(
      ::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) > max_bytes)
    return std::nullopt;
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      if (out.size() > max_bytes) return std::nullopt;
    } else if (n == 0) {
      return out;
    } else if (errno != EINTR) {
      return std::nullopt;  // a folder, or an I/O error: no value
    }
  }
}

std::optional<Tagged> FileStore::get_tagged(const std::string& key) const {
  auto value = get(key);
  if (!value) return std::nullopt;
  std::string tag = sha256_hex(*value);
  return Tagged{std::move(*value), std::move(tag)};
}

std::optional<std::string> FileStore::put_if_match(const std::string& key, const std::string& value,
                                                   const std::string& tag) const {
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), false);
  if (!dir.valid()) return std::nullopt;
  while (::flock(dir.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      throw Error::store(path_of(key), "cannot lock its folder: " + errno_text(errno));
  const auto now = get_tagged(key);  // the lock goes with `dir` when it is closed
  if (!now || now->tag != tag) return std::nullopt;
  put(key, value);
  return sha256_hex(value);
}

bool FileStore::exists(const std::string& key) const {
  const std::string path = path_of(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), false);
  if (!dir.valid()) return false;
  const std::string name = base_name(key);
  refuse_special_entry(dir.get(), name, path);
  return ::faccessat(dir.get(), name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

void FileStore::remove(const std::string& key) const {
  path_of(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), false);
  if (dir.valid()) ::unlinkat(dir.get(), base_name(key).c_str(), 0);  // a link itself, if one
}

void FileStore::make_folder(const std::string& key) const {
  path_of(key);
  open_folder_beneath(root_, key, true);
}

int FileStore::open_append(const std::string& key) const {
  const std::string path = path_of(key);
  const UniqueFd dir = open_folder_beneath(root_, folder_of(key), true);
  const int fd =
      ::openat(dir.get(), base_name(key).c_str(),
               O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) throw Error::store(path, "cannot open it to append to it: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error::store(path, "is not a regular file");
  }
  return fd;
}

std::vector<std::string> FileStore::list(const std::string& prefix) const {
  return list_at_most(prefix, SIZE_MAX);
}

std::vector<std::string> FileStore::list_at_most(const std::string& prefix, std::size_t max) const {
  std::vector<std::string> out;
  if (!prefix.empty()) path_of(prefix);  // "" is the root
  UniqueFd dir = open_folder_beneath(root_, prefix, false);
  if (!dir.valid()) return out;
  DIR* d = ::fdopendir(dir.get());
  if (!d) return out;
  dir.release();
  while (out.size() < max) {
    const dirent* e = ::readdir(d);
    if (!e) break;
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

std::optional<std::string> FileStore::key_of_temporary(const std::string& relative) {
  const auto at = relative.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return std::nullopt;
  return relative.substr(0, at);
}

}  // namespace zp
