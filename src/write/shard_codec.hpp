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
Bytes decode_shard(const ArrayPlan& a, const Bytes& stored, const std::string& where);

}  // namespace zp
