#include "store/http_reader.hpp"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "store/address_rule.hpp"
#include "store/url_scope.hpp"

namespace zp {

namespace {

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* s = std::getenv(name);
  if (!s || !*s) return fallback;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (*end || v < lo || v > hi) return fallback;
  return static_cast<int>(v);
}

std::string env(const char* name) {
  const char* s = std::getenv(name);
  return s ? s : "";
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A value of an INI section (~/.aws/credentials, ~/.aws/config), "" when absent.
std::string ini_value(const std::string& path, const std::string& section, const std::string& key) {
  std::ifstream in(path);
  std::string line, current;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      current = trim(line.substr(1, line.size() - 2));
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos || current != section) continue;
    if (trim(line.substr(0, eq)) == key) return trim(line.substr(eq + 1));
  }
  return "";
}

// AWS's URI encoding: every byte but unreserved characters, '/' kept when `keep_slash`.
std::string aws_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string xml_unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const auto semi = s.find(';', i);
    if (semi == std::string::npos) {
      out += s[i];
      continue;
    }
    const std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      out += '&';
    else if (ent == "lt")
      out += '<';
    else if (ent == "gt")
      out += '>';
    else if (ent == "quot")
      out += '"';
    else if (ent == "apos")
      out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      const long cp = ent.size() > 1 && ent[1] == 'x' ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                      : std::strtol(ent.c_str() + 1, nullptr, 10);
      if (cp > 0 && cp < 128) out += static_cast<char>(cp);  // keys here are ASCII-escaped only
    } else {
      out += s.substr(i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

// Texts of every <tag>...</tag> in an S3 XML answer, in order (flat: S3's list answer nests
// <Key> and <Size> inside <Contents> only).
std::vector<std::string> xml_values(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  std::size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string::npos) {
    const auto end = xml.find(close, pos);
    if (end == std::string::npos) break;
    out.push_back(xml_unescape(xml.substr(pos + open.size(), end - pos - open.size())));
    pos = end + close.size();
  }
  return out;
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

int http_retries() {
  return env_int("ZP_HTTP_RETRIES", 5, 0, 100);
}
int http_concurrency() {
  return env_int("ZP_HTTP_CONCURRENCY", 16, 1, 1024);
}
int http_deadline() {
  return env_int("ZP_HTTP_DEADLINE", 600, 1, 86400);
}
uint64_t s3_max_list_entries() {
  return static_cast<uint64_t>(env_int("ZP_S3_MAX_LIST_ENTRIES", 10000000, 1, 2000000000));
}
uint64_t http_max_document() {
  return static_cast<uint64_t>(env_int("ZP_HTTP_MAX_DOCUMENT_MB", 512, 1, 1 << 20)) << 20;
}
uint64_t http_max_range_skip() {
  return static_cast<uint64_t>(env_int("ZP_HTTP_MAX_SKIP_MB", 64, 0, 1 << 20)) << 20;
}

S3Settings S3Settings::resolve(const StorageOptions& o) {
  S3Settings s;
  const std::string profile = !o.profile.empty()            ? o.profile
                              : !env("AWS_PROFILE").empty() ? env("AWS_PROFILE")
                                                            : "default";
  const std::string home = env("HOME");
  const std::string cred_file = !env("AWS_SHARED_CREDENTIALS_FILE").empty()
                                    ? env("AWS_SHARED_CREDENTIALS_FILE")
                                    : home + "/.aws/credentials";
  const std::string config_file =
      !env("AWS_CONFIG_FILE").empty() ? env("AWS_CONFIG_FILE") : home + "/.aws/config";
  const std::string config_section = profile == "default" ? "default" : "profile " + profile;
  s.region = !o.region.empty()            ? o.region
             : !env("AWS_REGION").empty() ? env("AWS_REGION")
             : !env("AWS_DEFAULT_REGION").empty()
                 ? env("AWS_DEFAULT_REGION")
                 : ini_value(config_file, config_section, "region");
  if (s.region.empty()) s.region = "us-east-1";
  std::string endpoint = !o.endpoint_url.empty()               ? o.endpoint_url
                         : !env("AWS_ENDPOINT_URL_S3").empty() ? env("AWS_ENDPOINT_URL_S3")
                                                               : env("AWS_ENDPOINT_URL");
  if (endpoint.empty()) {
    s.endpoint = "https://s3." + s.region + ".amazonaws.com";
    s.path_style = false;
  } else {
    if (endpoint.find("://") == std::string::npos) endpoint = "https://" + endpoint;
    while (endpoint.size() > 1 && endpoint.back() == '/') endpoint.pop_back();
    s.endpoint = endpoint;
    s.path_style = true;
  }
  if (o.anon.value_or(false)) return s;
  if (!o.key.empty()) {
    s.key = o.key;
    s.secret = o.secret;
    s.token = o.token;
  } else if (!env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty()) {
    s.key = env("AWS_ACCESS_KEY_ID");
    s.secret = env("AWS_SECRET_ACCESS_KEY");
    s.token = env("AWS_SESSION_TOKEN");
  } else {
    s.key = ini_value(cred_file, profile, "aws_access_key_id");
    s.secret = ini_value(cred_file, profile, "aws_secret_access_key");
    s.token = ini_value(cred_file, profile, "aws_session_token");
    if (s.secret.empty()) s.key.clear();
  }
  return s;
}

std::string S3Settings::bucket_url(const std::string& bucket) const {
  if (path_style) return endpoint + "/" + aws_encode(bucket, false);
  const auto scheme_end = endpoint.find("://") + 3;
  return endpoint.substr(0, scheme_end) + bucket + "." + endpoint.substr(scheme_end);
}

std::string S3Settings::url_of(const std::string& location) const {
  if (location.rfind("s3://", 0) != 0) throw Error::internal("not an s3 location: " + location);
  const std::string rest = location.substr(5);
  const auto slash = rest.find('/');
  const std::string bucket = rest.substr(0, slash);
  if (bucket.empty()) throw Error::source(location, "no bucket in the S3 URL");
  const std::string key = slash == std::string::npos ? "" : rest.substr(slash + 1);
  // libcurl removes dot segments before it sends and signs: with path-style endpoints
  // "s3://pub/../priv/x" would be signed for bucket priv with credentials scoped to pub.
  for (std::size_t at = 0; at <= key.size();) {
    const std::size_t end = std::min(key.find('/', at), key.size());
    const std::string segment = key.substr(at, end - at);
    if (segment == "." || segment == "..")
      throw Error::source(location,
                          "an S3 key with a '.' or '..' segment is refused (it would "
                          "name another object, or another bucket, than it says)");
    at = end + 1;
  }
  return bucket_url(bucket) + "/" + aws_encode(key, true);
}

struct HttpReader::Transfer {
  std::string location, url;
  // The request in flight: `url` or where redirects led. Secrets (headers, signing) go with it only
  // when the location is in their scope and no redirect left the origin it was sent to.
  std::string request_url;
  bool in_scope = false, send_secrets = false;
  // May request_url reach a local address (address_rule.hpp)? `refused_address`: the local address
  // a connection was refused to, checked on the resolved address unless a proxy resolves it.
  bool local_ok = true, check_address = false;
  std::string refused_address;
  bool unresolved = false;    // behind a proxy, its host did not resolve here: refused unchecked
  std::string redirect_to;    // a 3xx answer's Location, resolved
  std::string redirected_by;  // the URL whose answer sent us to request_url ("": none)
  enum class Kind { Range, Whole, Head, List, Send } kind = Kind::Range;
  uint64_t offset = 0, length = 0;
  uint64_t max_body = UINT64_MAX;  // Kind::Whole: refused past this many bytes (get_at_most)
  const HttpSend* send = nullptr;  // Kind::Send: the method, body and headers
  // outcome
  long status = 0;
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  Bytes body;
  // A merged range answered 206 goes straight into its pieces' buffers (`at` in the body; each
  // sized to its range), not into `body` and then copied out: one copy and one set of fresh
  // pages fewer. `received` counts the body's bytes.
  struct Piece {
    uint64_t at;
    Bytes* out;
  };
  std::vector<Piece> scatter;
  uint64_t received = 0;
  // A 200 to a range (the server ignored Range): bytes of the object seen so far, those before the
  // range dropped as they came. `range_ignored`: refused, the range lies too far in.
  uint64_t object_seen = 0;
  bool range_ignored = false;
  std::string etag, last_modified, content_range;
  int64_t content_length = -1;
  bool done = false;
  std::string failure;  // set when it failed for good (permanent or out of retries)
  bool transient = false;
  bool missing = false;
  bool capped = false;    // stopped on purpose once it had what it needed (on_body)
  bool overflow = false;  // sent more than body_cap allows
  // libcurl state
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};
};

namespace {

// Most bytes a transfer may keep: a range its length (a 200 to a range too: take_whole_answer), a
// whole document or listing http_max_document(), an error answer 64 KiB (only its status
// matters). A server cannot fill memory with an endless body.
uint64_t body_cap(const HttpReader::Transfer& t) {
  using Kind = HttpReader::Transfer::Kind;
  if (t.status < 200 || t.status >= 300) return 64 << 10;
  if (t.kind == Kind::Range) return t.length;
  if (t.kind == Kind::Head) return 0;
  if (t.kind == Kind::List) return HttpReader::kListPageBytes;
  return std::min(http_max_document(), t.max_body);
}

// Appends with memcpy: Bytes' allocator constructs element by element, so insert() from a char
// range copied a byte at a time (a fifth of a remote run's CPU).
void append(Bytes& body, const char* ptr, std::size_t len) {
  const std::size_t at = body.size();
  if (at + len > body.capacity()) body.reserve(std::max(at + len, 2 * body.capacity()));
  body.resize(at + len);
  std::memcpy(body.data() + at, ptr, len);
}

// The range's bytes [received, received + len) into each piece they overlap.
void scatter(HttpReader::Transfer& t, const char* ptr, std::size_t len) {
  const uint64_t from = t.received, to = t.received + len;
  for (const auto& p : t.scatter) {
    if (p.at >= to) break;  // sorted by `at`
    const uint64_t end = p.at + p.out->size();
    if (end <= from) continue;
    const uint64_t lo = std::max(from, p.at), hi = std::min(to, end);
    std::memcpy(p.out->data() + (lo - p.at), ptr + (lo - from), hi - lo);
  }
  t.received = to;
}

// A 200 to a range: the server ignored Range and sends the object from its first byte. Bytes
// before the range are dropped as they arrive (memory stays the range's, not its offset's), those
// in it kept (in the pieces' buffers when merged), and the transfer stops at the range's end. A
// range further in than http_max_range_skip() is refused at the first byte: every read of it
// would move that many bytes for nothing.
size_t take_whole_answer(HttpReader::Transfer& t, const char* ptr, size_t len) {
  if (t.offset > http_max_range_skip()) {
    t.range_ignored = true;
    return 0;  // abort (CURLE_WRITE_ERROR, judged as range_ignored)
  }
  const uint64_t from = t.object_seen, to = from + len, end = t.offset + t.length;
  t.object_seen = to;
  const uint64_t lo = std::max(from, t.offset), hi = std::min(to, end);
  if (lo < hi && !t.scatter.empty()) {
    scatter(t, ptr + (lo - from), hi - lo);
  } else if (lo < hi) {
    if (t.body.empty()) t.body.reserve(t.length);
    append(t.body, ptr + (lo - from), hi - lo);
  }
  if (to <= end) return len;
  t.capped = true;  // the rest of the object is not wanted
  return 0;
}

size_t on_body(char* ptr, size_t size, size_t n, void* user) {
  auto* t = static_cast<HttpReader::Transfer*>(user);
  const size_t len = size * n;
  if (t->kind == HttpReader::Transfer::Kind::Range && t->status == 200)
    return take_whole_answer(*t, ptr, len);
  if (!t->scatter.empty() && t->status == 206) {
    if (t->received + len > t->length) {
      t->overflow = true;
      return 0;
    }
    scatter(*t, ptr, len);
    return len;
  }
  const uint64_t cap = body_cap(*t);
  if (t->body.size() + len <= cap) {
    if (t->body.empty() && t->kind == HttpReader::Transfer::Kind::Range && t->status == 206)
      t->body.reserve(t->length);  // the size asked for, allocated once
    append(t->body, ptr, len);
    return len;
  }
  // Past the cap: an error body is cut; any other transfer got more than it may, and fails.
  if (t->status < 200 || t->status >= 300) {
    append(t->body, ptr, cap - t->body.size());
    t->capped = true;
  } else {
    t->overflow = true;
  }
  return 0;  // abort the rest of the transfer (CURLE_WRITE_ERROR, handled)
}

size_t on_header(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<HttpReader::Transfer*>(user);
  const std::string line(buffer, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or 100-continue)
    t->etag.clear();
    t->last_modified.clear();
    t->content_range.clear();
    t->content_length = -1;
    const auto sp = line.find(' ');
    if (sp != std::string::npos) t->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  const std::string name = lower(trim(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (name == "etag")
    t->etag = value;
  else if (name == "last-modified")
    t->last_modified = value;
  else if (name == "content-range")
    t->content_range = value;
  else if (name == "content-length")
    t->content_length = std::strtoll(value.c_str(), nullptr, 10);
  return size * n;
}

// Every connection's address, after DNS, before connect: a transfer that may not reach local
// addresses is refused one there (curl then tries the name's other addresses, if any).
curl_socket_t open_socket(void* user, curlsocktype, curl_sockaddr* a) {
  auto* t = static_cast<HttpReader::Transfer*>(user);
  if (t->check_address && local_address(&a->addr)) {
    t->refused_address = address_text(&a->addr);
    return CURL_SOCKET_BAD;
  }
  return ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

bool transient_curl(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_READ_ERROR:
      return true;
    default:
      return false;
  }
}

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string status_text(long status) {
  switch (status) {
    case 400:
      return "400 Bad Request";
    case 401:
      return "401 Unauthorized";
    case 403:
      return "403 Forbidden";
    case 404:
      return "404 Not Found";
    case 416:
      return "416 Range Not Satisfiable";
    case 429:
      return "429 Too Many Requests";
    case 500:
      return "500 Internal Server Error";
    case 502:
      return "502 Bad Gateway";
    case 503:
      return "503 Service Unavailable";
    case 504:
      return "504 Gateway Timeout";
    default:
      return "HTTP status " + std::to_string(status);
  }
}

// "bytes A-B/T" of a 206 answer: A, B and T (-1 for '*'); false when it is not of that form.
bool parse_content_range(const std::string& v, uint64_t& a, uint64_t& b, int64_t& total) {
  unsigned long long x = 0, y = 0, z = 0;
  char star = 0;
  int n = 0;
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/%llu%n", &x, &y, &z, &n) == 3 &&
      n == static_cast<int>(v.size())) {
    total = static_cast<int64_t>(z);
  } else if (std::sscanf(v.c_str(), "bytes %llu-%llu/%c%n", &x, &y, &star, &n) == 3 &&
             star == '*' && n == static_cast<int>(v.size())) {
    total = -1;
  } else {
    return false;
  }
  a = x, b = y;
  return true;
}

// A ranged answer must be the bytes asked for: a 206 whose Content-Range names other bytes (a
// shifted range of the right length) would be cached as wrong values.
void judge_range(HttpReader::Transfer& t) {
  const std::string asked =
      std::to_string(t.offset) + "-" + std::to_string(t.offset + t.length - 1);
  if (t.status == 200) {  // the server ignored Range: take_whole_answer kept the slice asked for
    if ((t.scatter.empty() ? t.body.size() : t.received) < t.length)
      t.failure = "range " + std::to_string(t.offset) + "+" + std::to_string(t.length) +
                  " lies past the end of the object (" + std::to_string(t.object_seen) +
                  " bytes): truncated object or bad reference";
    return;
  }
  uint64_t a = 0, b = 0;
  int64_t total = -1;
  if (t.status != 206 || !parse_content_range(t.content_range, a, b, total)) {
    t.failure = "answer " + std::to_string(t.status) + " to the range request " + asked +
                " has no valid Content-Range ('" + t.content_range.substr(0, 80) + "')";
  } else if (total >= 0 && static_cast<uint64_t>(total) < t.offset + t.length) {
    t.failure = "range " + asked + " lies past the end of the object (" + std::to_string(total) +
                " bytes): truncated object or bad reference";
  } else if (a != t.offset || b != t.offset + t.length - 1) {
    t.failure = "the server answered bytes " + std::to_string(a) + "-" + std::to_string(b) +
                " to the request for bytes " + asked + ": refused";
  } else if (const uint64_t got = t.scatter.empty() ? t.body.size() : t.received; got != t.length) {
    t.transient = true;  // a body cut short
    t.failure = "short body: " + std::to_string(got) + " of " + std::to_string(t.length) + " bytes";
  }
}

// A 200 to a range too far in to skip to (take_whole_answer).
std::string ignored_range(const HttpReader::Transfer& t) {
  return "the server ignored Range: it answered 200 (the whole object) to the request for bytes " +
         std::to_string(t.offset) + "-" + std::to_string(t.offset + t.length - 1) +
         ", and reaching them would mean receiving and dropping " + std::to_string(t.offset) +
         " bytes, more than the " + std::to_string(http_max_range_skip() >> 20) +
         " MiB allowed (ZP_HTTP_MAX_SKIP_MB): refused; serve the file from a server that "
         "answers range requests (206)";
}

}  // namespace

HttpReader::HttpReader(const StorageOptions& options, bool s3) : options_(options), s3_(s3) {
  static CurlGlobal global;
  if (s3_) s3settings_ = S3Settings::resolve(options_);
  multi_ = curl_multi_init();
  if (!multi_) throw Error::internal("curl_multi_init failed");
  curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(http_concurrency()));
}

HttpReader::~HttpReader() {
  if (multi_) curl_multi_cleanup(multi_);
}

std::string HttpReader::url_of(const std::string& location) const {
  return s3_ ? s3settings_.url_of(location) : options_.real_location(location);
}

namespace {

// The method and body of a write: libcurl sends POSTFIELDS from the caller's buffer, no copy.
void set_method(CURL* e, const HttpSend& s) {
  if (s.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    return;
  }
  if (s.method != "GET") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, s.method.c_str());
  if (s.method == "GET" || s.method == "DELETE") return;
  static const char kEmpty[] = "";
  const auto size = static_cast<curl_off_t>(s.body ? s.body->size() : 0);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
  curl_easy_setopt(
      e, CURLOPT_POSTFIELDS,
      s.body && !s.body->empty() ? reinterpret_cast<const char*>(s.body->data()) : kEmpty);
}

}  // namespace

