#include "store/file_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

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
    const std::string path = it->empty() ? root_ : path_of(*it);
    std::error_code ec;
    if (it->empty() || fs::exists(path, ec)) sync_path(path);  // none: nothing was put there
  }
}

void FileStore::put(const std::string& key, const Bytes& value, Sync sync) const {
  put_parts(key, {&value}, sync);
}

void FileStore::put_parts(const std::string& key, const std::vector<const Bytes*>& parts,
                          Sync sync, PendingFlushes* later) const {
  const std::string path = path_of(key);
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    throw Error::store(root_, "cannot create folder '" + parent.string() + "': " + ec.message());
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + kTempMarker + std::to_string(getpid()) + "." + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error::store(root_, "cannot create '" + tmp + "': " + errno_text(errno));
  for (const Bytes* value : parts) {
    std::size_t done = 0;
    while (done < value->size()) {
      const ssize_t n = ::write(fd, value->data() + done, value->size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw Error::store(root_, "cannot write '" + key + "': " + errno_text(err));
      }
      done += static_cast<std::size_t>(n);
    }
  }
  if (later && sync == Sync::Durable) {
    // Names may reach the disk before bytes here: what needs these keys durable flushes `later`.
    ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error::store(root_, "cannot rename into '" + key + "': " + errno_text(err));
    }
    later->add(fd, path);
    return;
  }
  try {
    // Before the rename: a name that survives a crash has its bytes (the flush also reports the
    // write errors that network file systems hold back until then).
    if (sync == Sync::Durable) {
      flush_and_close(fd, path);
    } else if (::close(fd) != 0) {
      throw Error::store(path, "cannot write it: " + errno_text(errno));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error::store(root_, "cannot rename into '" + key + "': " + errno_text(err));
  }
}

void FileStore::put(const std::string& key, const std::string& value, Sync sync) const {
  put(key, Bytes(value.begin(), value.end()), sync);
}

std::optional<std::string> FileStore::get(const std::string& key) const {
  std::ifstream in(path_of(key), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileStore::exists(const std::string& key) const {
  return fs::exists(path_of(key));
}

void FileStore::remove(const std::string& key) const {
  std::error_code ec;
  fs::remove(path_of(key), ec);
}

std::vector<std::string> FileStore::list(const std::string& prefix) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path_of(prefix), ec))
    out.push_back(e.path().filename().string());
  return out;
}

std::optional<std::string> FileStore::key_of_temporary(const std::string& relative) {
  const auto at = relative.rfind(kTempMarker);
  if (at == std::string::npos || at == 0) return std::nullopt;
  return relative.substr(0, at);
}

}  // namespace zp
