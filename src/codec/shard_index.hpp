// The index of a Zarr v3 shard (sharding_indexed, at its end or start): per inner chunk, in C
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
inline std::size_t shard_index_bytes(std::size_t n) {
  return 16 * n + 4;
}
Bytes encode_shard_index(const std::vector<ShardEntry>& entries);
// From the shard_index_bytes(n) bytes of a shard's index, whose data lies in
// [data_begin, data_end) of the shard (index_location "end": [0, size - index); "start":
// [index, size)); a bad checksum or an entry outside the data is Error(Source) naming `where`.
std::vector<ShardEntry> decode_shard_index(const Bytes& index, std::size_t n, uint64_t data_begin,
                                           uint64_t data_end, const std::string& where);

}  // namespace zp
