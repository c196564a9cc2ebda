#include "source/dataset.hpp"

#include <algorithm>

#include "core/budget.hpp"
#include "core/error.hpp"

namespace zp {

ChunkGrid ChunkGrid::regular(const std::vector<int64_t>& shape, const std::vector<int64_t>& chunks,
                             const std::string& where) {
  // Counted before anything is allocated: shapes and chunks come from untrusted metadata.
  const std::string at = where.empty() ? std::string("chunk grid") : where;
  budget::checked_product(shape, budget::kElements, at, "elements in its shape");
  budget::checked_product(chunks, budget::kElements, at, "elements in one chunk");
  std::vector<int64_t> counts;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const int64_t c = std::max<int64_t>(d < chunks.size() ? chunks[d] : 1, 1);
    counts.push_back(shape[d] / c + (shape[d] % c != 0));
  }
  budget::checked_product(counts, budget::kChunksPerArray, at, "chunks in its chunk grid");
  ChunkGrid g;
  g.chunk_shape = chunks;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    std::vector<int64_t> e{0};
    const int64_t c = std::max<int64_t>(chunks[d], 1);
    for (int64_t x = c; x < shape[d]; x += c) e.push_back(x);
    if (shape[d] > 0) e.push_back(shape[d]);
    g.edges.push_back(std::move(e));
  }
  return g;
}

int64_t ChunkGrid::num_chunks() const {
  int64_t n = 1;
  for (std::size_t d = 0; d < ndim(); ++d) n *= chunks_along(d);
  return n;
}

int64_t ChunkGrid::chunk_of(std::size_t dim, int64_t index) const {
  const auto& e = edges[dim];
  const auto it = std::upper_bound(e.begin(), e.end(), index);
  return static_cast<int64_t>(it - e.begin()) - 1;
}

int64_t ChunkGrid::linear_index(const std::vector<int64_t>& chunk) const {
  int64_t idx = 0;
  for (std::size_t d = 0; d < ndim(); ++d) idx = idx * chunks_along(d) + chunk[d];
  return idx;
}

std::vector<int64_t> ChunkGrid::coords(int64_t linear) const {
  std::vector<int64_t> c(ndim());
  for (std::size_t d = ndim(); d-- > 0;) {
    c[d] = linear % chunks_along(d);
    linear /= chunks_along(d);
  }
  return c;
}

void Variable::hold_whole(Bytes data) {
  std::vector<int64_t> whole;
  for (int64_t s : shape) whole.push_back(std::max<int64_t>(s, 1));
  codecs.clear();
  grid = ChunkGrid::regular(shape, whole);
  chunks.assign(static_cast<std::size_t>(grid.num_chunks()), ChunkRef{});
  if (chunks.empty()) return;
  chunks[0].kind = ChunkRef::Kind::Inline;
  chunks[0].data = std::make_shared<Bytes>(std::move(data));
}

const Bytes* Variable::held_whole() const {
  if (!codecs.empty() || chunks.size() != 1 || chunks[0].kind != ChunkRef::Kind::Inline ||
      !chunks[0].data)
    return nullptr;
  for (std::size_t d = 0; d < ndim(); ++d)
    if (grid.chunk_shape[d] != std::max<int64_t>(shape[d], 1)) return nullptr;
  return chunks[0].data.get();
}

Variable Variable::decoded_as(const EncodingRun& run) const {
  Variable v;
  v.name = name;
  v.dims = dims;
  v.shape = shape;
  v.dtype = dtype;
  v.attrs = attrs;
  for (const char* k : kDecodingAttrs) v.attrs.erase(k);
  for (const auto& [k, x] : run.attrs.items()) v.attrs[k] = x;
  v.fill_value = run.fill_value;
  v.origin = origin;
  return v;
}

int64_t Variable::num_elements() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::size_t Variable::chunk_bytes() const {
  std::size_t n = static_cast<std::size_t>(dtype.size);
  for (auto c : grid.chunk_shape) n *= static_cast<std::size_t>(c);
  return n;
}

namespace {

const Variable::LayoutRun* run_of(const Variable& v, const ChunkRef& ref) {
  const Variable::LayoutRun* run = nullptr;
  for (const auto& r : v.layout_runs) {
    if (r.first_file > ref.file) break;
    run = &r;
  }
  return run;
}

}  // namespace

const std::vector<int64_t>& Variable::chunk_shape_of(const ChunkRef& ref) const {
  // A missing chunk reads as one value everywhere, in a buffer of the largest shape (its file is
  // not kept in manifests).
  if (ref.kind == ChunkRef::Kind::Missing) return grid.chunk_shape;
  const LayoutRun* run = run_of(*this, ref);
  return run ? run->chunk_shape : grid.chunk_shape;
}

std::size_t Variable::chunk_bytes_of(const ChunkRef& ref) const {
  std::size_t n = static_cast<std::size_t>(dtype.size);
  for (auto c : chunk_shape_of(ref)) n *= static_cast<std::size_t>(c);
  return n;
}

const std::vector<CodecSpec>& Variable::codecs_of(const ChunkRef& ref) const {
  const LayoutRun* run = run_of(*this, ref);
  return run ? run->codecs : codecs;
}

std::string Variable::layout_fault() const {
  if (layout_runs.empty()) return "";
  if (layout_runs[0].first_file != 0) return "layout runs do not start at file 0";
  for (std::size_t i = 0; i < layout_runs.size(); ++i) {
    const LayoutRun& r = layout_runs[i];
    if (i > 0 && r.first_file <= layout_runs[i - 1].first_file)
      return "layout runs are not in file order";
    if (r.chunk_shape.size() != ndim()) return "a layout run's chunk shape has the wrong rank";
    for (std::size_t d = 0; d < ndim(); ++d)
      if (r.chunk_shape[d] < 1 || r.chunk_shape[d] > grid.chunk_shape[d])
        return "a layout run's chunk shape exceeds the variable's";
  }
  if (grid.edges.size() != ndim() || static_cast<int64_t>(chunks.size()) != grid.num_chunks())
    return "the chunk grid does not match the manifest";
  for (int64_t i = 0; i < grid.num_chunks(); ++i) {
    const auto c = grid.coords(i);
    const auto& own = chunk_shape_of(chunks[static_cast<std::size_t>(i)]);
    for (std::size_t d = 0; d < ndim(); ++d) {
      const auto k = static_cast<std::size_t>(c[d]);
      if (grid.edges[d][k + 1] - grid.edges[d][k] > own[d])
        return "chunk " + std::to_string(i) + " is larger than its file's chunk shape";
    }
  }
  return "";
}

const Variable* Dataset::find(const std::string& name) const {
  for (const auto& v : variables)
    if (v.name == name) return &v;
  return nullptr;
}

const Variable& Dataset::variable(const std::string& name) const {
  if (const auto* v = find(name)) return *v;
  std::string known;
  for (const auto& v : variables) known += (known.empty() ? "" : ", ") + v.name;
  throw Error::config("variables",
                      "no variable '" + name + "' in " + uri + " (has: " + known + ")");
}

const Dimension* Dataset::find_dim(const std::string& name) const {
  for (const auto& d : dims)
    if (d.name == name) return &d;
  return nullptr;
}

bool Dataset::is_dimension_coordinate(const Variable& v) const {
  return v.dims.size() == 1 && v.dims[0] == v.name;
}

std::vector<std::string> Dataset::data_variable_names() const {
  std::vector<std::string> out;
  for (const auto& v : variables)
    if (!is_dimension_coordinate(v)) out.push_back(v.name);
  return out;
}

}  // namespace zp