void HttpReader::start_transfer(Transfer& tr, long timeout) {
  Transfer* t = &tr;
  t->easy = curl_easy_init();
  t->status = 0;
  t->body.clear();
  t->received = t->object_seen = 0;
  t->range_ignored = false;
  t->etag.clear();
  t->last_modified.clear();
  t->content_range.clear();
  t->content_length = -1;
  t->redirect_to.clear();
  t->capped = t->overflow = false;
  t->errbuf[0] = 0;
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, t->request_url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  t->check_address = !t->local_ok && !proxied(t->request_url);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  // Redirects are followed by run_hops, which decides whether the secrets may go along; libcurl
  // would resend custom headers (API keys, S3 tokens) to any host.
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, std::min(timeout, 20L));
  // A request slower than 1 KiB/s for `timeout` seconds (a stalled or trickling server), or not
  // done after the deadline, has failed (and is retried).
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, timeout);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, static_cast<long>(http_deadline()));
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, nullptr);  // bytes as stored, no recoding
  curl_easy_setopt(e, CURLOPT_USERAGENT, "zarr-parallel/" ZP_VERSION);
  if (t->kind == Transfer::Kind::Head) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (t->send) set_method(e, *t->send);
  if (t->kind == Transfer::Kind::Range) {
    const std::string range =
        std::to_string(t->offset) + "-" + std::to_string(t->offset + t->length - 1);
    curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());  // copied by libcurl
  }
  t->headers = t->send_secrets ? add_secrets(e, t->send ? t->send->body_sha256 : "") : nullptr;
  if (t->send)
    for (const auto& h : t->send->headers) t->headers = curl_slist_append(t->headers, h.c_str());
  if (t->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_multi_add_handle(multi_, e);
}

