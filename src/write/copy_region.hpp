// Copies the part of one decoded source chunk that one output chunk needs, through the index map
// (offsets, reversal) and the element conversion. Different source chunks fill disjoint parts of
// an output chunk, so calls for one output buffer may run on several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// What of decoded source chunk `src_chunk` goes where in output chunk `out_chunk` (chunk
// coordinates) of `a`: worked out once, then copied.
class ChunkCopy {
 public:
  ChunkCopy(const ArrayPlan& a, const std::vector<int64_t>& out_chunk,
            const std::vector<int64_t>& src_chunk);
  // Elements copied (0: the chunks do not meet).
  int64_t elements() const { return total_; }
  // When every element of the decoded source chunk goes, in order and unconverted, into one run
  // of the output chunk: that run's byte offset. The chunk can then be decoded straight into the
  // output buffer (ChunkReader::read_into) instead of being copied there.
  std::optional<std::size_t> whole_run_offset() const;
  void copy(unsigned char* out, const unsigned char* src) const;

  struct Span {
    int64_t count;
    int64_t out_pos;  // first element's position along the dim in the output chunk
    int64_t src_pos;  // ... and in the source chunk
    int64_t step;     // +1 or -1 in the source
  };
  struct Dim {
    std::vector<Span> spans;        // one per index-map segment that meets both chunks
    std::ptrdiff_t out_stride = 0;  // bytes
    std::ptrdiff_t src_stride = 0;
  };

 private:
  const ArrayPlan& a_;
  const Conversion& conv_;  // the source chunk's (by its file)
  std::vector<Dim> dims_;
  int64_t total_ = 0;
  int64_t src_elements_ = 1;  // in the decoded source chunk (its own shape)
};

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
