#include "write/shard_codec.hpp"

#include <algorithm>
#include <cstring>

#include "codec/shard_index.hpp"
#include "core/error.hpp"
#include "write/output_format.hpp"

namespace zp {

namespace {

struct ShardGeometry {
  std::vector<int64_t> shard, inner, grid;
  std::size_t item = 0;
  std::size_t inner_count() const {
    std::size_t n = 1;
    for (auto g : grid) n *= static_cast<std::size_t>(g);
    return n;
  }
  std::size_t inner_bytes() const {
    std::size_t n = item;
    for (auto i : inner) n *= static_cast<std::size_t>(i);
    return n;
  }
};

ShardGeometry geometry(const ArrayPlan& a) {
  ShardGeometry g;
  g.shard = a.chunks;
  g.inner = a.inner_chunks;
  for (std::size_t d = 0; d < g.shard.size(); ++d) g.grid.push_back(g.shard[d] / g.inner[d]);
  g.item = static_cast<std::size_t>(a.conversion.out.size);
  return g;
}

// Copies inner chunk `index` (C order over the inner grid) out of the shard buffer (to_inner) or
// back into it.
void copy_inner(const ShardGeometry& g, std::size_t index, unsigned char* shard, unsigned char* inner,
                bool to_inner) {
  const std::size_t nd = g.shard.size();
  std::vector<int64_t> origin(nd);
  for (std::size_t d = nd; d-- > 0;) {
    origin[d] = static_cast<int64_t>(index % static_cast<std::size_t>(g.grid[d])) * g.inner[d];
    index /= static_cast<std::size_t>(g.grid[d]);
  }
  if (nd == 0) {
    to_inner ? std::memcpy(inner, shard, g.item) : std::memcpy(shard, inner, g.item);
    return;
  }
  const std::size_t run = static_cast<std::size_t>(g.inner[nd - 1]) * g.item;
  std::size_t rows = 1;
  for (std::size_t d = 0; d + 1 < nd; ++d) rows *= static_cast<std::size_t>(g.inner[d]);
  std::vector<int64_t> at(nd, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t off = 0;
    for (std::size_t d = 0; d < nd; ++d)
      off = off * static_cast<std::size_t>(g.shard[d]) + static_cast<std::size_t>(origin[d] + at[d]);
    unsigned char* s = shard + off * g.item;
    unsigned char* i = inner + r * run;
    to_inner ? std::memcpy(i, s, run) : std::memcpy(s, i, run);
    for (std::size_t d = nd - 1; d-- > 0;) {
      if (++at[d] < g.inner[d]) break;
      at[d] = 0;
    }
  }
}

}  // namespace

std::optional<std::vector<Bytes>> assemble_shard(std::vector<std::optional<Bytes>>& inner) {
  std::vector<ShardEntry> entries(inner.size());
  std::vector<Bytes> pieces;
  uint64_t total = 0;
  for (std::size_t k = 0; k < inner.size(); ++k)
    if (inner[k]) {
      entries[k] = ShardEntry{total, inner[k]->size()};
      total += inner[k]->size();
      pieces.push_back(std::move(*inner[k]));
    }
  if (pieces.empty()) return std::nullopt;
  pieces.push_back(encode_shard_index(entries));
  return pieces;
}

ArrayPlan inner_chunk_view(const ArrayPlan& a) {
  ArrayPlan v = a;
  v.chunks = a.inner_chunks;
  v.inner_chunks.clear();
  return v;
}

std::optional<Bytes> encode_shard(const ArrayPlan& a, const Bytes& shard) {
  const ShardGeometry g = geometry(a);
  Bytes fill(g.inner_bytes());
  const nlohmann::json fv = a.fill_value.is_null() ? nlohmann::json(0) : a.fill_value;
  fill_elements(fill.data(), fill.size() / g.item, a.conversion.out, fv);
  std::vector<std::optional<Bytes>> parts(g.inner_count());
  for (std::size_t k = 0; k < parts.size(); ++k) {
    Bytes inner(g.inner_bytes());
    copy_inner(g, k, const_cast<unsigned char*>(shard.data()), inner.data(), true);
    if (inner != fill) parts[k] = encode_chain(a.codecs, std::move(inner), static_cast<int>(g.item));
  }
  auto pieces = assemble_shard(parts);
  if (!pieces) return std::nullopt;
  Bytes out;
  for (const auto& p : *pieces) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes decode_shard(const ArrayPlan& a, const Bytes& stored, const std::string& where) {
  const ShardGeometry g = geometry(a);
  const std::size_t n = g.inner_count();
  if (stored.size() < shard_index_bytes(n)) throw Error::source(where, "shard shorter than its index");
  const Bytes tail(stored.end() - static_cast<std::ptrdiff_t>(shard_index_bytes(n)), stored.end());
  const auto entries = decode_shard_index(tail, n, 0, stored.size() - tail.size(), where);
  Bytes out = fill_chunk(a);
  for (std::size_t k = 0; k < n; ++k) {
    if (entries[k].missing()) continue;
    const auto from = stored.begin() + static_cast<std::ptrdiff_t>(entries[k].offset);
    Bytes inner = decode_chain(a.codecs, Bytes(from, from + static_cast<std::ptrdiff_t>(entries[k].nbytes)),
                               g.inner_bytes(), where);
    copy_inner(g, k, out.data(), inner.data(), false);
  }
  return out;
}

}  // namespace zp