curl_slist* HttpReader::add_secrets(void* easy, const std::string& payload_sha256) const {
  CURL* e = easy;
  curl_slist* h = nullptr;
  for (const auto& [name, value] : options_.headers)
    h = curl_slist_append(h, (name + ": " + value).c_str());
  if (!s3_ && (!options_.basic_user.empty() || !options_.basic_password.empty())) {
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, options_.basic_user.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, options_.basic_password.c_str());
  }
  if (s3_ && !s3settings_.key.empty()) {
    // SigV4 by libcurl; the payload hash of a body-less request is SHA-256 of "".
    const std::string hash =
        payload_sha256.empty() ? "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                               : payload_sha256;
    h = curl_slist_append(h, ("x-amz-content-sha256: " + hash).c_str());
    if (!s3settings_.token.empty())
      h = curl_slist_append(h, ("x-amz-security-token: " + s3settings_.token).c_str());
    const std::string sigv4 = "aws:amz:" + s3settings_.region + ":s3";
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(e, CURLOPT_USERNAME, s3settings_.key.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, s3settings_.secret.c_str());
  }
  return h;
}

bool HttpReader::named_origin(const std::string& url) const {
  // Origins the user named: the S3 endpoint, `hosts` (by default the data_uri's).
  const std::string origin = origin_of(url);
  if (origin.empty()) return false;
  if (s3_ && origin == origin_of(s3settings_.endpoint)) return true;
  return options_.hosts &&
         std::find(options_.hosts->begin(), options_.hosts->end(), origin) != options_.hosts->end();
}

