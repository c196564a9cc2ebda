#include "plan/recommend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "core/units.hpp"

namespace zp {

namespace {

struct Outcome {
  bool ok = false;
  uint64_t read_bytes = 0;
  double amplification = 1;
  uint64_t peak = 0;
  uint64_t output_bytes = 0;
};

Outcome replan(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt) {
  Outcome o;
  try {
    Plan p;
    p.arrays = build_arrays(ds, sel, cfg);
    plan_jobs(p, opt);
    o.ok = true;
    o.read_bytes = p.summary.read_bytes;
    o.amplification = p.summary.read_amplification;
    o.peak = p.summary.peak_memory;
    o.output_bytes = p.summary.output_bytes;
  } catch (const Error&) {
  }
  return o;
}

std::string effect(const Outcome& now, const Outcome& alt) {
  if (!alt.ok) return "does not fit the memory limit";
  auto mb = [](uint64_t b) { return format_bytes(static_cast<double>(b)); };
  std::string s = fmt::format(
      "reads {} (now {}), read amplification {:.2f} (now {:.2f}), peak "
      "memory per worker {} (now {})",
      mb(alt.read_bytes), mb(now.read_bytes), alt.amplification, now.amplification, mb(alt.peak),
      mb(now.peak));
  if (alt.output_bytes != now.output_bytes)
    s += fmt::format(", output {} (now {})", mb(alt.output_bytes), mb(now.output_bytes));
  return s;
}

// Less memory than this per worker is not worth stopping a run for (a 2 GB worker does not
// notice 100 kB; small selections of ERA5 chunks differ by about that).
constexpr uint64_t kMinMemorySaving = 16u << 20;

// Whether `alt` saves something: fewer bytes read per byte needed (re-reads gone), or at least a
// tenth of the data-dependent memory and `min_memory` bytes, for no less output. With
// kMinMemorySaving it is worth stopping a run for; with 0, worth showing beside one that is. An
// edge that only cuts a chunk already read once (read amplification 1.00) saves nothing.
bool saves(const Outcome& now, const Outcome& alt, uint64_t min_memory) {
  if (!alt.ok) return false;
  if (alt.amplification + 1e-9 < now.amplification) return true;
  const uint64_t data_now = now.peak - std::min(now.peak, kWorkerBaseBytes);
  if (alt.output_bytes < now.output_bytes || alt.peak >= now.peak) return false;
  const uint64_t saved = now.peak - alt.peak;
  return saved * 10 >= data_now && saved >= min_memory;
}

std::string label_at(const Coordinates& coords, const DimMap& m, int64_t source_index) {
  const auto c = coords.find(m.source);
  if (c == coords.end()) return std::to_string(source_index);
  const auto i = static_cast<std::size_t>(source_index);
  if (c->second.time)
    return "\"" + format_datetime(from_us(c->second.time_us[i], c->second.time->calendar)) + "\"";
  return fmt::format("{}", c->second.values[i]);
}

// The preprocessor that last selected along output dimension `dim`, or -1.
int selecting_preprocessor(const Config& cfg, const std::string& dim, bool* by_label) {
  int found = -1;
  for (std::size_t i = 0; i < cfg.preprocessors.size(); ++i) {
    const auto& p = cfg.preprocessors[i];
    const std::string type = p.value("type", "");
    if ((type == "sel" || type == "subset" || type == "isel") && p.contains(dim)) {
      found = static_cast<int>(i);
      *by_label = type != "isel";
    }
  }
  return found;
}

// An alternative selection range [lo, hi) in source indices, phrased as the user would write it.
std::string range_text(const Coordinates& coords, const DimMap& m, int64_t lo, int64_t hi,
                       bool by_label) {
  const int64_t step = m.segments.at(0).step;
  const DimMap alt = DimMap::linear(m.source, m.name, step > 0 ? lo : hi - 1, hi - lo, step);
  if (!by_label) {
    // isel indices are positions along the dimension as it was when the isel ran: approximate with
    // source positions, which is what they are unless an earlier step reversed or cut it.
    return fmt::format("[{}, {}]", step > 0 ? lo : hi - 1, step > 0 ? hi : lo - 1);
  }
  return fmt::format("[{}, {}]", label_at(coords, alt, alt.source_index(0)),
                     label_at(coords, alt, alt.source_index(alt.count - 1)));
}

void selection_edges(const Dataset& ds, const Coordinates& coords, const Selection& sel,
                     const Config& cfg, const PlanOptions& opt, const Plan& plan,
                     const Outcome& now, std::vector<Recommendation>& out) {
  std::set<std::string> done;
  for (const auto& a : plan.arrays) {
    if (a.coordinate) continue;
    const Variable& v = a.source;
    for (std::size_t d = 0; d < v.ndim(); ++d) {
      const DimMap& m = sel.dim(v.dims[d]);
      // A tiled dimension's extent is the tiling's (padded or trimmed): its own recommendation.
      const bool tiled = sel.tiling && std::find(sel.tiling->dims.begin(), sel.tiling->dims.end(),
                                                 m.name) != sel.tiling->dims.end();
      if (done.count(m.source) || !m.linear() || tiled ||
          m.count == static_cast<int64_t>(ds.find_dim(m.source)->size))
        continue;
      bool by_label = true;
      const int pre = selecting_preprocessor(cfg, m.name, &by_label);
      if (pre < 0) continue;
      int64_t lo, hi;
      m.source_hull(0, m.count, &lo, &hi);
      const auto& e = v.grid.edges[d];
      const bool lo_ok = std::binary_search(e.begin(), e.end(), lo),
                 hi_ok = std::binary_search(e.begin(), e.end(), hi);
      if (lo_ok && hi_ok) continue;
      done.insert(m.source);
      const int64_t out_lo = lo_ok ? lo : e[static_cast<std::size_t>(v.grid.chunk_of(d, lo))];
      const int64_t out_hi =
          hi_ok ? hi : e[static_cast<std::size_t>(v.grid.chunk_of(d, hi - 1)) + 1];
      const int64_t in_lo = lo_ok ? lo : e[static_cast<std::size_t>(v.grid.chunk_of(d, lo)) + 1];
      const int64_t in_hi = hi_ok ? hi : e[static_cast<std::size_t>(v.grid.chunk_of(d, hi - 1))];
      const std::string key = fmt::format("preprocessors[{}].{}", pre, m.name);
      std::string msg = fmt::format(
          "the selection {} of '{}' cuts through source chunks (chunk edges every {} along '{}').",
          range_text(coords, m, lo, hi, by_label), m.name, v.grid.chunk_shape[d], m.source);
      bool any_saves = false;
      for (const auto& [alo, ahi, what] :
           {std::tuple{out_lo, out_hi, "widen to"}, std::tuple{in_lo, in_hi, "narrow to"}}) {
        if (ahi <= alo) continue;
        Selection alt = sel;
        const int64_t step = m.segments[0].step;
        for (auto& am : alt.dims)
          if (am.source == m.source)
            am = DimMap::linear(am.source, am.name, step > 0 ? alo : ahi - 1, ahi - alo, step);
        const Outcome o = replan(ds, alt, cfg, opt);
        any_saves |= saves(now, o, kMinMemorySaving);
        msg += fmt::format("\n    {} {}: {}", what, range_text(coords, m, alo, ahi, by_label),
                           effect(now, o));
      }
      out.push_back({key, msg, any_saves});
    }
  }
}

// Many tiny chunks: a file per few kilobytes costs more in metadata and opens than in bytes. It
// costs files and listings, not reads or memory: advice that never stops a run.
void tiny_chunks(const Plan& plan, std::vector<Recommendation>& out) {
  constexpr uint64_t kTiny = 64u << 10;
  constexpr int64_t kMany = 1000;
  for (const auto& a : plan.arrays) {
    if (a.coordinate || a.ndim() == 0 || a.num_chunks() <= kMany) continue;
    const uint64_t bytes = a.chunk_bytes();
    if (bytes >= kTiny) continue;
    // Along the first dimension, the chunk that makes about 4 MB.
    const int64_t along = std::min<int64_t>(
        a.shape[0], a.chunks[0] * std::max<int64_t>(1, static_cast<int64_t>((4u << 20) / bytes)));
    out.push_back({"chunks." + a.dims[0],
                   fmt::format("'{}' would be written as {} of {} each; Zarr stores read "
                               "and list best with chunks of 1-16 MB: e.g. chunks: {{{}: {}}} "
                               "makes {}",
                               a.name, counted(a.num_chunks(), "chunk"),
                               format_bytes(static_cast<double>(bytes)), a.dims[0], along,
                               counted(a.num_chunks() / a.chunks_along(0) *
                                           ((a.shape[0] + along - 1) / along),
                                       "chunk")),
                   false});
    return;  // one is enough to make the point
  }
}

// Whether output chunks of `a` along `d` end inside source chunks, counted from where the
// selection starts on a source chunk edge (else the selection edge is the advice).
bool chunks_cut_source(const ArrayPlan& a, std::size_t d) {
  const auto& e = a.source.grid.edges[d];
  const DimMap& m = a.index[d];
  const int64_t c = a.chunks[d];
  bool cuts = false;
  for (int64_t k = 1; k < a.chunks_along(d) && !cuts; ++k) {
    const int64_t boundary =
        m.segments[0].step > 0 ? m.source_index(k * c) : m.source_index(k * c - 1);
    cuts = !std::binary_search(e.begin(), e.end(), boundary);
  }
  if (!cuts) return false;
  int64_t anchor_lo, anchor_hi;
  m.source_hull(0, a.shape[d], &anchor_lo, &anchor_hi);
  const int64_t anchor = m.segments[0].step > 0 ? anchor_lo : anchor_hi;
  return std::binary_search(e.begin(), e.end(), anchor);
}

// Chunk sizes aligned with source chunks of `s` near the chunk size `c`.
std::set<int64_t> aligned_chunk_sizes(int64_t s, int64_t c) {
  std::set<int64_t> candidates;
  if (c > s) candidates.insert(c / s * s), candidates.insert((c / s + 1) * s);
  for (int64_t k = 1; k <= s; ++k)
    if (s % k == 0 && (k == s || std::llabs(k - c) * 2 <= c)) candidates.insert(k);
  candidates.insert(s);
  return candidates;
}

// The plan with chunk size `alt_c` along dimension `d` of `a`.
Outcome replan_chunk(const Dataset& ds, const Selection& sel, const Config& cfg,
                     const PlanOptions& opt, const ArrayPlan& a, std::size_t d, int64_t alt_c) {
  Config alt = cfg;
  alt.chunks_auto = false;
  bool set = false;
  for (auto& [dim, size] : alt.chunks)
    if (dim == a.dims[d] || dim == a.index[d].source) size = alt_c, set = true;
  if (!set) alt.chunks.emplace_back(a.dims[d], alt_c);
  return replan(ds, sel, alt, opt);
}

// Up to three aligned chunk sizes along `d` that save something, nearest the current one first.
std::vector<std::pair<int64_t, Outcome>> chunk_alternatives(const Dataset& ds, const Selection& sel,
                                                            const Config& cfg,
                                                            const PlanOptions& opt,
                                                            const ArrayPlan& a, std::size_t d,
                                                            const Outcome& now) {
  const int64_t c = a.chunks[d];
  std::vector<std::pair<int64_t, Outcome>> alts;
  for (int64_t alt_c : aligned_chunk_sizes(a.source.grid.chunk_shape[d], c)) {
    if (alt_c <= 0 || alt_c == c || alt_c > a.shape[d] * 2) continue;
    Outcome o = replan_chunk(ds, sel, cfg, opt, a, d, alt_c);
    if (saves(now, o, 0)) alts.emplace_back(alt_c, o);
  }
  std::sort(alts.begin(), alts.end(), [&](const auto& x, const auto& y) {
    return std::llabs(x.first - c) < std::llabs(y.first - c);
  });
  if (alts.size() > 3) alts.resize(3);
  return alts;
}

void chunk_sizes(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt,
                 const Plan& plan, const Outcome& now, std::vector<Recommendation>& out) {
  std::set<std::string> done;
  for (const auto& a : plan.arrays) {
    if (a.coordinate) continue;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      if (done.count(a.dims[d]) || !a.index[d].linear() || a.stored) continue;
      // Output chunk boundaries inside source chunks make units larger (memory) or re-reads.
      if (!chunks_cut_source(a, d)) continue;
      done.insert(a.dims[d]);
      const auto alts = chunk_alternatives(ds, sel, cfg, opt, a, d, now);
      if (alts.empty()) continue;
      std::string msg =
          fmt::format("output chunk size {} along '{}' cuts through source chunks of {}.",
                      a.chunks[d], a.dims[d], a.source.grid.chunk_shape[d]);
      bool any_saves = false;  // worth stopping a run for, not only worth saying
      for (const auto& [alt_c, o] : alts) {
        msg += fmt::format("\n    {}: {}", alt_c, effect(now, o));
        any_saves |= saves(now, o, kMinMemorySaving);
      }
      out.push_back({"chunks." + a.dims[d], msg, any_saves});
    }
  }
}

}  // namespace

