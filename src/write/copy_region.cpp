#include "write/copy_region.hpp"

#include <algorithm>

#include "transform/element_transform.hpp"

namespace zp {

namespace {

struct Span {
  int64_t count;
  int64_t out_pos;            // first element's position along the dim in the output chunk
  int64_t src_pos;            // ... and in the source chunk
  int64_t step;               // +1 or -1 in the source
  std::ptrdiff_t out_stride;  // bytes
  std::ptrdiff_t src_stride;  // bytes
};

void copy_dims(const Conversion& conv, const std::vector<Span>& spans, std::size_t d,
               unsigned char* out, const unsigned char* src) {
  const Span& s = spans[d];
  unsigned char* o = out + s.out_pos * s.out_stride;
  const unsigned char* i = src + s.src_pos * s.src_stride;
  if (d + 1 == spans.size()) {
    convert_run(conv, i, s.step * s.src_stride, o, static_cast<std::size_t>(s.count));
    return;
  }
  for (int64_t k = 0; k < s.count; ++k)
    copy_dims(conv, spans, d + 1, o + k * s.out_stride, i + k * s.step * s.src_stride);
}

}  // namespace

int64_t copy_into_output(const ArrayPlan& a, const std::vector<int64_t>& out_chunk,
                         unsigned char* out, const std::vector<int64_t>& src_chunk,
                         const unsigned char* src) {
  const std::size_t nd = a.ndim();
  std::vector<Span> spans(nd);
  std::ptrdiff_t out_stride = a.conversion.out.size, src_stride = a.conversion.in.size;
  for (std::size_t d = nd; d-- > 0;) {
    spans[d].out_stride = out_stride;
    spans[d].src_stride = src_stride;
    out_stride *= a.chunks[d];
    src_stride *= a.source.grid.chunk_shape[d];
  }
  int64_t total = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    const DimMap& m = a.index[d];
    const int64_t o0 = out_chunk[d] * a.chunks[d], o1 = std::min(o0 + a.chunks[d], a.shape[d]);
    int64_t s0, s1;
    m.source_range(o0, o1, &s0, &s1);
    const int64_t g0 = a.source.grid.edges[d][static_cast<std::size_t>(src_chunk[d])];
    const int64_t g1 = a.source.grid.edges[d][static_cast<std::size_t>(src_chunk[d]) + 1];
    const int64_t lo = std::max(s0, g0), hi = std::min(s1, g1);
    if (lo >= hi) return 0;
    // Output index of the first element copied: the one whose source index is lo (step +1) or hi-1.
    const int64_t first_src = m.step > 0 ? lo : hi - 1;
    const int64_t first_out = (first_src - m.start) * m.step;
    spans[d].count = hi - lo;
    spans[d].out_pos = first_out - o0;
    spans[d].src_pos = first_src - g0;
    spans[d].step = m.step;
    total *= hi - lo;
  }
  if (nd == 0) {  // a scalar: its one element
    convert_run(a.conversion, src, 0, out, 1);
    return 1;
  }
  copy_dims(a.conversion, spans, 0, out, src);
  return total;
}

}  // namespace zp
