// Copies the part of one decoded source chunk that one output chunk needs, through the index map
// (offsets, reversal) and the element conversion. Different source chunks fill disjoint parts of
// an output chunk, so calls for one output buffer may run on several threads at once.
#pragma once

#include <cstdint>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// Output chunk `out_chunk` (chunk coordinates) of `a` in `out`, source chunk `src_chunk` in `src`.
// Returns the number of elements copied.
int64_t copy_into_output(const ArrayPlan& a, const std::vector<int64_t>& out_chunk,
                         unsigned char* out, const std::vector<int64_t>& src_chunk,
                         const unsigned char* src);

// True when the copies from every source chunk the output chunk reads write all of its elements:
// not an edge chunk beyond the array and no index-map gap (tile padding) inside it. Such a chunk
// need not be filled with the fill value first.
bool copies_cover_chunk(const ArrayPlan& a, const std::vector<int64_t>& out_chunk);

}  // namespace zp
