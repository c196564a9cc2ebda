#include "store/s3_writer.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <set>

#include "core/error.hpp"
#include "store/object_digest.hpp"
#include "store/url_scope.hpp"

namespace zp {

namespace {

[[noreturn]] void fail(const HttpSend& r, const std::string& what) {
  if (r.transient)
    throw Error::transient(r.location, what + ": " + r.failure + " (still failing after " +
                                           std::to_string(http_retries()) + " retries)");
  throw Error::store(r.location, what + ": " + r.failure);
}

// A query value encoded as SigV4 wants it (only A-Z a-z 0-9 - . _ ~ left as they are).
std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  if (!e) throw Error::internal("curl_easy_escape failed");
  std::string out(e);
  curl_free(e);
  return out;
}

// The text of the first <tag> element of an S3 XML answer ("" when there is none).
std::string xml_value(const Bytes& body, const std::string& tag) {
  const std::string xml(body.begin(), body.end());
  const auto at = xml.find("<" + tag + ">");
  if (at == std::string::npos) return "";
  const auto from = at + tag.size() + 2;
  const auto to = xml.find("</" + tag + ">", from);
  return to == std::string::npos ? "" : xml.substr(from, to - from);
}

// The texts of every <tag> element of an S3 XML answer, in order.
std::vector<std::string> xml_values(const Bytes& body, const std::string& tag) {
  const std::string xml(body.begin(), body.end());
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  std::vector<std::string> out;
  for (auto at = xml.find(open); at != std::string::npos; at = xml.find(open, at)) {
    const auto from = at + open.size();
    const auto to = xml.find(close, from);
    if (to == std::string::npos) break;
    out.push_back(xml.substr(from, to - from));
    at = to + close.size();
  }
  return out;
}

// Errors reading the store are the store's (exit 5), not a source's.
template <typename F>
auto as_store_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Source) throw;
    throw Error(ErrorKind::Store, e.what());
  }
}

// A job's chunks: PUTs gathered until kInFlight are waiting, then sent together.
class S3Batch : public WriteBatch {
 public:
  explicit S3Batch(const S3Writer& writer) : writer_(writer) {}
  void put(const std::string& key, const std::vector<const Bytes*>& parts) override {
    Bytes joined;
    for (const Bytes* p : parts) joined.insert(joined.end(), p->begin(), p->end());
    std::vector<std::pair<std::string, Bytes>> wave;
    {
      const std::lock_guard guard(mutex_);
      pending_.emplace_back(key, std::move(joined));
      if (pending_.size() < S3Writer::kInFlight) return;
      wave.swap(pending_);
    }
    send(wave);
  }
  void finish() override {
    std::vector<std::pair<std::string, Bytes>> wave;
    {
      const std::lock_guard guard(mutex_);
      wave.swap(pending_);
    }
    send(wave);
  }

 private:
  void send(const std::vector<std::pair<std::string, Bytes>>& wave) {
    std::vector<std::pair<std::string, const Bytes*>> objects;
    for (const auto& [key, value] : wave) objects.emplace_back(key, &value);
    writer_.put_many(objects);
  }
  const S3Writer& writer_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, Bytes>> pending_;
};

// The MD5 a PUT was sent with (its Content-MD5 header), else computed: hashing every body a
// second time cost W9 a tenth of its CPU.
std::string sent_md5_hex(const HttpSend& r) {
  static const std::string name = "Content-MD5: ";
  for (const auto& h : r.headers)
    if (h.rfind(name, 0) == 0)
      if (auto hex = md5_hex_from_base64(h.substr(name.size())); !hex.empty()) return hex;
  return md5_hex(*r.body);
}

// The ETag of a single-part PUT is the MD5 of what the server stored (S3 without SSE-KMS/SSE-C,
// MinIO, Ceph, s3rver): checked unless ZP_S3_CHECK_ETAG=0. An ETag that is no MD5 is not judged.
bool etag_matches(const HttpSend& r) {
  static const bool check = [] {
    const char* v = std::getenv("ZP_S3_CHECK_ETAG");
    return !(v && std::string(v) == "0");
  }();
  std::string etag = r.etag;
  etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
  if (!check || etag.size() != 32 || !r.body) return true;
  for (char& c : etag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return etag == sent_md5_hex(r);
}

}  // namespace

