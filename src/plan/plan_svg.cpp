#include "plan/plan_svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "core/units.hpp"
#include "plan/units.hpp"

namespace zp {

namespace {

// Distinct, readable colours for jobs (cycled).
// No reds: red marks a job that re-reads and a selection edge inside a source chunk.
constexpr const char* kJobColours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
                                       "#edc948", "#9c755f", "#bab0ac", "#86bcb6", "#8cd17d"};
constexpr double kSide = 560;  // drawing area, px

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// Output indices along dimension d at which the source chunk changes (through the index map).
std::vector<int64_t> source_edges(const ArrayPlan& a, std::size_t d) {
  std::vector<int64_t> out;
  int64_t prev = -1;
  for (int64_t i = 0; i < a.shape[d]; ++i) {
    const auto p = a.index[d].pieces(i, i + 1);
    const int64_t c = p.empty() ? -2 : a.source.grid.chunk_of(d, p[0].src);
    if (i > 0 && c != prev) out.push_back(i);
    prev = c;
  }
  return out;
}

// True when output index 0 (or the end) of dimension d starts inside a source chunk.
bool cuts(const ArrayPlan& a, std::size_t d, bool at_end) {
  if (a.shape[d] == 0) return false;
  const auto p = a.index[d].pieces(at_end ? a.shape[d] - 1 : 0, at_end ? a.shape[d] : 1);
  if (p.empty()) return false;
  const int64_t s = p[0].src;
  const auto& e = a.source.grid.edges[d];
  const bool up = p[0].step > 0;
  const int64_t edge = at_end ? (up ? s + 1 : s) : (up ? s : s + 1);
  return !std::binary_search(e.begin(), e.end(), edge);
}

// The dimensions not drawn (neither rd nor cd) along which the array's jobs start at other chunks.
std::string hidden_job_dims(const Plan& plan, std::size_t ai, std::size_t rd, std::size_t cd) {
  const ArrayPlan& a = plan.arrays[ai];
  std::string out;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    if (d == rd || d == cd) continue;
    bool differs = false;
    for (const auto& j : plan.jobs)
      differs |= j.array == static_cast<int>(ai) && j.region.lo[d] != 0;
    if (differs) out += (out.empty() ? "" : ", ") + a.dims[d];
  }
  return out;
}