// Behind a proxy the proxy resolves names, so open_socket never sees where one leads: the name is
// resolved here first (once per origin) and refused when an answer is local, or when there is
// none to check.
bool HttpReader::refused_behind_proxy(Transfer& t) {
  if (!proxied(t.request_url)) return false;
  const std::string origin = origin_of(t.request_url);
  HostAnswer answer;
  {
    std::lock_guard lock(hosts_mutex_);
    const auto it = proxied_hosts_.find(origin);
    answer = it != proxied_hosts_.end() ? it->second
                                        : (proxied_hosts_[origin] = resolve_here(t.request_url));
  }
  if (answer.resolved && answer.local.empty()) return false;
  t.refused_address = answer.resolved ? answer.local : t.request_url;
  t.unresolved = !answer.resolved;
  return true;
}

bool HttpReader::may_reach_local(const std::string& url) const {
  return options_.local_addresses || named_origin(url);
}

bool HttpReader::redirect_may_reach_local(const Transfer& t) const {
  // A redirect is the answering server's word, not the user's: the exemption of what a local
  // source names (local_addresses) does not pass to it, unless the server that answered is
  // itself written as local (then it could reach this machine anyway) or stays on its origin.
  if (options_.local_redirects || named_origin(t.redirect_to)) return true;
  return t.local_ok &&
         (local_host_of(t.request_url) || origin_of(t.redirect_to) == origin_of(t.request_url));
}