HttpSend s3_put_request(const std::string& location, const Bytes& value, const std::string& query) {
  HttpSend r;
  r.method = "PUT";
  r.location = location;
  r.query = query;
  r.body = &value;
  r.body_sha256 = sha256_hex_of(value);
  // "Expect:" (empty): no 100-continue round trip before each body.
  r.headers = {"Content-MD5: " + md5_base64(value), "Content-Type: application/octet-stream",
               "Expect:"};
  return r;
}

S3Writer::S3Writer(std::string root, const StorageOptions& options) {
  while (!root.empty() && root.back() == '/') root.pop_back();
  if (root.rfind("s3://", 0) != 0 || root.size() <= 5)
    throw Error::config("cache_store", "not an s3://bucket/prefix URL: " + root);
  root_ = std::move(root);
  StorageOptions scoped = options;
  scoped.hosts = std::vector<std::string>{scope_of(root_)};  // the secrets go to this bucket only
  http_ = std::make_unique<HttpReader>(scoped, true);
}

uint64_t S3Writer::multipart_threshold() {
  const char* v = std::getenv("ZP_S3_MULTIPART_MB");
  const long mb = v && *v ? std::strtol(v, nullptr, 10) : 64;
  return static_cast<uint64_t>(std::clamp(mb, 5L, 5L * 1024)) << 20;
}

std::string S3Writer::location_of(const std::string& key) const {
  check_safe_key(key);
  return root_ + "/" + key;
}

void S3Writer::put(const std::string& key, const Bytes& value, Sync) const {
  put_many({{key, &value}});
}

void S3Writer::put(const std::string& key, const std::string& value, Sync sync) const {
  put(key, Bytes(value.begin(), value.end()), sync);
}

void S3Writer::put_many(const std::vector<std::pair<std::string, const Bytes*>>& objects) const {
  std::vector<HttpSend> small;
  for (const auto& [key, value] : objects) {
    if (value->size() >= multipart_threshold())
      put_multipart(key, *value);
    else
      small.push_back(s3_put_request(location_of(key), *value));
  }
  // A server that stored other bytes than were sent (a body changed on the way, which a server
  // that ignores Content-MD5 accepts) answers with another ETag: put again, then give up.
  for (int attempt = 0; !small.empty(); ++attempt) {
    http_->send(small);  // at most ZP_HTTP_CONCURRENCY (16) in flight
    std::vector<HttpSend> again;
    for (HttpSend& r : small) {
      if (!r.failure.empty()) fail(r, "cannot put it");
      if (etag_matches(r)) continue;
      if (attempt >= http_retries()) refuse_stored(r);
      again.push_back(s3_put_request(r.location, *r.body));
    }
    small = std::move(again);
  }
}

void S3Writer::refuse_stored(const HttpSend& r) const {
  const std::string etag = r.etag;
  std::vector<HttpSend> gone(1);
  gone[0].method = "DELETE";
  gone[0].location = r.location;
  http_->send(gone);  // never left holding bytes that are not the value
  throw Error::store(r.location, "the server kept storing other bytes than were sent (its ETag " +
                                     etag + ", the MD5 of the value " + md5_hex(*r.body) +
                                     "): deleted; ZP_S3_CHECK_ETAG=0 where ETags are not MD5s "
                                     "(SSE-KMS)");
}

bool S3Writer::put_if_absent(const std::string& key, const std::string& value) const {
  const Bytes bytes(value.begin(), value.end());
  std::vector<HttpSend> r{s3_put_request(location_of(key), bytes)};
  r[0].headers.push_back("If-None-Match: *");
  http_->send(r);
  if (r[0].status == 412 || r[0].status == 409) {
    // 412: an object is there. A retried PUT may have found its own first try, whose bytes are
    // ours (callers put unique values: ids, hosts, times).
    const auto now = get(key);
    return now && *now == value;
  }
  if (!r[0].failure.empty()) fail(r[0], "cannot create it");
  return true;
}

