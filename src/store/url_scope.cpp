#include "store/url_scope.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace zp {

namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

std::string part(CURLU* u, CURLUPart which, unsigned flags) {
  char* s = nullptr;
  if (curl_url_get(u, which, &s, flags) != CURLUE_OK || !s) return "";
  std::string out(s);
  curl_free(s);
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Query parameter names whose values are credentials (AWS, GCS, Azure SAS, API keys, OAuth).
bool secret_parameter(const std::string& name) {
  const std::string n = lower(name);
  for (const char* word : {"signature", "credential", "token", "secret", "password", "passwd"})
    if (n.find(word) != std::string::npos) return true;
  for (const char* exact : {"sig", "key", "apikey", "api_key", "awsaccesskeyid", "auth", "code"})
    if (n == exact) return true;
  return false;
}

std::string redact_query(const std::string& query) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    const auto amp = std::min(query.find('&', pos), query.size());
    const std::string param = query.substr(pos, amp - pos);
    const auto eq = param.find('=');
    if (!out.empty() || pos > 0) out += '&';
    out += eq != std::string::npos && secret_parameter(param.substr(0, eq))
               ? param.substr(0, eq) + "=REDACTED"
               : param;
    pos = amp + 1;
  }
  return out;
}

// [start, end) of the authority ("user:pw@host:port") of a URL; npos when there is none.
std::pair<std::size_t, std::size_t> authority(const std::string& url) {
  const auto sep = url.find("://");
  if (sep == std::string::npos || url.find('/') < sep) return {std::string::npos, 0};
  const std::size_t start = sep + 3;
  return {start, std::min(url.find_first_of("/?#", start), url.size())};
}

}  // namespace

std::string redact_location(const std::string& location) {
  const auto [start, end] = authority(location);
  if (start == std::string::npos) return location;
  std::string out = location;
  const auto at = out.rfind('@', end - 1);
  std::size_t query_at = out.find('?', start);
  if (at != std::string::npos && at >= start) {
    out.erase(start, at + 1 - start);
    if (query_at != std::string::npos) query_at -= at + 1 - start;
  }
  if (query_at == std::string::npos) return out;
  const auto hash = std::min(out.find('#', query_at), out.size());
  return out.substr(0, query_at + 1) + redact_query(out.substr(query_at + 1, hash - query_at - 1)) +
         out.substr(hash);
}

std::string redact_urls_in(const std::string& text) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    std::size_t next = std::string::npos;
    for (const char* scheme : {"http://", "https://", "s3://"})
      next = std::min(next, text.find(scheme, at));
    if (next == std::string::npos) break;
    const std::size_t end = std::min(text.find_first_of(" \t\n\"'<>", next), text.size());
    out += text.substr(at, next - at) + redact_location(text.substr(next, end - next));
    at = end;
  }
  return out + text.substr(std::min(at, text.size()));
}

std::string strip_userinfo(const std::string& url, std::string& user, std::string& password) {
  user.clear();
  password.clear();
  const auto [start, end] = authority(url);
  if (start == std::string::npos) return url;
  const auto at = url.rfind('@', end - 1);
  if (at == std::string::npos || at < start) return url;
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (u &&
      curl_url_set(u.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
    user = part(u.get(), CURLUPART_USER, CURLU_URLDECODE);
    password = part(u.get(), CURLUPART_PASSWORD, CURLU_URLDECODE);
  }
  return url.substr(0, start) + url.substr(at + 1);
}

std::string origin_of(const std::string& url) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  const std::string scheme = lower(part(u.get(), CURLUPART_SCHEME, 0));
  if (scheme != "http" && scheme != "https") return "";
  const std::string host = lower(part(u.get(), CURLUPART_HOST, 0));
  const std::string port = part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (host.empty()) return "";
  return scheme + "://" + host + ":" + port;
}

std::string scope_of(const std::string& location) {
  if (location.rfind("s3://", 0) == 0) {
    const std::string rest = location.substr(5);
    return "s3://" + rest.substr(0, rest.find('/'));
  }
  return origin_of(location);
}

}  // namespace zp
