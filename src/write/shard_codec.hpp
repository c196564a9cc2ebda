// Zarr v3 sharding_indexed, write side: a shard (a decoded write chunk) cut into its inner chunks
// in C order, each encoded with the array's codecs unless it holds only the fill value (then left
// out of the shard), followed by the shard index. And back, for verify.
#pragma once

#include <optional>
#include <string>

#include "plan/plan.hpp"

namespace zp {

// nullopt when every inner chunk is fill: the shard is not stored at all.
std::optional<Bytes> encode_shard(const ArrayPlan& a, const Bytes& shard);
// A shard from its inner chunks already encoded (C order over the shard's inner grid; nullopt for
// an inner chunk of fill values only): the stored inner chunks in order, then the index — pieces
// to write one after the other. nullopt when all are nullopt (nothing to store).
std::optional<std::vector<Bytes>> assemble_shard(std::vector<std::optional<Bytes>>& inner);
// `a` as its inner chunks: the array a job assembles and encodes chunk by chunk.
ArrayPlan inner_chunk_view(const ArrayPlan& a);
Bytes decode_shard(const ArrayPlan& a, const Bytes& stored, const std::string& where);

}  // namespace zp