namespace {

// Whether tiles of `size` along the tiled dimension of `m` (of `original` before padding) all
// start on a source chunk edge (`e`).
bool tiles_align(const DimMap& m, const std::vector<int64_t>& e, int64_t size, int64_t original) {
  for (int64_t k = size; k < original; k += size) {
    const int64_t p = m.source_index(k);
    const int64_t edge = m.segments[0].step > 0 ? p : p + 1;
    if (!std::binary_search(e.begin(), e.end(), edge)) return false;
  }
  return true;
}

// Tile sizes near `n` that source chunks of `s` could align with.
std::set<int64_t> tile_candidates(int64_t n, int64_t s) {
  std::set<int64_t> candidates;
  if (n > s) candidates.insert(n / s * s), candidates.insert((n / s + 1) * s);
  int64_t best_divisor = 0;
  for (int64_t k = 1; k <= s; ++k)
    if (s % k == 0 && (best_divisor == 0 || std::llabs(k - n) < std::llabs(best_divisor - n)))
      best_divisor = k;
  candidates.insert(best_divisor);
  candidates.insert(s);
  return candidates;
}

// The plan with tiles of `c` along the i-th tiled dimension (padded to whole tiles).
Outcome replan_tiles(const Dataset& ds, const Selection& sel, const Config& cfg,
                     const PlanOptions& opt, std::size_t i, int64_t c) {
  const Selection::Tiling& t = *sel.tiling;
  Selection alt = sel;
  Selection::Tiling& at = *alt.tiling;
  at.sizes[i] = c;
  for (auto& am : alt.dims)
    if (am.name == t.dims[i]) am.count = (t.original[i] + c - 1) / c * c;
  if (!at.labels[i].empty()) {
    at.labels[i].resize(static_cast<std::size_t>(t.original[i]));
    at.labels[i].resize(static_cast<std::size_t>((t.original[i] + c - 1) / c * c), std::nan(""));
  }
  return replan(ds, alt, cfg, opt);
}

// The advice for the i-th tiled dimension, dimension `d` of the tiled array `a`.
Recommendation tile_advice(const Dataset& ds, const Selection& sel, const Config& cfg,
                           const PlanOptions& opt, const ArrayPlan& a, std::size_t d, std::size_t i,
                           const Outcome& now) {
  const Selection::Tiling& t = *sel.tiling;
  const DimMap& m = a.index[d];
  const auto& e = a.source.grid.edges[d];
  const int64_t n = t.sizes[i], s = a.source.grid.chunk_shape[d];
  std::string msg = fmt::format("tiles of {} along '{}' cut source chunks (every {} along '{}').",
                                n, t.dims[i], s, m.source);
  int shown = 0;
  bool any_saves = false;
  for (int64_t c : tile_candidates(n, s)) {
    if (c <= 0 || c == n || !tiles_align(m, e, c, t.original[i])) continue;
    const Outcome o = replan_tiles(ds, sel, cfg, opt, i, c);
    any_saves |= saves(now, o, kMinMemorySaving);
    msg += fmt::format("\n    tile size {}: {}", c, effect(now, o));
    ++shown;
  }
  if (!shown)
    msg += fmt::format(
        " No tile size lines up with them from where the selection starts; a "
        "selection that starts on a chunk edge lets tiles of a multiple of {} align.",
        s);
  const std::size_t pre = cfg.preprocessors.size() - 1;
  return {fmt::format("preprocessors[{}].{}", pre, t.dims[i]), msg, any_saves};
}

}  // namespace

