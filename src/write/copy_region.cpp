#include "write/copy_region.hpp"

#include <algorithm>

#include "transform/element_transform.hpp"

namespace zp {

namespace {

using Span = ChunkCopy::Span;
using DimSpans = ChunkCopy::Dim;

void copy_dims(const Conversion& conv, const std::vector<DimSpans>& dims, std::size_t d,
               unsigned char* out, const unsigned char* src) {
  const DimSpans& ds = dims[d];
  for (const Span& s : ds.spans) {
    unsigned char* o = out + s.out_pos * ds.out_stride;
    const unsigned char* i = src + s.src_pos * ds.src_stride;
    if (d + 1 == dims.size()) {
      convert_run(conv, i, s.step * ds.src_stride, o, static_cast<std::size_t>(s.count));
      continue;
    }
    for (int64_t k = 0; k < s.count; ++k)
      copy_dims(conv, dims, d + 1, o + k * ds.out_stride, i + k * s.step * ds.src_stride);
  }
}

// The spans along dimension `d` where output chunk `out_chunk` and source chunk `src_chunk` of
// `a` meet, into `dim`; returns the elements they hold (0: the chunks do not meet).
int64_t spans_along(const ArrayPlan& a, std::size_t d, const std::vector<int64_t>& out_chunk,
                    const std::vector<int64_t>& src_chunk, DimSpans& dim) {
  const int64_t o0 = out_chunk[d] * a.chunks[d], o1 = std::min(o0 + a.chunks[d], a.shape[d]);
  const int64_t g0 = a.source.grid.edges[d][static_cast<std::size_t>(src_chunk[d])];
  const int64_t g1 = a.source.grid.edges[d][static_cast<std::size_t>(src_chunk[d]) + 1];
  int64_t along = 0;
  for (const Segment& p : a.index[d].pieces(o0, o1)) {
    // The part of this piece inside the source chunk.
    const int64_t lo = std::max(p.src_lo(), g0), hi = std::min(p.src_hi(), g1);
    if (lo >= hi) continue;
    // Output index of the first element copied: the one whose source index is lo (step +1) or
    // hi - 1 (step -1).
    const int64_t first_src = p.step > 0 ? lo : hi - 1;
    const int64_t first_out = p.out + (first_src - p.src) * p.step;
    dim.spans.push_back({hi - lo, first_out - o0, first_src - g0, p.step});
    along += hi - lo;
  }
  return along;
}

// An inner dimension copied whole and forward in both buffers is contiguous with its outer
// neighbour's forward runs: fold it in, so a source chunk that fills whole rows (hourly files
// into a daily chunk) is one copy instead of one per row.
void fold_contiguous(std::vector<DimSpans>& dims) {
  while (dims.size() > 1) {
    const DimSpans& in = dims.back();
    DimSpans& outer = dims[dims.size() - 2];
    if (in.spans.size() != 1) break;
    const Span& s = in.spans[0];
    if (s.step != 1 || s.out_pos != 0 || s.src_pos != 0 ||
        s.count * in.out_stride != outer.out_stride ||
        s.count * in.src_stride != outer.src_stride ||
        std::any_of(outer.spans.begin(), outer.spans.end(),
                    [](const Span& o) { return o.step != 1; }))
      break;
    for (Span& o : outer.spans) {
      o.count *= s.count;
      o.out_pos *= s.count;
      o.src_pos *= s.count;
    }
    outer.out_stride = in.out_stride;
    outer.src_stride = in.src_stride;
    dims.pop_back();
  }
}

}  // namespace

ChunkCopy::ChunkCopy(const ArrayPlan& a, const std::vector<int64_t>& out_chunk,
                     const std::vector<int64_t>& src_chunk)
    : a_(a),
      conv_(a.conversion_of(
          a.source.chunks[static_cast<std::size_t>(a.source.grid.linear_index(src_chunk))])) {
  const std::size_t nd = a.ndim();
  if (nd == 0) {  // a scalar: its one element
    total_ = 1;
    return;
  }
  std::vector<DimSpans>& dims = dims_;
  dims.resize(nd);
  // The source chunk's own buffer shape: files joined with different chunking differ.
  const std::vector<int64_t>& src_shape = a.source.chunk_shape_of(
      a.source.chunks[static_cast<std::size_t>(a.source.grid.linear_index(src_chunk))]);
  for (const int64_t n : src_shape) src_elements_ *= n;
  std::ptrdiff_t out_stride = conv_.out.size, src_stride = conv_.in.size;
  for (std::size_t d = nd; d-- > 0;) {
    dims[d].out_stride = out_stride;
    dims[d].src_stride = src_stride;
    out_stride *= a.chunks[d];
    src_stride *= src_shape[d];
  }
  int64_t total = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    const int64_t along = spans_along(a, d, out_chunk, src_chunk, dims[d]);
    if (along == 0) {
      dims.clear();
      return;
    }
    total *= along;
  }
  total_ = total;
  fold_contiguous(dims);
}

std::optional<std::size_t> ChunkCopy::whole_run_offset() const {
  const Conversion& c = conv_;
  if (dims_.size() != 1 || dims_[0].spans.size() != 1 || c.decode || !c.steps.empty() ||
      c.in.size != c.out.size)
    return std::nullopt;
  const Span& s = dims_[0].spans[0];
  if (s.step != 1 || s.src_pos != 0 || s.count * dims_[0].src_stride != src_elements_ * c.in.size)
    return std::nullopt;
  return static_cast<std::size_t>(s.out_pos * dims_[0].out_stride);
}

void ChunkCopy::copy(unsigned char* out, const unsigned char* src) const {
  if (total_ == 0) return;
  if (a_.ndim() == 0) {
    convert_run(conv_, src, 0, out, 1);
    return;
  }
  copy_dims(conv_, dims_, 0, out, src);
}

int64_t copy_into_output(const ArrayPlan& a, const std::vector<int64_t>& out_chunk,
                         unsigned char* out, const std::vector<int64_t>& src_chunk,
                         const unsigned char* src) {
  const ChunkCopy c(a, out_chunk, src_chunk);
  c.copy(out, src);
  return c.elements();
}

bool copies_cover_chunk(const ArrayPlan& a, const std::vector<int64_t>& out_chunk) {
  if (a.ndim() == 0) return false;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    const int64_t o0 = out_chunk[d] * a.chunks[d], o1 = o0 + a.chunks[d];
    if (o1 > a.shape[d]) return false;
    int64_t covered = 0;
    for (const Segment& p : a.index[d].pieces(o0, o1)) covered += p.count;
    if (covered != a.chunks[d]) return false;
  }
  return true;
}

}  // namespace zp