void HttpReader::run_admitted(std::vector<Transfer*>& batch) {
  std::vector<Transfer*> admitted;
  for (Transfer* t : batch) {
    t->refused_address.clear();
    t->unresolved = false;
    // local_ok was set for the first request (run_hops) and for each redirect (the answering
    // server's word: redirect_may_reach_local). An address written in the URL is refused before
    // any connection; names are checked on their addresses as they connect (open_socket), or here
    // when a proxy resolves them.
    if (!t->local_ok && local_host_of(t->request_url)) {
      t->refused_address = t->request_url;
    } else if (t->local_ok || !refused_behind_proxy(*t)) {
      admitted.push_back(t);
      continue;
    }
    t->status = 0;
    t->curl = CURLE_COULDNT_CONNECT;
  }
  run_once(admitted);
}

void HttpReader::run_hops(std::vector<Transfer*>& batch) {
  for (Transfer* t : batch) {
    t->request_url = t->url;
    t->redirected_by.clear();
    t->send_secrets = t->in_scope;
    t->local_ok = may_reach_local(t->url);
  }
  run_admitted(batch);
  for (int hop = 0; hop < kMaxRedirects; ++hop) {
    std::vector<Transfer*> moved;
    for (Transfer* t : batch) {
      if (!is_redirect(t->status) || t->redirect_to.empty() || origin_of(t->redirect_to).empty())
        continue;
      // Another origin gets the request without the secrets (as browsers drop credentials).
      t->send_secrets = t->send_secrets && origin_of(t->redirect_to) == origin_of(t->request_url);
      t->local_ok = redirect_may_reach_local(*t);
      t->redirected_by = t->request_url;
      t->request_url = t->redirect_to;
      moved.push_back(t);
    }
    if (moved.empty()) return;
    run_admitted(moved);
  }
}

void HttpReader::run_once(std::vector<Transfer*>& batch) {
  const long timeout = env_int("ZP_HTTP_TIMEOUT", 30, 1, 3600);
  std::size_t next = 0, active = 0;
  auto start = [&](Transfer* t) {
    start_transfer(*t, timeout);
    ++active;
  };
  const std::size_t limit = static_cast<std::size_t>(http_concurrency());
  while (next < batch.size() && active < limit) start(batch[next++]);
  while (active > 0) {
    int running = 0;
    const CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK)
      throw Error::internal(std::string("curl_multi_perform: ") + curl_multi_strerror(mc));
    int queued = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &queued)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      t->curl = m->data.result;
      t->curl_error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->curl);
      long code = 0;
      curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      if (code) t->status = code;
      char* location = nullptr;
      if (is_redirect(t->status) &&
          curl_easy_getinfo(m->easy_handle, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
          location)
        t->redirect_to = location;
      curl_multi_remove_handle(multi_, m->easy_handle);
      curl_easy_cleanup(m->easy_handle);
      curl_slist_free_all(t->headers);
      t->headers = nullptr;
      t->easy = nullptr;
      --active;
      if (next < batch.size()) start(batch[next++]);
    }
    if (active > 0) {
      int fds = 0;
      curl_multi_poll(multi_, nullptr, 0, 200, &fds);
    }
  }
}

void HttpReader::expect_version(const std::string& location, uint64_t size,
                                const std::string& etag) {
  std::lock_guard lock(mutex_);
  expected_[location] = Version{size, etag};
}

// An object's version as its fingerprint keeps it: the ETag, or, from a server that sends none (as
// many static servers do), the Last-Modified date, so a file replaced by one of the same size is
// still a change.
std::string HttpReader::version_of(const Transfer& t) {
  if (!t.etag.empty()) return t.etag;
  if (!t.last_modified.empty()) return "Last-Modified: " + t.last_modified;
  return "";
}

namespace {

// The object's whole size, from "bytes a-b/SIZE" or a 200's length; -1 when the answer says none.
int64_t object_size(const HttpReader::Transfer& t) {
  if (const auto slash = t.content_range.rfind('/'); slash != std::string::npos) {
    const std::string total = t.content_range.substr(slash + 1);
    return total == "*" ? -1 : std::strtoll(total.c_str(), nullptr, 10);
  }
  return t.status == 200 && t.content_length >= 0 ? t.content_length : -1;
}

}  // namespace