// Tiles whose edges fall inside source chunks make units span several tiles (memory) or re-read
// chunks: say so, with the aligned tile sizes and what each would change (the original package's
// _recommend_tiling).
void tile_sizes(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt,
                const Plan& plan, const Outcome& now, std::vector<Recommendation>& out) {
  if (!sel.tiling || !sel.tiling->pad || cfg.preprocessors.empty()) return;
  const Selection::Tiling& t = *sel.tiling;
  const ArrayPlan* a = nullptr;
  for (const auto& cand : plan.arrays)
    if (cand.stored) {
      a = &cand;
      break;
    }
  if (!a) return;
  for (std::size_t i = 0; i < t.dims.size(); ++i) {
    std::size_t d = 0;
    while (d < a->ndim() && a->dims[d] != t.dims[i]) ++d;
    if (d == a->ndim()) continue;
    if (tiles_align(a->index[d], a->source.grid.edges[d], t.sizes[i], t.original[i])) continue;
    out.push_back(tile_advice(ds, sel, cfg, opt, *a, d, i, now));
  }
}

std::vector<Recommendation> recommend(const Dataset& ds, const Coordinates& coords,
                                      const Selection& sel, const Config& cfg,
                                      const PlanOptions& opt, const Plan& plan) {
  std::vector<Recommendation> out;
  Outcome now;
  now.ok = true;
  now.read_bytes = plan.summary.read_bytes;
  now.amplification = plan.summary.read_amplification;
  now.peak = plan.summary.peak_memory;
  now.output_bytes = plan.summary.output_bytes;
  selection_edges(ds, coords, sel, cfg, opt, plan, now, out);
  chunk_sizes(ds, sel, cfg, opt, plan, now, out);
  tiny_chunks(plan, out);
  tile_sizes(ds, sel, cfg, opt, plan, now, out);
  if (plan.summary.read_amplification > 1.0 + 1e-9) {
    uint64_t need = 0;
    for (auto a : plan.arrays) {
      if (a.coordinate) continue;
      a.per_chunk_units.assign(a.ndim(), false);
      need = std::max(need, predicted_peak(a, opt.threads_per_worker, plan.reads_remote()));
    }
    out.push_back(
        {"memory_limit",
         fmt::format("memory_limit {} makes jobs re-read source chunks (read amplification "
                     "{:.2f}); with memory_limit {} every source chunk is read once.",
                     format_bytes(static_cast<double>(opt.memory_limit)),
                     plan.summary.read_amplification,
                     format_bytes(static_cast<double>(need) * 1.05))});
  }
  return out;
}

}  // namespace zp
