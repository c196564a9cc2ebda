// What a complete store's metadata says to an append, read as untrusted input (depth-limited,
// non-finite tokens handled): the chunk shapes its coordinate arrays were written with, and whether
// it can be extended to a grown source's plan — its consolidated metadata (what readers open) must
// equal the plan's in everything but the arrays' shapes, which may only grow along one dimension.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "plan/plan.hpp"
#include "store/writable.hpp"

namespace zp {

// Coordinate arrays keep the chunk shape they have in the store (an append, like xarray's
// to_zarr(append_dim=...), never re-chunks what is written: a coordinate first written whole keeps
// chunks of its first length). `plan`'s coordinates take the store's chunks where the store has
// the array with a chunk shape no larger than the plan's; other arrays are left as planned.
void adopt_store_chunks(Plan& plan, const Writable& store);

struct AppendShape {
  std::string why;                            // "" when the store can be extended
  std::string dim;                            // the dimension that grew ("" when none did)
  std::map<std::string, int64_t> old_length;  // per array having `dim`: its stored length
  int64_t from = 0, to = 0;                   // the longest array's length before and after
};

// `fresh`: the grown source's plan, its coordinates' chunks adopted from the store.
AppendShape append_shape(const Plan& fresh, const Writable& store);

}  // namespace zp
