#include "plan/tiling.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "plan/cf_references.hpp"
#include "plan/output_array.hpp"

namespace zp {

namespace {

// tiled: data arrays get a stored layout (batch_dim first, one tile a chunk); the 1-D coordinates
// of tiled dimensions become D_coarse(batch_dim) and D(batch_dim, D_fine), as reset_index leaves
// them after xarray's stack.
struct TileGrid {
  Selection::Tiling t;          // tiled dimensions in batch order
  std::vector<int64_t> coarse;  // tiles along each tiled dimension
  int64_t batch = 1;            // tiles in all
  int64_t per_chunk = 1;        // tiles a stored chunk
  int tile_of(const std::string& dim) const {
    for (std::size_t i = 0; i < t.dims.size(); ++i)
      if (t.dims[i] == dim) return static_cast<int>(i);
    return -1;
  }
};

// batch_dim runs over the tiles in the data's dimension order (that of the first tiled data
// array; every tiled array must share it), the last tiled dimension fastest.
Selection::Tiling tiling_in_data_order(const std::vector<ArrayPlan>& arrays,
                                       const Selection::Tiling& tiling) {
  Selection::Tiling t = tiling;
  std::vector<std::string> order;
  for (const auto& a : arrays) {
    if (a.coordinate) continue;
    std::vector<std::string> mine;
    for (const auto& d : a.dims)
      if (std::find(t.dims.begin(), t.dims.end(), d) != t.dims.end()) mine.push_back(d);
    if (mine.size() != t.dims.size()) continue;
    if (order.empty()) order = mine;
    if (mine != order)
      throw Error::config("variables." + a.name, "'" + a.name +
                                                     "' orders the tiled dimensions "
                                                     "differently from the other variables");
  }
  if (!order.empty()) {
    Selection::Tiling sorted = t;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const auto j = static_cast<std::size_t>(std::find(t.dims.begin(), t.dims.end(), order[i]) -
                                              t.dims.begin());
      sorted.dims[i] = t.dims[j];
      sorted.sizes[i] = t.sizes[j];
      sorted.original[i] = t.original[j];
      sorted.labels[i] = t.labels[j];
      sorted.label_dtypes[i] = t.label_dtypes[j];
    }
    t = std::move(sorted);
  }
  return t;
}

TileGrid tile_grid(const std::vector<ArrayPlan>& arrays, const Selection& sel, const Config& cfg) {
  TileGrid g;
  g.t = tiling_in_data_order(arrays, *sel.tiling);
  for (std::size_t i = 0; i < g.t.dims.size(); ++i) {
    g.coarse.push_back(sel.find_output(g.t.dims[i])->count / g.t.sizes[i]);
    g.batch *= g.coarse.back();
  }
  // Several tiles a chunk: consecutive batch indices, so k tiles along the last tiled dimension.
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == "batch_dim") g.per_chunk = size < 0 ? g.coarse.back() : std::max<int64_t>(size, 1);
  if (g.coarse.back() % g.per_chunk != 0) {
    std::string ok;
    for (int64_t k = 1; k <= g.coarse.back(); ++k)
      if (g.coarse.back() % k == 0) ok += (ok.empty() ? "" : ", ") + std::to_string(k);
    throw Error::config("chunks.batch_dim",
                        fmt::format("{} a chunk: a chunk holds consecutive tiles along '{}' "
                                    "({} of them), so it must divide {} (one of {})",
                                    counted(g.per_chunk, "tile"), g.t.dims.back(), g.coarse.back(),
                                    g.coarse.back(), ok));
  }
  return g;
}

