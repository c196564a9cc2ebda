// The index of a Zarr v3 shard (sharding_indexed, index_location "end"): per inner chunk, in C
// order, its offset and length in the shard as little-endian uint64, 2^64-1 twice for an inner
// chunk that is not stored (all fill), then the index's crc32c. Shared by the v3 writer and the
// v3 source, which turns each entry into a byte-range chunk reference.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.hpp"

namespace zp {

struct ShardEntry {
  uint64_t offset = UINT64_MAX;
  uint64_t nbytes = UINT64_MAX;
  bool missing() const { return offset == UINT64_MAX && nbytes == UINT64_MAX; }
};

// Bytes of the encoded index of `n` inner chunks (with its crc32c).
inline std::size_t shard_index_bytes(std::size_t n) { return 16 * n + 4; }
Bytes encode_shard_index(const std::vector<ShardEntry>& entries);
// From the last shard_index_bytes(n) bytes of a shard of `shard_size` bytes; a bad checksum or an
// entry outside the shard is Error(Source) naming `where`.
std::vector<ShardEntry> decode_shard_index(const Bytes& tail, std::size_t n, uint64_t shard_size,
                                           const std::string& where);

}  // namespace zp
