// S3Writer: a cache store under an S3 prefix (s3://bucket/prefix/x.zarr) as a Writable. Requests
// go through HttpReader::send, so they share its connections, SigV4 signing, scope of the
// secrets and retries with backoff of transient failures (5xx, 429, timeouts, resets).
// - Every PUT carries Content-MD5 (S3 refuses a body that does not match: 400 BadDigest) and its
//   signed x-amz-content-sha256; the answer's ETag is checked against the MD5 too, for servers
//   that ignore Content-MD5 (s3rver): a mismatch is put again, and after the retries deleted and
//   Error(Store).
// - Objects larger than the multipart threshold go as a multipart upload, parts in parallel; a
//   failed upload is aborted (DELETE ?uploadId), so no parts are left billed in the bucket.
// - put_if_absent is a PUT with If-None-Match: * (412: someone else's object is there), and
//   put_if_match one with If-Match: ETAG (412: another version is there). A server that ignores
//   the headers (older S3-compatible stores, s3rver) replaces the object instead:
//   conditional_puts_honoured() finds out once, by trying.
// - A batch keeps up to kInFlight PUTs in flight; finish() returns when all have been answered.
// Credentials live in the options only: never in a key, a location or an error message.
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "store/http_reader.hpp"
#include "store/writable.hpp"

namespace zp {

class S3Writer : public Writable {
 public:
  static constexpr std::size_t kInFlight = 16;

  // `root`: s3://bucket[/prefix]; a trailing '/' is dropped.
  S3Writer(std::string root, const StorageOptions& options);

  const std::string& root() const override { return root_; }
  std::string location_of(const std::string& key) const override;

  void put(const std::string& key, const Bytes& value, Sync sync = Sync::Durable) const override;
  void put(const std::string& key, const std::string& value,
           Sync sync = Sync::Durable) const override;
  bool put_if_absent(const std::string& key, const std::string& value) const override;
  std::optional<std::string> get(const std::string& key) const override;
  // Receives no more than `max_bytes` of the object (a hostile bucket's endless or 512 MB answer
  // to a 64 KiB bookkeeping read): larger is nullopt, as absent, as FileStore answers.
  std::optional<std::string> get_at_most(const std::string& key, uint64_t max_bytes) const override;
  std::optional<Tagged> get_tagged(const std::string& key) const override;
  // A PUT with If-Match: the ETag (S3 since 2024, MinIO, Ceph). On a server that ignores it
  // (s3rver) the object is replaced whatever its version: conditional_puts_honoured() says so
  // beforehand.
  std::optional<std::string> put_if_match(const std::string& key, const std::string& value,
                                          const std::string& tag) const override;
  bool exists(const std::string& key) const override;
  void remove(const std::string& key) const override;
  // Deletes every key of `keys` (absent ones too), up to kInFlight requests in flight.
  void remove_many(const std::vector<std::string>& keys) const;
  std::vector<std::string> list(const std::string& prefix) const override;
  std::vector<std::string> list_at_most(const std::string& prefix, std::size_t max) const override;
  // Every key below the root (recursively), with sizes: what a foreign-prefix check looks at.
  std::vector<std::pair<std::string, uint64_t>> list_all(const std::string& prefix) const;
  void sync_folders(const std::set<std::string>&) const override {}  // a PUT is durable
  std::unique_ptr<WriteBatch> batch() const override;
  int open_append(const std::string& key) const override;  // Error(Store): objects cannot grow

  // Puts several objects at once (at most kInFlight requests in flight); Error naming the first
  // that failed. Objects over the multipart threshold go one by one as multipart uploads.
  void put_many(const std::vector<std::pair<std::string, const Bytes*>>& objects) const;
  // Whether the server refuses a PUT with If-None-Match: * over an existing object and one with
  // If-Match: another ETag (probed once under the root, with an object deleted afterwards).
  bool conditional_puts_honoured() const;
  // The multipart uploads in progress under the root (ListMultipartUploads), as {key below the
  // root, upload id}: untrusted, like any answer. nullopt when the server cannot list them
  // (s3rver: 501 Not Implemented). At most kMaxUploadPages pages.
  std::optional<std::vector<std::pair<std::string, std::string>>> uploads_in_progress() const;
  // Aborts upload `upload_id` of `key` (so its parts are not kept and billed); false when the
  // server refused (one already gone counts as aborted).
  bool abort_upload(const std::string& key, const std::string& upload_id) const;
  static constexpr int kMaxUploadPages = 100;
  // Objects at least this large go as multipart uploads: ZP_S3_MULTIPART_MB (default 64, at
  // least 5, the smallest part S3 accepts).
  static uint64_t multipart_threshold();

 private:
  void put_multipart(const std::string& key, const Bytes& value) const;
  [[noreturn]] void refuse_stored(const HttpSend& r) const;
  std::string upload_parts(const std::string& location, const std::string& upload_id,
                           const Bytes& value) const;

  std::string root_;
  std::unique_ptr<HttpReader> http_;
  mutable std::once_flag probe_once_;
  mutable bool honoured_ = false;
};

// The S3 request that puts `value` at `location`: Content-MD5, the signed payload hash and the
// content type; `query` for a part of a multipart upload.
HttpSend s3_put_request(const std::string& location, const Bytes& value,
                        const std::string& query = "");

}  // namespace zp