void HttpReader::note_seen(const Transfer& t) {
  if (t.kind != Transfer::Kind::Range && t.kind != Transfer::Kind::Whole) return;
  const int64_t size = object_size(t);
  const Version now{static_cast<uint64_t>(size), version_of(t)};
  const auto it = seen_.find(t.location);
  // Answers of two versions (or one without a size): which bytes came from which is not kept,
  // so none is vouched for.
  if (size < 0 ||
      (it != seen_.end() && (it->second.size != now.size || it->second.etag != now.etag)))
    mixed_.insert(t.location);
  else
    seen_[t.location] = now;
}

ObjectInfo HttpReader::version_seen(const std::string& location) {
  std::lock_guard lock(mutex_);
  const auto it = seen_.find(location);
  if (it == seen_.end() || mixed_.count(location)) return {};
  return ObjectInfo{true, it->second.size, 0, it->second.etag};
}

void HttpReader::check_version(Transfer& t) const {
  const auto it = expected_.find(t.location);
  if (it == expected_.end() || t.kind == Transfer::Kind::Head || t.kind == Transfer::Kind::Send)
    return;
  const int64_t size = object_size(t);
  std::string change;
  if (size >= 0 && static_cast<uint64_t>(size) != it->second.size)
    change = "changed size (" + std::to_string(it->second.size) + " → " + std::to_string(size) +
             " bytes)";
  else if (const std::string v = version_of(t);
           !v.empty() && !it->second.etag.empty() && v != it->second.etag)
    change = "was replaced (" + version_label(it->second.etag) + " → " + version_label(v) + ")";
  if (!change.empty())
    t.failure = change +
                " since the plan was made; a store is never written from two versions of its "
                "source: run again with resume: false";
}

void HttpReader::run(std::vector<Transfer>& transfers) {
  std::lock_guard lock(mutex_);
  std::vector<Transfer*> pending;
  for (auto& t : transfers) {
    t.url = url_of(t.location);
    if (t.send && !t.send->query.empty()) t.url += "?" + t.send->query;
    t.in_scope = options_.secrets_reach(t.location);
    pending.push_back(&t);
  }
  retry(std::move(pending), true);
}

// Transient failures are tried again, up to http_retries() times, each batch after a backoff.
void HttpReader::retry(std::vector<Transfer*> pending, bool versioned) {
  thread_local std::mt19937 rng{std::random_device{}()};
  const int retries = http_retries();
  for (int attempt = 0; !pending.empty(); ++attempt) {
    run_hops(pending);
    std::vector<Transfer*> again;
    for (Transfer* t : pending) {
      judge(*t);
      if (versioned && t->failure.empty() && !t->missing) check_version(*t);
      if (t->failure.empty() && !t->missing) note_seen(*t);
      if (t->transient && attempt < retries) again.push_back(t);
    }
    if (again.empty()) break;
    // Exponential backoff with full jitter: 0.1 s, 0.2 s, ... up to 5 s.
    const double cap = std::min(5.0, 0.1 * static_cast<double>(1 << std::min(attempt, 10)));
    std::uniform_real_distribution<double> jitter(cap / 2, cap);
    std::this_thread::sleep_for(std::chrono::duration<double>(jitter(rng)));
    pending = std::move(again);
  }
}

void HttpReader::judge(Transfer& tr) const {
  Transfer* t = &tr;
  t->transient = false;
  t->missing = false;
  t->failure.clear();
  if (!t->refused_address.empty() && t->curl != CURLE_OK) {
    t->failure = local_refusal(*t);
  } else if (t->overflow && t->kind == Transfer::Kind::List) {
    t->failure = "a listing page over " + std::to_string(body_cap(*t)) +
                 " bytes (S3 pages of 1,000 keys are under 2 MB): refused";
  } else if (t->overflow) {
    t->failure = "the server sent more than the " + std::to_string(body_cap(*t)) +
                 " bytes asked for (or allowed for a whole document, ZP_HTTP_MAX_DOCUMENT_MB)";
  } else if (t->range_ignored) {
    t->failure = ignored_range(*t);
  } else if (t->curl != CURLE_OK && !(t->curl == CURLE_WRITE_ERROR && t->capped)) {
    t->transient = transient_curl(t->curl);
    t->failure = t->curl_error;
  } else if (t->status == 404) {
    t->missing = true;
    t->failure = status_text(t->status);
  } else if (t->status == 429 || (t->status >= 500 && t->status != 501)) {  // 501: never will
    t->transient = true;
    t->failure = status_text(t->status);
  } else if (is_redirect(t->status)) {
    t->failure = status_text(t->status) + ": more than " + std::to_string(kMaxRedirects) +
                 " redirects, or one to a location that is not an http(s) URL";
  } else if (t->status == 416) {
    t->failure = status_text(t->status) + ": range " + std::to_string(t->offset) + "+" +
                 std::to_string(t->length) +
                 " lies past the end of the object: truncated object or bad reference";
  } else if (t->status >= 400 || t->status < 200 || t->status >= 300) {
    t->failure = status_text(t->status) + refusal_hint(*t);
  } else if (t->kind == Transfer::Kind::Range) {
    judge_range(*t);
  }
}

