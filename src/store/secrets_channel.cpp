#include "store/secrets_channel.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.hpp"

namespace zp {

namespace {

void write_all(int fd, const std::string& text, const std::string& path) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error::internal("cannot write the secrets file " + path + ": " + errno_text(errno));
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

SecretsChannel::SecretsChannel(const AccessOptions& access, const std::string& parent) {
  if (!access.has_secrets()) return;
  std::string tmpl = parent + "/zp-secrets-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))  // mode 0700
    throw Error::internal("cannot create a private folder in " + parent + ": " + errno_text(errno));
  dir_ = buf.data();
  file_ = dir_ + "/secrets.json";
  const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    ::rmdir(dir_.c_str());
    throw Error::internal("cannot create the secrets file " + file_ + ": " + errno_text(err));
  }
  try {
    write_all(fd, access.transfer_text(), file_);  // options and secrets: see handed_access()
  } catch (...) {
    ::close(fd);
    ::unlink(file_.c_str());
    ::rmdir(dir_.c_str());
    throw;
  }
  ::close(fd);
  if (const char* p = std::getenv(kSecretsFileEnv)) {
    had_previous_ = true;
    previous_ = p;
  }
  ::setenv(kSecretsFileEnv, file_.c_str(), 1);
}

SecretsChannel::~SecretsChannel() {
  if (file_.empty()) return;
  if (!kept_) {
    ::unlink(file_.c_str());
    ::rmdir(dir_.c_str());
  }
  if (had_previous_)
    ::setenv(kSecretsFileEnv, previous_.c_str(), 1);
  else
    ::unsetenv(kSecretsFileEnv);
}

void guard_secrets(const AccessOptions& access) {
  if (access.has_secrets()) ::prctl(PR_SET_DUMPABLE, 0);
}

std::string secrets_from_channel() {
  const char* path = std::getenv(kSecretsFileEnv);
  if (!path || !*path) return "";
  const int fd = ::open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    throw Error::config(kSecretsFileEnv, std::string("cannot read the secrets of this run (") +
                                             path + "): " + errno_text(errno));
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() > (16u << 20)) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace zp
