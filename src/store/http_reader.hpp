// HttpReader: HTTP(S) and S3 objects as a Readable backend, through libcurl. One multi handle per
// reader keeps connections open between requests (HTTP/2 multiplexing where the server offers it);
// read_many and info_many run their requests concurrently (at most `concurrency` at once).
// Transient failures (timeouts, resets, 429 and 5xx, short bodies) are retried with exponential
// backoff and jitter; after the last try they are Error(Transient). 401/403/404 and other 4xx are
// Error(Source) naming the URL and the HTTP status. S3 locations (s3://bucket/key) are mapped to
// the endpoint (virtual-hosted on AWS, path-style on a custom endpoint) and signed with libcurl's
// SigV4. Headers and signing go only to locations in the options' scope (StorageOptions::hosts),
// and redirects to another origin drop them. Thread-safe: requests from different threads take
// turns on the multi handle.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "store/address_rule.hpp"
#include "store/readable.hpp"
#include "store/storage_options.hpp"

struct curl_slist;

namespace zp {

// Where S3 requests go and how they are signed, resolved once from the options and the standard
// AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
// AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3), AWS_PROFILE with AWS_SHARED_CREDENTIALS_FILE or
// ~/.aws/credentials, AWS_CONFIG_FILE or ~/.aws/config).
struct S3Settings {
  std::string endpoint;  // scheme://host[:port], no trailing slash
  bool path_style = true;
  std::string region;
  std::string key, secret, token;  // empty key: unsigned (anonymous) requests

  static S3Settings resolve(const StorageOptions& o);
  // The HTTP(S) URL of s3://bucket/key; the key percent-encoded as SigV4 wants it.
  std::string url_of(const std::string& s3_location) const;
  std::string bucket_url(const std::string& bucket) const;
};

// A request that writes (S3 PUT, POST, DELETE) or whose answer the caller judges itself.
struct HttpSend {
  std::string method;                // PUT, POST, DELETE, GET or HEAD
  std::string location;              // s3://bucket/key, as for reads
  std::string query;                 // "" or "name=value&...": sorted and encoded as SigV4 signs it
  const Bytes* body = nullptr;       // sent as is; must outlive send()
  std::string body_sha256;           // hex SHA-256 of the body ("" without one): signed with it
  std::vector<std::string> headers;  // "Name: value", sent with or without the secrets
  // the outcome
  long status = 0;
  Bytes response;
  std::string etag;
  std::string failure;     // empty on a 2xx answer
  bool transient = false;  // still failing after the retries (5xx, 429, timeouts, resets)
};

class HttpReader : public Readable, public Listable {
 public:
  HttpReader(const StorageOptions& options, bool s3);
  ~HttpReader() override;
  HttpReader(const HttpReader&) = delete;
  HttpReader& operator=(const HttpReader&) = delete;

  Bytes read(const std::string& location, uint64_t offset, uint64_t length) override;
  std::vector<Bytes> read_many(const std::vector<RangeRequest>& ranges) override;
  std::optional<Bytes> get(const std::string& location) override;
  // The whole object when it holds at most `max_bytes` (and http_max_document()); nullopt with
  // `too_large` set when it holds more. The answer is received no further than that, whatever its
  // Content-Length says: an endless or huge body costs that much memory, not the object's size.
  // get() is this without a bound of its own, and throws instead.
  std::optional<Bytes> get_at_most(const std::string& location, uint64_t max_bytes,
                                   bool& too_large);
  ObjectInfo info(const std::string& location) override;
  std::vector<ObjectInfo> info_many(const std::vector<std::string>& locations) override;
  // S3 only (ListObjectsV2); plain HTTP has no listing and says so (Error(Source)).
  std::vector<std::pair<std::string, uint64_t>> list(const std::string& prefix) override;
  // The first `max` objects of list(prefix): pages ask for no more keys than are still wanted
  // (max-keys) and the listing stops there, whatever the server says follows.
  std::vector<std::pair<std::string, uint64_t>> list_at_most(const std::string& prefix,
                                                             std::size_t max);
  // A listing page larger than this is refused (S3's pages of 1,000 keys, each up to 1,024
  // bytes, are under 2 MB).
  static constexpr uint64_t kListPageBytes = uint64_t{16} << 20;
  void expect_version(const std::string& location, uint64_t size, const std::string& etag) override;
  ObjectInfo version_seen(const std::string& location) override;
  bool remote() const override { return true; }
  uint64_t bytes_read() const override { return bytes_read_; }
  // Sends the requests (concurrently, at most http_concurrency() in flight) on the read path:
  // same connections, signing and scope of the secrets, and the same retries with backoff of
  // transient failures. Other answers are not thrown: each request's status and failure are left
  // for the caller to judge (a 412 to a conditional put is an answer, not an error).
  void send(std::vector<HttpSend>& requests);