std::optional<std::string> S3Writer::get(const std::string& key) const {
  const std::string location = location_of(key);
  const auto bytes = as_store_error([&] { return http_->get(location); });
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::optional<std::string> S3Writer::get_at_most(const std::string& key, uint64_t max_bytes) const {
  const std::string location = location_of(key);
  bool too_large = false;
  const auto bytes =
      as_store_error([&] { return http_->get_at_most(location, max_bytes, too_large); });
  if (!bytes) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::optional<Tagged> S3Writer::get_tagged(const std::string& key) const {
  std::vector<HttpSend> r(1);
  r[0].method = "GET";
  r[0].location = location_of(key);
  http_->send(r);
  if (r[0].status == 404) return std::nullopt;
  if (!r[0].failure.empty()) fail(r[0], "cannot read it");
  if (r[0].etag.empty()) throw Error::store(r[0].location, "the server sent no ETag with it");
  return Tagged{std::string(r[0].response.begin(), r[0].response.end()), r[0].etag};
}

std::optional<std::string> S3Writer::put_if_match(const std::string& key, const std::string& value,
                                                  const std::string& tag) const {
  const Bytes bytes(value.begin(), value.end());
  std::vector<HttpSend> r{s3_put_request(location_of(key), bytes)};
  r[0].headers.push_back("If-Match: " + tag);
  http_->send(r);
  if (r[0].status == 412 || r[0].status == 409 || r[0].status == 404) {
    // 412: another version is there; 409: a concurrent conditional write won. A retried PUT may
    // have found its own first try (callers put unique values: holders and times).
    const auto now = get_tagged(key);
    if (now && now->value == value) return now->tag;
    return std::nullopt;
  }
  if (!r[0].failure.empty()) fail(r[0], "cannot replace it");
  return r[0].etag;
}

bool S3Writer::exists(const std::string& key) const {
  const std::string location = location_of(key);
  return as_store_error([&] { return http_->info(location).exists; });
}

void S3Writer::remove(const std::string& key) const {
  std::vector<HttpSend> r(1);
  r[0].method = "DELETE";
  r[0].location = location_of(key);
  http_->send(r);
  if (!r[0].failure.empty() && r[0].status != 404) fail(r[0], "cannot delete it");
}

void S3Writer::remove_many(const std::vector<std::string>& keys) const {
  std::vector<HttpSend> r(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    r[i].method = "DELETE";
    r[i].location = location_of(keys[i]);
  }
  http_->send(r);  // at most ZP_HTTP_CONCURRENCY in flight
  for (const HttpSend& one : r)
    if (!one.failure.empty() && one.status != 404) fail(one, "cannot delete it");
}

std::vector<std::pair<std::string, uint64_t>> S3Writer::list_all(const std::string& prefix) const {
  const std::string location = prefix.empty() ? root_ : location_of(prefix);
  return as_store_error([&] { return http_->list(location); });
}

std::vector<std::string> S3Writer::list(const std::string& prefix) const {
  return list_at_most(prefix, SIZE_MAX);
}

std::vector<std::string> S3Writer::list_at_most(const std::string& prefix, std::size_t max) const {
  const std::string location = prefix.empty() ? root_ : location_of(prefix);
  // The listing itself stops after `max` objects (pages of max-keys), not after all of them.
  const auto objects = as_store_error([&] { return http_->list_at_most(location, max); });
  std::set<std::string> names;  // objects and the "folders" their keys pass through
  for (const auto& [key, size] : objects) names.insert(key.substr(0, key.find('/')));
  return {names.begin(), names.end()};
}

std::unique_ptr<WriteBatch> S3Writer::batch() const {
  return std::make_unique<S3Batch>(*this);
}

int S3Writer::open_append(const std::string& key) const {
  throw Error::store(location_of(key), "an object in an object store cannot be appended to");
}

void S3Writer::put_multipart(const std::string& key, const Bytes& value) const {
  const std::string location = location_of(key);
  std::vector<HttpSend> start(1);
  start[0].method = "POST";
  start[0].location = location;
  start[0].query = "uploads=";
  http_->send(start);
  if (!start[0].failure.empty()) fail(start[0], "cannot start a multipart upload");
  const std::string id = xml_value(start[0].response, "UploadId");
  if (id.empty()) throw Error::store(location, "the answer to a multipart upload has no UploadId");
  try {
    const std::string xml = upload_parts(location, id, value);
    const Bytes body(xml.begin(), xml.end());
    std::vector<HttpSend> done{s3_put_request(location, body, "uploadId=" + escape(id))};
    done[0].method = "POST";
    http_->send(done);
    if (!done[0].failure.empty()) fail(done[0], "cannot complete its multipart upload");
    // S3 may answer 200 and still report an error in the body.
    if (!xml_value(done[0].response, "Code").empty())
      throw Error::store(location, "the server did not complete its multipart upload: " +
                                       xml_value(done[0].response, "Code"));
  } catch (...) {
    // Aborted, so no parts stay in the bucket (best effort: a lifecycle rule is the backstop).
    abort_upload(key, id);
    throw;
  }
}

std::string S3Writer::upload_parts(const std::string& location, const std::string& upload_id,
                                   const Bytes& value) const {
  const uint64_t part = multipart_threshold();
  const std::size_t n = static_cast<std::size_t>((value.size() + part - 1) / part);
  std::vector<Bytes> pieces(n);
  std::vector<HttpSend> requests;
  for (std::size_t i = 0; i < n; ++i) {
    const auto from = value.begin() + static_cast<std::ptrdiff_t>(i * part);
    const auto to = value.begin() +
                    static_cast<std::ptrdiff_t>(std::min<uint64_t>(value.size(), (i + 1) * part));
    pieces[i].assign(from, to);
    requests.push_back(
        s3_put_request(location, pieces[i],
                       "partNumber=" + std::to_string(i + 1) + "&uploadId=" + escape(upload_id)));
  }
  http_->send(requests);
  std::string xml = "<CompleteMultipartUpload>";
  for (std::size_t i = 0; i < n; ++i) {
    if (!requests[i].failure.empty())
      fail(requests[i], "cannot upload part " + std::to_string(i + 1));
    if (!etag_matches(requests[i]))  // the part stored is not the part sent: aborted by the caller
      throw Error::store(location, "part " + std::to_string(i + 1) +
                                       " of its multipart upload was stored with other bytes "
                                       "than were sent (ETag " +
                                       requests[i].etag + ")");
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + requests[i].etag +
           "</ETag></Part>";
  }
  return xml + "</CompleteMultipartUpload>";
}

bool S3Writer::abort_upload(const std::string& key, const std::string& upload_id) const {
  std::vector<HttpSend> abort(1);
  abort[0].method = "DELETE";
  abort[0].location = location_of(key);
  abort[0].query = "uploadId=" + escape(upload_id);
  http_->send(abort);
  return abort[0].failure.empty() || abort[0].status == 404;  // 404: NoSuchUpload, gone already
}

std::optional<std::vector<std::pair<std::string, std::string>>> S3Writer::uploads_in_progress()
    const {
  const std::string rest = root_.substr(5);
  const auto slash = rest.find('/');
  const std::string bucket = rest.substr(0, slash);
  const std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1) + "/";
  std::vector<std::pair<std::string, std::string>> out;
  std::string key_marker, id_marker;
  for (int page = 0; page < kMaxUploadPages; ++page) {
    std::vector<HttpSend> r(1);
    r[0].method = "GET";
    r[0].location = "s3://" + bucket + "/";  // a request on the bucket itself
    // Query parameters sorted and encoded as SigV4 signs them.
    r[0].query = (key_marker.empty() ? "" : "key-marker=" + escape(key_marker) + "&") +
                 "prefix=" + escape(prefix) +
                 (id_marker.empty() ? "" : "&upload-id-marker=" + escape(id_marker)) + "&uploads=";
    http_->send(r);
    if (r[0].status == 501 || r[0].status == 405) return std::nullopt;  // not implemented here
    if (!r[0].failure.empty()) fail(r[0], "cannot list its multipart uploads");
    const auto keys = xml_values(r[0].response, "Key");
    const auto ids = xml_values(r[0].response, "UploadId");
    if (keys.size() != ids.size())
      throw Error::store(root_,
                         "unexpected answer listing its multipart uploads (Key and "
                         "UploadId counts differ)");
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i].rfind(prefix, 0) == 0 && keys[i].size() > prefix.size())
        out.emplace_back(keys[i].substr(prefix.size()), ids[i]);
    if (xml_value(r[0].response, "IsTruncated") != "true") return out;
    const std::string next_key = xml_value(r[0].response, "NextKeyMarker");
    const std::string next_id = xml_value(r[0].response, "NextUploadIdMarker");
    if (next_key.empty() || (next_key == key_marker && next_id == id_marker)) return out;
    key_marker = next_key;
    id_marker = next_id;
  }
  return out;  // the first pages' uploads: the rest are for the bucket's lifecycle rule
}

bool S3Writer::conditional_puts_honoured() const {
  std::call_once(probe_once_, [&] {
    std::random_device rd;
    const std::string key = ".zarr-parallel/probe-" + std::to_string(rd()) + std::to_string(rd());
    put(key, std::string("first"));
    honoured_ = !put_if_absent(key, "second");
    try {  // If-Match came later to S3 (2024-11) than If-None-Match: asked separately
      honoured_ = honoured_ && !put_if_match(key, "third", "\"00000000000000000000000000000000\"");
    } catch (const Error&) {
      honoured_ = false;  // 501 Not Implemented and the like
    }
    remove(key);
  });
  return honoured_;
}

}  // namespace zp
