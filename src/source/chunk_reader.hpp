// ChunkReader: turns a manifest entry into decoded chunk bytes (nominal chunk shape, native byte
// order): read the byte range, run the codec chain backwards, byte-swap if stored big-endian.
// Missing chunks come back filled with the variable's missing_chunk_value. Thread-safe: byte
// ranges are read with pread in parallel; only netCDF-3 slabs serialise (netCDF-C is not
// thread-safe).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <unordered_map>

#include "source/dataset.hpp"
#include "source/fingerprint.hpp"
#include "source/netcdf_source.hpp"
#include "store/file_reader.hpp"

namespace zp {

class ChunkReader {
 public:
  explicit ChunkReader(const Dataset& ds) : ds_(ds) {}

  Bytes read(const Variable& v, int64_t chunk_index);
  // Files must still be as planned: the first read of each compares it with its fingerprint and
  // fails (Error(Source), naming the file) when it changed.
  void expect(const std::vector<Fingerprint>& fingerprints);
  // Source bytes read so far (compressed sizes, inline data included).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  const Dataset& ds_;
  FileReader files_;
  NetcdfSlabReader slabs_;
  std::atomic<uint64_t> bytes_read_{0};
  void check_unchanged(uint32_t file);
  std::unordered_map<std::string, Fingerprint> expected_;
  std::mutex checked_mutex_;
  std::set<uint32_t> checked_;
};

// The whole of a 1-D variable (a coordinate), native byte order.
Bytes read_whole_1d(ChunkReader& reader, const Variable& v);

// Location of a chunk for messages: "file.nc, variable 'd2m', chunk (0, 1, 2)".
std::string chunk_location(const Dataset& ds, const Variable& v, int64_t chunk_index);

}  // namespace zp