  struct Transfer;  // one request and its outcome (http_reader.cpp)

 private:
  static constexpr int kMaxRedirects = 5;
  static constexpr uint64_t kMaxListPages = 100000;
  static constexpr uint64_t kMaxEmptyListPages = 1000;
  std::string list_page(const std::string& prefix_location, const std::string& url);
  void run(std::vector<Transfer>& transfers);
  // `versioned`: each answer is checked against the plan's version of its object (check_version).
  void retry(std::vector<Transfer*> pending, bool versioned);
  // One try of each transfer, following redirects (the secrets stay with their origin).
  void run_hops(std::vector<Transfer*>& batch);
  // run_once of the transfers whose URL may be asked for: one that names a local address it may
  // not reach (may_reach_local) fails without a connection.
  void run_admitted(std::vector<Transfer*>& batch);
  // The S3 endpoint or an origin in `hosts`: the user named it.
  bool named_origin(const std::string& url) const;
  bool may_reach_local(const std::string& url) const;
  bool refused_behind_proxy(Transfer& t);
  // May the redirect `t` answered (to t.redirect_to) reach a local address?
  bool redirect_may_reach_local(const Transfer& t) const;
  std::string local_refusal(const Transfer& t) const;
  void run_once(std::vector<Transfer*>& batch);
  void start_transfer(Transfer& t, long timeout);
  // Headers and S3 signing on a CURL*; `payload_sha256` is the body's hash ("" for none).
  curl_slist* add_secrets(void* easy, const std::string& payload_sha256) const;
  void check_version(Transfer& t) const;
  void note_seen(const Transfer& t);  // a read's answer: its object's size and version
  static std::string version_of(const Transfer& t);
  void judge(Transfer& t) const;  // the outcome of one try: failure, transient, missing
  std::string refusal_hint(const Transfer& t) const;
  std::string url_of(const std::string& location) const;

  StorageOptions options_;
  bool s3_;
  S3Settings s3settings_;
  std::mutex mutex_;
  void* multi_ = nullptr;  // CURLM*
  struct Version {
    uint64_t size;
    std::string etag;
  };
  std::map<std::string, Version> expected_;  // guarded by mutex_
  std::map<std::string, Version> seen_;      // guarded by mutex_
  std::set<std::string> mixed_;              // seen in two versions; guarded by mutex_
  std::mutex hosts_mutex_;
  std::map<std::string, HostAnswer> proxied_hosts_;  // by origin; guarded by hosts_mutex_
  std::atomic<uint64_t> bytes_read_{0};
};

// Settings read from the environment, for tests and slow links: ZP_HTTP_RETRIES (tries after the
// first, default 5), ZP_HTTP_CONCURRENCY (requests in flight, default 16), ZP_HTTP_TIMEOUT
// (seconds below 1 KiB/s before a request counts as failed, default 30), ZP_HTTP_DEADLINE
// (seconds one request may take in all, default 600).
int http_retries();
int http_concurrency();
int http_deadline();
// Largest whole object (a reference set, .zmetadata, an S3 listing page) read into memory:
// ZP_HTTP_MAX_DOCUMENT_MB, default 512 MiB.
uint64_t http_max_document();
// Most bytes before the range a 200 answer to a range request (a server that ignores Range) may
// make us receive and drop: ZP_HTTP_MAX_SKIP_MB, default 64 MiB.
uint64_t http_max_range_skip();
// Most objects one S3 listing may name: ZP_S3_MAX_LIST_ENTRIES, default 10 million.
uint64_t s3_max_list_entries();

}  // namespace zp
