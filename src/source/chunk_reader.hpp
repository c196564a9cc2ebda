// ChunkReader: turns a manifest entry into decoded chunk bytes (the chunk's own shape,
// Variable::chunk_shape_of; native byte order): read the byte range (through the store table:
// files, HTTP, S3), run the codec chain backwards, byte-swap if stored big-endian. Missing chunks
// come back filled with the variable's missing_chunk_value. Thread-safe: local ranges are read with
// pread in parallel; remote ones are best fetched together first (fetch_many); only netCDF-3 slabs
// serialise (netCDF-C is not thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>

#include "source/dataset.hpp"
#include "source/fingerprint.hpp"
#include "store/store_table.hpp"

namespace zp {

// Stored bytes of a remote chunk read before the plan's fingerprints were known (the coordinates,
// read for the plan), with the size and version of its object that answer carried: a later
// reader uses them instead of a second request only when they are the version it expects.
struct KeptChunk {
  std::string location;
  uint64_t offset = 0, length = 0;
  ObjectInfo seen;  // exists=false: the answer gave no size, never used
  Bytes bytes;
};
using KeptChunks = std::vector<KeptChunk>;
// Most stored bytes kept so (coordinates are small; larger ones are read again as before).
inline constexpr uint64_t kKeptChunkBytes = uint64_t{16} << 20;

class ChunkReader {
 public:
  explicit ChunkReader(const Dataset& ds) : ds_(ds), access_(ds.access) {}

  // `raw`: the chunk's stored bytes when already fetched (fetch_many), else read here.
  Bytes read(const Variable& v, int64_t chunk_index, std::optional<Bytes> raw = std::nullopt);
  // The same, decoded straight into `out` (v.chunk_bytes() bytes at most: the chunk's place in an
  // output buffer), without a buffer of its own.
  void read_into(const Variable& v, int64_t chunk_index, std::optional<Bytes> raw,
                 unsigned char* out);
  // True when the variable's chunks live behind a network: fetch them together, then decode.
  bool remote(const Variable& v) const;
  // The chunk's byte range (Range chunks only) and its object's size and version as the last
  // read of it saw them (Readable::version_seen).
  KeptChunk kept(const Variable& v, int64_t chunk_index, Bytes bytes);
  // Stored bytes of the byte-range chunks among `indices` (concurrent requests when remote);
  // nullopt for the others (inline, missing, slabs).
  std::vector<std::optional<Bytes>> fetch_many(const Variable& v,
                                               const std::vector<int64_t>& indices);
  // The same for chunks of several variables: one round of concurrent requests for all.
  struct ChunkOf {
    const Variable* v;
    int64_t index;
  };
  std::vector<std::optional<Bytes>> fetch_many(const std::vector<ChunkOf>& chunks);
  // Files must still be as planned: the first read of each in a job compares it with its
  // fingerprint and fails (Error(Source), naming the file) when it changed. Once called, a file
  // absent from `fingerprints` is never read (Error(Store), naming it).
  void expect(const std::vector<Fingerprint>& fingerprints);
  // A job's bracket: files are checked again at the end of each job they were read in, so a
  // file rewritten while a job read it fails that job, and a worker running job after job
  // checks each file in each job.
  void start_job();
  void check_files_read_unchanged();
  // Source bytes read so far (compressed sizes, inline data included).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  const Dataset& ds_;
  SourceAccess access_;
  std::atomic<uint64_t> bytes_read_{0};
  void check_unchanged(uint32_t file);
  // Error(Source) naming the file when it no longer matches its fingerprint (`when`: the message).
  void compare(uint32_t file, const char* when);
  // The chunk's stored bytes (read here unless fetched); nullopt for a missing chunk.
  std::optional<Bytes> stored(const Variable& v, int64_t chunk_index, std::optional<Bytes> fetched);
  std::unordered_map<std::string, Fingerprint> expected_;  // local files
  std::set<std::string> planned_;                          // every file of the sources
  bool expecting_ = false;
  std::mutex checked_mutex_;
  std::set<uint32_t> checked_;
};

// The whole of a 1-D variable (a coordinate), native byte order; `fetched`: its chunks' stored
// bytes when fetched already (fetch_whole_1d), else read here.
Bytes read_whole_1d(ChunkReader& reader, const Variable& v,
                    std::vector<std::optional<Bytes>> fetched = {});
// The stored bytes of every chunk of the remote 1-D variables among `vars` (null: none), fetched
// together (one round trip for all coordinates, not one per chunk); an empty list for the others.
// `kept`, when given, also gets a copy of each fetched chunk with its object's version seen
// (up to kKeptChunkBytes in all).
std::vector<std::vector<std::optional<Bytes>>> fetch_whole_1d(
    ChunkReader& reader, const std::vector<const Variable*>& vars, KeptChunks* kept = nullptr);

// Location of a chunk for messages: "file.nc, variable 'd2m', chunk (0, 1, 2)".
std::string chunk_location(const Dataset& ds, const Variable& v, int64_t chunk_index);

}  // namespace zp