// The stored layout of an array with `tiled` dimensions (n_tiled of them).
void tile_array(ArrayPlan& a, const TileGrid& g, const std::vector<bool>& tiled,
                std::size_t n_tiled, const std::string& coord_names) {
  if (n_tiled != g.t.dims.size() && g.per_chunk > 1 &&
      std::find(a.dims.begin(), a.dims.end(), g.t.dims.back()) == a.dims.end())
    throw Error::config(
        "chunks.batch_dim",
        "'" + a.name + "' lacks '" + g.t.dims.back() +
            "', along which several tiles "
            "a chunk are grouped: use batch_dim: 1, or leave it out under variables:");
  StoredLayout st;
  st.dims = {"batch_dim"};
  st.shape = {g.batch};
  st.chunks = {g.per_chunk};
  st.tiles_per_chunk = g.per_chunk;
  bool padded = false;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    if (tiled[d]) {
      const auto i = static_cast<std::size_t>(g.tile_of(a.dims[d]));
      a.chunks[d] = g.t.sizes[i] * (i + 1 == g.t.dims.size() ? g.per_chunk : 1);
      padded |= g.t.original[i] % g.t.sizes[i] != 0;
      st.dims.push_back(a.dims[d] + "_fine");
      st.shape.push_back(g.t.sizes[i]);
      st.chunks.push_back(g.t.sizes[i]);
    } else {
      st.dims.push_back(a.dims[d]);
      st.shape.push_back(a.shape[d]);
      st.chunks.push_back(a.chunks[d]);
    }
  }
  if (padded && g.t.pad && a.fill_value.is_null())
    throw Error::config("variables." + a.name,
                        "padding '" + a.name + "' (" + a.conversion.out.str() +
                            ") to whole tiles "
                            "needs a _FillValue; use encoding: decoded or boundary: trim");
  st.tiled = tiled;
  st.coarse = g.coarse;
  for (const auto& dim : g.t.dims) {
    const auto at = std::find(a.dims.begin(), a.dims.end(), dim);
    st.tile_dim.push_back(at == a.dims.end() ? -1 : static_cast<int>(at - a.dims.begin()));
  }
  a.stored = std::move(st);
  const std::string have = a.attrs.value("coordinates", std::string());
  a.attrs["coordinates"] = have.empty() ? coord_names.substr(1) : have + coord_names;
}

// D_coarse(batch_dim) and, where D has labels, D(batch_dim, D_fine) for each tiled dimension.
void add_tile_coordinates(std::vector<ArrayPlan>& out, const TileGrid& g, const Dataset& ds,
                          const Selection& sel, const Config& cfg) {
  for (std::size_t i = 0; i < g.t.dims.size(); ++i) {
    const std::string& dim = g.t.dims[i];
    int64_t later = 1;
    for (std::size_t j = i + 1; j < g.t.dims.size(); ++j) later *= g.coarse[j];
    Bytes idx(static_cast<std::size_t>(g.batch) * 8, 0);
    for (int64_t b = 0; b < g.batch; ++b) {
      const int64_t c = (b / later) % g.coarse[i];
      std::memcpy(idx.data() + 8 * b, &c, 8);
    }
    out.push_back(inline_coordinate(dim + "_coarse", {"batch_dim"}, {g.batch}, DType{'i', 8, false},
                                    std::move(idx), Attrs::object(), nullptr, cfg));
    if (g.t.labels[i].empty()) continue;
    const DType lt = g.t.label_dtypes[i];
    const int64_t n = g.t.sizes[i];
    Bytes lab(static_cast<std::size_t>(g.batch * n * lt.size), 0);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t f = 0; f < n; ++f) {
        const auto at = static_cast<std::size_t>(((b / later) % g.coarse[i]) * n + f);
        const double x = at < g.t.labels[i].size() ? g.t.labels[i][at] : std::nan("");
        store_from_json(lab.data(), static_cast<std::size_t>(b * n + f), lt,
                        std::isnan(x) ? nlohmann::json("NaN") : nlohmann::json(x));
      }
    Attrs attrs = Attrs::object();
    const DimMap* m = sel.find_output(dim);
    if (const Variable* cv = ds.find(m->source)) {
      attrs = cv->attrs;
      rename_references(attrs, sel);
      // The labels are the decoded values: what said how to decode them no longer applies.
      for (const char* k : {"scale_factor", "add_offset", "missing_value", "_Unsigned"})
        attrs.erase(k);
    }
    out.push_back(inline_coordinate(dim, {"batch_dim", dim + "_fine"}, {g.batch, n}, lt,
                                    std::move(lab), std::move(attrs), "NaN", cfg));
  }
}

}  // namespace

void apply_tiling(std::vector<ArrayPlan>& arrays, const Dataset& ds, const Selection& sel,
                  const Config& cfg) {
  const TileGrid g = tile_grid(arrays, sel, cfg);
  std::string coord_names;
  for (const auto& d : g.t.dims) coord_names += " " + d + " " + d + "_coarse";
  std::vector<ArrayPlan> out;
  for (auto& a : arrays) {
    if (a.coordinate && a.ndim() == 1 && g.tile_of(a.dims[0]) >= 0) continue;  // replaced below
    std::vector<bool> tiled(a.ndim(), false);
    std::size_t n_tiled = 0;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      n_tiled += (tiled[d] = g.tile_of(a.dims[d]) >= 0) ? 1 : 0;
    if (n_tiled > 0) tile_array(a, g, tiled, n_tiled, coord_names);
    out.push_back(std::move(a));
  }
  add_tile_coordinates(out, g, ds, sel, cfg);
  arrays = std::move(out);
}

}  // namespace zp
