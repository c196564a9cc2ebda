#include "plan/plan_svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "core/plural.hpp"
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

// Where a panel draws: the dimensions shown as rows (rd) and columns (cd), the scale, the area.
struct Frame {
  std::size_t rd = 0, cd = 0;
  bool two = false;  // rows and columns; else one row
  double scale = 1, w = 0, h = 0, x0 = 40, top = 0;
};

// The named dimensions the array has first, then the last two (the map in CF order: a
// time-series rechunk drawn as time x longitude is a sliver); a 1-D array is one row.
Frame frame_of(const ArrayPlan& a, const std::vector<std::string>& named, double y0) {
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
  Frame f;
  f.two = shown.size() == 2;
  f.rd = shown[0];
  f.cd = f.two ? shown[1] : shown[0];
  const double rows = f.two ? static_cast<double>(a.shape[f.rd]) : 1.0;
  const double cols = static_cast<double>(a.shape[f.cd]);
  f.scale = kSide / std::max(rows, cols);
  f.w = cols * f.scale;
  f.h = f.two ? rows * f.scale : 40;
  f.top = y0 + 40;
  return f;
}

// One job's output chunks (those drawn), its colour; outlined red when it re-reads.
void draw_job(const ArrayPlan& a, const Job& j, bool rereads, const Frame& f, std::string& svg) {
  const char* colour = kJobColours[static_cast<std::size_t>(j.id) % std::size(kJobColours)];
  const std::size_t rd = f.rd, cd = f.cd;
  for (int64_t r = f.two ? j.region.lo[rd] : 0; r < (f.two ? j.region.hi[rd] : 1); ++r)
    for (int64_t c = j.region.lo[cd]; c < j.region.hi[cd]; ++c) {
      const double cx = f.x0 + static_cast<double>(c * a.chunks[cd]) * f.scale;
      const double cy = f.top + (f.two ? static_cast<double>(r * a.chunks[rd]) * f.scale : 0);
      const double cw =
          static_cast<double>(std::min(a.chunks[cd], a.shape[cd] - c * a.chunks[cd])) * f.scale;
      const double ch =
          f.two ? static_cast<double>(std::min(a.chunks[rd], a.shape[rd] - r * a.chunks[rd])) *
                      f.scale
                : f.h;
      svg += fmt::format(
          R"(<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}" fill-opacity="0.85" stroke="{}" stroke-width="{}"><title>job {}</title></rect>)",
          cx, cy, cw, ch, colour, rereads ? "#d00000" : "#ffffff", rereads ? 2 : 0.5, j.id);
    }
}

// Jobs by output chunk (hidden dimensions at chunk 0), and whether a job re-reads.
void draw_jobs(const Plan& plan, std::size_t ai, const Frame& f, std::string& svg) {
  const ArrayPlan& a = plan.arrays[ai];
  std::map<int64_t, int> readers;
  for (const auto& j : plan.jobs)
    if (j.array == static_cast<int>(ai))
      for (int64_t s : j.source_chunks) ++readers[s];
  for (const auto& j : plan.jobs) {
    if (j.array != static_cast<int>(ai)) continue;
    bool hidden_zero = true;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      if (d != f.rd && d != f.cd) hidden_zero &= j.region.lo[d] == 0;
    if (!hidden_zero) continue;
    bool rereads = false;
    for (int64_t s : j.source_chunks) rereads |= readers[s] > 1;
    draw_job(a, j, rereads, f, svg);
  }
}

// Source chunk edges through the map (dashed), and selection edges that cut source chunks (red).
void draw_edges(const ArrayPlan& a, const Frame& f, std::string& svg) {
  const double x0 = f.x0, top = f.top, w = f.w, h = f.h;
  for (int64_t e : source_edges(a, f.cd))
    svg += fmt::format(
        R"(<line x1="{0:.2f}" y1="{1:.2f}" x2="{0:.2f}" y2="{2:.2f}" stroke="#333" stroke-width="0.6" stroke-dasharray="2,2"/>)",
        x0 + static_cast<double>(e) * f.scale, top, top + h);
  if (f.two)
    for (int64_t e : source_edges(a, f.rd))
      svg += fmt::format(
          R"(<line x1="{0:.2f}" y1="{1:.2f}" x2="{2:.2f}" y2="{1:.2f}" stroke="#333" stroke-width="0.6" stroke-dasharray="2,2"/>)",
          x0, top + static_cast<double>(e) * f.scale, x0 + w);
  auto edge_line = [&](double xa, double ya, double xb, double yb) {
    svg += fmt::format(
        R"(<line x1="{:.2f}" y1="{:.2f}" x2="{:.2f}" y2="{:.2f}" stroke="#d00000" stroke-width="3" stroke-dasharray="6,3"/>)",
        xa, ya, xb, yb);
  };
  if (cuts(a, f.cd, false)) edge_line(x0, top, x0, top + h);
  if (cuts(a, f.cd, true)) edge_line(x0 + w, top, x0 + w, top + h);
  if (f.two && cuts(a, f.rd, false)) edge_line(x0, top, x0 + w, top);
  if (f.two && cuts(a, f.rd, true)) edge_line(x0, top + h, x0 + w, top + h);
}

// The axes' captions, and the dimensions not drawn along which jobs differ; returns whether
// there are such.
bool draw_captions(const Plan& plan, std::size_t ai, const Frame& f, std::string& svg) {
  const ArrayPlan& a = plan.arrays[ai];
  const std::size_t rd = f.rd, cd = f.cd;
  svg += fmt::format(R"(<text x="{}" y="{:.2f}" font-size="12">{} → ({}, chunks of {})</text>)",
                     f.x0, f.top + f.h + 18, escape(a.dims[cd]), counted(a.shape[cd], "value"),
                     a.chunks[cd]);
  if (f.two)
    svg += fmt::format(R"(<text x="{}" y="{:.2f}" font-size="12">{} ↓ ({}, chunks of {})</text>)",
                       f.x0, f.top + f.h + 34, escape(a.dims[rd]), counted(a.shape[rd], "value"),
                       a.chunks[rd]);
  const std::string hidden = hidden_job_dims(plan, ai, rd, cd);
  if (!hidden.empty())
    svg += fmt::format(
        R"(<text x="{}" y="{:.2f}" font-size="12">jobs also differ along {} (drawn: the jobs at its first chunk)</text>)",
        f.x0, f.top + f.h + (f.two ? 50 : 34), escape(hidden));
  return !hidden.empty();
}

// Draws one array's panel from y0 down; returns the height it took.
double panel(const Plan& plan, std::size_t ai, double y0, const std::vector<std::string>& named,
             std::string& svg) {
  const ArrayPlan& a = plan.arrays[ai];
  const Frame f = frame_of(a, named, y0);
  svg +=
      fmt::format(R"(<text x="{}" y="{}" font-size="15" font-weight="bold">{} ({})</text>)", f.x0,
                  y0 + 22, escape(a.name), escape(fmt::format("{}", fmt::join(a.dims, ", "))));
  draw_jobs(plan, ai, f, svg);
  draw_edges(a, f, svg);
  const bool hidden = draw_captions(plan, ai, f, svg);
  return (f.top - y0) + f.h + (hidden ? 66 : 50);
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
      R"(<text x="40" y="26" font-size="14">{} · read amplification {:.2f} · peak memory per worker {} · reads {}</text>)",
      counted(static_cast<int64_t>(plan.jobs.size()), "job"), s.read_amplification,
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