// Draws one array's panel from y0 down; returns the height it took.
double panel(const Plan& plan, std::size_t ai, double y0, const std::vector<std::string>& named,
             std::string& svg) {
  const ArrayPlan& a = plan.arrays[ai];
  // The named dimensions the array has first, then the last two (the map in CF order: a
  // time-series rechunk drawn as time x longitude is a sliver); a 1-D array is one row.
  auto rank = [&](std::size_t d) {
    const auto it = std::find(named.begin(), named.end(), a.dims[d]);
    return it == named.end() ? named.size() : static_cast<std::size_t>(it - named.begin());
  };
  std::vector<std::size_t> order(a.ndim());
  for (std::size_t d = 0; d < a.ndim(); ++d) order[d] = d;
  std::stable_sort(order.begin(), order.end(), [&](auto x, auto y) {
    if (rank(x) != rank(y)) return rank(x) < rank(y);
    return x > y;
  });
  std::vector<std::size_t> shown(order.begin(),
                                 order.begin() + std::min<std::size_t>(2, order.size()));
  std::sort(shown.begin(), shown.end());
  const bool two = shown.size() == 2;
  const std::size_t rd = shown[0], cd = two ? shown[1] : shown[0];
  const double rows = two ? static_cast<double>(a.shape[rd]) : 1.0;
  const double cols = static_cast<double>(a.shape[cd]);
  const double scale = kSide / std::max(rows, cols);
  const double w = cols * scale, h = two ? rows * scale : 40;
  const double x0 = 40, top = y0 + 40;
  // Jobs by output chunk (hidden dimensions at chunk 0), and whether a job re-reads.
  std::map<int64_t, int> readers;
  for (const auto& j : plan.jobs)
    if (j.array == static_cast<int>(ai))
      for (int64_t s : j.source_chunks) ++readers[s];
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="15" font-weight="bold">{} ({})</text>)", x0,
                     y0 + 22, escape(a.name), escape(fmt::format("{}", fmt::join(a.dims, ", "))));
  const int64_t nr = two ? a.chunks_along(rd) : 1, nc = a.chunks_along(cd);
  for (const auto& j : plan.jobs) {
    if (j.array != static_cast<int>(ai)) continue;
    bool hidden_zero = true;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      if (d != rd && d != cd) hidden_zero &= j.region.lo[d] == 0;
    if (!hidden_zero) continue;
    bool rereads = false;
    for (int64_t s : j.source_chunks) rereads |= readers[s] > 1;
    const char* colour = kJobColours[static_cast<std::size_t>(j.id) % std::size(kJobColours)];
    for (int64_t r = two ? j.region.lo[rd] : 0; r < (two ? j.region.hi[rd] : 1); ++r)
      for (int64_t c = j.region.lo[cd]; c < j.region.hi[cd]; ++c) {
        const double cx = x0 + static_cast<double>(c * a.chunks[cd]) * scale;
        const double cy = top + (two ? static_cast<double>(r * a.chunks[rd]) * scale : 0);
        const double cw =
            static_cast<double>(std::min(a.chunks[cd], a.shape[cd] - c * a.chunks[cd])) * scale;
        const double ch =
            two ? static_cast<double>(std::min(a.chunks[rd], a.shape[rd] - r * a.chunks[rd])) *
                      scale
                : h;
        svg += fmt::format(
            R"(<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}" fill-opacity="0.85" stroke="{}" stroke-width="{}"><title>job {}</title></rect>)",
            cx, cy, cw, ch, colour, rereads ? "#d00000" : "#ffffff", rereads ? 2 : 0.5, j.id);
      }
  }
  (void)nr;
  (void)nc;
  // Source chunk edges through the map.
  for (int64_t e : source_edges(a, cd))
    svg += fmt::format(
        R"(<line x1="{0:.2f}" y1="{1:.2f}" x2="{0:.2f}" y2="{2:.2f}" stroke="#333" stroke-width="0.6" stroke-dasharray="2,2"/>)",
        x0 + static_cast<double>(e) * scale, top, top + h);
  if (two)
    for (int64_t e : source_edges(a, rd))
      svg += fmt::format(
          R"(<line x1="{0:.2f}" y1="{1:.2f}" x2="{2:.2f}" y2="{1:.2f}" stroke="#333" stroke-width="0.6" stroke-dasharray="2,2"/>)",
          x0, top + static_cast<double>(e) * scale, x0 + w);
  // Selection edges that cut source chunks.
  auto edge_line = [&](double xa, double ya, double xb, double yb) {
    svg += fmt::format(
        R"(<line x1="{:.2f}" y1="{:.2f}" x2="{:.2f}" y2="{:.2f}" stroke="#d00000" stroke-width="3" stroke-dasharray="6,3"/>)",
        xa, ya, xb, yb);
  };
  if (cuts(a, cd, false)) edge_line(x0, top, x0, top + h);
  if (cuts(a, cd, true)) edge_line(x0 + w, top, x0 + w, top + h);
  if (two && cuts(a, rd, false)) edge_line(x0, top, x0 + w, top);
  if (two && cuts(a, rd, true)) edge_line(x0, top + h, x0 + w, top + h);
  svg +=
      fmt::format(R"(<text x="{}" y="{:.2f}" font-size="12">{} → ({} values, chunks of {})</text>)",
                  x0, top + h + 18, escape(a.dims[cd]), a.shape[cd], a.chunks[cd]);
  if (two)
    svg += fmt::format(
        R"(<text x="{}" y="{:.2f}" font-size="12">{} ↓ ({} values, chunks of {})</text>)", x0,
        top + h + 34, escape(a.dims[rd]), a.shape[rd], a.chunks[rd]);
  const std::string hidden = hidden_job_dims(plan, ai, rd, cd);
  if (!hidden.empty())
    svg += fmt::format(
        R"(<text x="{}" y="{:.2f}" font-size="12">jobs also differ along {} (drawn: the jobs at its first chunk)</text>)",
        x0, top + h + (two ? 50 : 34), escape(hidden));
  return (top - y0) + h + (hidden.empty() ? 50 : 66);
}

}  // namespace

std::string plan_svg(const Plan& plan, const std::vector<std::string>& dims) {
  for (const auto& d : dims) {
    bool known = false;
    for (const auto& a : plan.arrays)
      known |= std::find(a.dims.begin(), a.dims.end(), d) != a.dims.end();
    if (!known) throw Error::config("--svg-dims", "no output dimension named '" + d + "'");
  }
  std::vector<std::size_t> arrays;
  for (std::size_t i = 0; i < plan.arrays.size(); ++i)
    if (!plan.arrays[i].coordinate && plan.arrays[i].ndim() > 0 && plan.arrays[i].num_chunks() > 0)
      arrays.push_back(i);
  const double width = kSide + 80;
  std::string body;
  const auto& s = plan.summary;
  body += fmt::format(
      R"(<text x="40" y="26" font-size="14">{} jobs · read amplification {:.2f} · peak memory per worker {} · reads {}</text>)",
      plan.jobs.size(), s.read_amplification,
      escape(format_bytes(static_cast<double>(s.peak_memory))),
      escape(format_bytes(static_cast<double>(s.read_bytes))));
  body += R"(<text x="40" y="44" font-size="11">colour: job · dotted: source chunk edges</text>)";
  body +=
      R"(<text x="40" y="58" font-size="11">red outline: a job that re-reads a source chunk · red dashes: a selection edge inside a source chunk</text>)";
  double y = 66;
  for (std::size_t ai : arrays) y += panel(plan, ai, y, dims, body);
  return kPlanSvgMarker +
         fmt::format(
             R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0:.0f}" height="{1:.0f}" viewBox="0 0 {0:.0f} {1:.0f}" font-family="sans-serif"><rect width="100%" height="100%" fill="#ffffff"/>)",
             width, y + 10) +
         body + "</svg>\n";
}

}  // namespace zp