std::string HttpReader::local_refusal(const Transfer& t) const {
  const std::string to =
      redact_location(t.request_url) +
      (t.redirected_by.empty() ? ""
                               : " (a redirect from " + redact_location(t.redirected_by) + ")");
  if (t.unresolved)
    return "refused: " + to +
           " goes through the environment's proxy (http_proxy / https_proxy), which resolves its "
           "host, and the host does not resolve here, so it cannot be checked for a loopback, "
           "link-local or metadata-service address, which a location that a remote source names "
           "(a reference, metadata, a redirect) may not reach; allow_local_references: true if "
           "you trust the source";
  const std::string what = t.refused_address == t.request_url
                               ? to + " names"
                               : to + " resolves to " + t.refused_address + ",";
  return "refused: " + what +
         " a loopback, link-local or metadata-service address or one of this machine's own, and a "
         "location that a remote "
         "source names (a reference, metadata, a redirect) may not reach this machine or its "
         "cloud's services; allow_local_references: true if you trust the source (a cache "
         "store's endpoint may not redirect there)";
}

std::string HttpReader::refusal_hint(const Transfer& t) const {
  if (t.status != 403 && t.status != 401) return "";
  std::string hint = s3_ ? " (check the credentials: storage_options key/secret, "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE; anon: true "
                           "for a public bucket)"
                         : " (storage_options headers may need an authorisation header)";
  if (!t.in_scope)
    hint += "; the credentials were not sent: " + scope_of(t.location) +
            " is not in the options' hosts (add it to `hosts` if it should have them)";
  return hint;
}

namespace {

[[noreturn]] void fail(const HttpReader::Transfer& t, int retries) {
  if (t.missing) throw Error::source_missing(t.location, t.failure);
  if (t.transient)
    throw Error::transient(t.location, t.failure + " (still failing after " +
                                           counted(retries, "retry", "retries") + ")");
  throw Error::source(t.location, t.failure);
}

struct MergedPiece {
  std::size_t index;  // into the ranges asked for
  uint64_t at;        // offset inside the merged body
};

// Ranges of one object closer than kMergeGap are fetched as one request (fewer round trips;
// NetCDF-4 chunks usually sit next to each other), up to kMergeMax bytes a request. `pieces`
// gets each request's ranges, in the order of `at`.
std::vector<HttpReader::Transfer> merged_requests(const std::vector<RangeRequest>& ranges,
                                                  std::vector<std::vector<MergedPiece>>& pieces) {
  constexpr uint64_t kMergeGap = 8 << 10;
  constexpr uint64_t kMergeMax = 16 << 20;
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < ranges.size(); ++i)
    if (ranges[i].length > 0) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(ranges[a].location, ranges[a].offset) <
           std::tie(ranges[b].location, ranges[b].offset);
  });
  std::vector<HttpReader::Transfer> todo;
  for (const std::size_t i : order) {
    const RangeRequest& r = ranges[i];
    if (!todo.empty()) {
      HttpReader::Transfer& t = todo.back();
      const uint64_t end = t.offset + t.length;
      if (t.location == r.location && r.offset >= t.offset && r.offset <= end + kMergeGap &&
          std::max(end, r.offset + r.length) - t.offset <= kMergeMax) {
        t.length = std::max(end, r.offset + r.length) - t.offset;
        pieces.back().push_back({i, r.offset - t.offset});
        continue;
      }
    }
    HttpReader::Transfer t;
    t.location = r.location;
    t.offset = r.offset;
    t.length = r.length;
    todo.push_back(std::move(t));
    pieces.push_back({{i, 0}});
  }
  return todo;
}

}  // namespace

std::vector<Bytes> HttpReader::read_many(const std::vector<RangeRequest>& ranges) {
  std::vector<std::vector<MergedPiece>> pieces;
  std::vector<Transfer> todo = merged_requests(ranges, pieces);
  std::vector<Bytes> out(ranges.size());
  for (std::size_t k = 0; k < todo.size(); ++k) {
    if (pieces[k].size() == 1) continue;
    for (const MergedPiece& p : pieces[k]) {  // in the order of `at`
      out[p.index].resize(ranges[p.index].length);
      todo[k].scatter.push_back({p.at, &out[p.index]});
    }
  }
  run(todo);
  for (std::size_t k = 0; k < todo.size(); ++k) {
    if (!todo[k].failure.empty()) fail(todo[k], http_retries());
    if (pieces[k].size() == 1) {
      bytes_read_ += todo[k].body.size();
      out[pieces[k][0].index] = std::move(todo[k].body);
    } else {
      bytes_read_ += todo[k].received;  // already in its pieces (a 206 or a 200)
    }
  }
  return out;
}

Bytes HttpReader::read(const std::string& location, uint64_t offset, uint64_t length) {
  return std::move(read_many({RangeRequest{location, offset, length}})[0]);
}

std::optional<Bytes> HttpReader::get(const std::string& location) {
  bool too_large = false;  // never set without a bound: past http_max_document() it throws
  return get_at_most(location, UINT64_MAX, too_large);
}

std::optional<Bytes> HttpReader::get_at_most(const std::string& location, uint64_t max_bytes,
                                             bool& too_large) {
  std::vector<Transfer> t(1);
  t[0].location = location;
  t[0].kind = Transfer::Kind::Whole;
  t[0].max_body = max_bytes;
  run(t);
  too_large = t[0].overflow && max_bytes != UINT64_MAX;
  if (t[0].missing || too_large) return std::nullopt;
  if (!t[0].failure.empty()) fail(t[0], http_retries());
  bytes_read_ += t[0].body.size();
  return std::move(t[0].body);
}

std::vector<ObjectInfo> HttpReader::info_many(const std::vector<std::string>& locations) {
  std::vector<Transfer> t(locations.size());
  for (std::size_t i = 0; i < locations.size(); ++i) {
    t[i].location = locations[i];
    t[i].kind = Transfer::Kind::Head;
  }
  run(t);
  std::vector<ObjectInfo> out(locations.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].missing) continue;
    if (!t[i].failure.empty()) fail(t[i], http_retries());
    out[i].exists = true;
    out[i].size = t[i].content_length >= 0 ? static_cast<uint64_t>(t[i].content_length) : 0;
    out[i].etag = version_of(t[i]);
  }
  return out;
}

ObjectInfo HttpReader::info(const std::string& location) {
  return info_many({location})[0];
}

void HttpReader::send(std::vector<HttpSend>& requests) {
  std::vector<Transfer> t(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    t[i].location = requests[i].location;
    t[i].kind = Transfer::Kind::Send;
    t[i].send = &requests[i];
  }
  run(t);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    HttpSend& r = requests[i];
    r.status = t[i].status;
    r.response = std::move(t[i].body);
    r.etag = t[i].etag;
    r.failure = t[i].failure;
    r.transient = t[i].transient;
  }
}

std::string HttpReader::list_page(const std::string& prefix_location, const std::string& url) {
  std::vector<Transfer> t(1);
  t[0].location = prefix_location;
  t[0].kind = Transfer::Kind::List;
  t[0].url = url;  // a listing is a request on the bucket itself, not on an object
  t[0].in_scope = options_.secrets_reach(prefix_location);
  {
    std::lock_guard lock(mutex_);
    retry({&t[0]}, false);  // a listing is no object of the plan: no version to check
  }
  if (t[0].transient)
    throw Error::transient(prefix_location, "cannot list the bucket: " + t[0].failure);
  if (!t[0].failure.empty())
    throw Error::source(prefix_location, "cannot list the bucket: " + t[0].failure);
  return std::string(t[0].body.begin(), t[0].body.end());
}

std::vector<std::pair<std::string, uint64_t>> HttpReader::list(const std::string& prefix_location) {
  return list_at_most(prefix_location, SIZE_MAX);
}

namespace {

// One ListObjectsV2 page's keys under `prefix` (made relative), at most `room` of them, with
// sizes; how many it added.
std::size_t add_page_keys(const std::string& xml, const std::string& prefix, std::size_t room,
                          const std::string& where,
                          std::vector<std::pair<std::string, uint64_t>>& out) {
  const auto keys = xml_values(xml, "Key");
  const auto sizes = xml_values(xml, "Size");
  if (keys.size() != sizes.size())
    throw Error::source(where, "unexpected S3 list answer (Key and Size counts differ)");
  std::size_t added = 0;
  for (std::size_t i = 0; i < keys.size() && added < room; ++i)
    if (keys[i].rfind(prefix, 0) == 0 && keys[i].size() > prefix.size()) {
      out.emplace_back(keys[i].substr(prefix.size()),
                       static_cast<uint64_t>(std::strtoull(sizes[i].c_str(), nullptr, 10)));
      ++added;
    }
  return added;
}

}  // namespace

std::vector<std::pair<std::string, uint64_t>> HttpReader::list_at_most(
    const std::string& prefix_location, std::size_t max) {
  if (!s3_)
    throw Error::source(prefix_location,
                        "a plain HTTP server cannot list its objects: a Zarr store over HTTP needs "
                        "consolidated metadata (.zmetadata)");
  std::string rest = prefix_location.substr(5);
  const auto slash = rest.find('/');
  const std::string bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  std::vector<std::pair<std::string, uint64_t>> out;
  std::set<std::string> tokens;  // a server repeating one would have us page forever
  std::string token;
  uint64_t empty_run = 0;
  for (uint64_t page = 0; out.size() < max; ++page) {
    if (page >= kMaxListPages || out.size() > s3_max_list_entries())
      throw Error::source(prefix_location, "the listing exceeds " + std::to_string(kMaxListPages) +
                                               " pages or ZP_S3_MAX_LIST_ENTRIES (" +
                                               std::to_string(s3_max_list_entries()) + ") objects");
    // Query parameters in sorted order and encoded as SigV4's canonical request has them; a page
    // asks for no more keys than are still wanted.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + aws_encode(token, false) + "&";
    query +=
        "list-type=2&max-keys=" + std::to_string(std::min<std::size_t>(1000, max - out.size())) +
        "&prefix=" + aws_encode(prefix, false);
    const std::string xml =
        list_page(prefix_location, s3settings_.bucket_url(bucket) + "/?" + query);
    const std::size_t added = add_page_keys(xml, prefix, max - out.size(), prefix_location, out);
    const auto truncated = xml_values(xml, "IsTruncated");
    const auto next = xml_values(xml, "NextContinuationToken");
    if (truncated.empty() || truncated[0] != "true" || next.empty()) break;
    // Pages without a key that say more follows happen (a versioned bucket's run of delete
    // markers), but not without end.
    empty_run = added == 0 ? empty_run + 1 : 0;
    if (empty_run > kMaxEmptyListPages)
      throw Error::source(prefix_location,
                          "the S3 listing sent " + std::to_string(empty_run) +
                              " pages in a row without a key under the prefix that say more "
                              "follows: refused");
    token = next[0];
    if (!tokens.insert(token).second)
      throw Error::source(prefix_location,
                          "the S3 listing repeats its continuation token "
                          "(page " +
                              std::to_string(page + 1) + "): refused");
  }
  return out;
}

}  // namespace zp
