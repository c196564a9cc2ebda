#include "transform/selection.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "source/chunk_reader.hpp"
#include "transform/element_transform.hpp"

namespace zp {

using json = nlohmann::json;

DimMap DimMap::identity(const std::string& dim, int64_t n) {
  return linear(dim, dim, 0, n, 1);
}

DimMap DimMap::linear(const std::string& source, const std::string& name, int64_t start,
                      int64_t count, int64_t step) {
  DimMap m;
  m.source = source;
  m.name = name;
  m.count = count;
  if (count > 0) m.segments.push_back({0, count, start, step});
  return m;
}

int64_t DimMap::source_index(int64_t i) const {
  for (const auto& s : segments)
    if (i >= s.out && i < s.out + s.count) return s.src + s.step * (i - s.out);
  throw Error::internal("output index " + std::to_string(i) + " of '" + name + "' reads no source");
}

std::vector<Segment> DimMap::pieces(int64_t a, int64_t b) const {
  std::vector<Segment> out;
  for (const auto& s : segments) {
    const int64_t lo = std::max(a, s.out), hi = std::min(b, s.out + s.count);
    if (lo < hi) out.push_back({lo, hi - lo, s.src + s.step * (lo - s.out), s.step});
  }
  return out;
}

void DimMap::source_hull(int64_t a, int64_t b, int64_t* lo, int64_t* hi) const {
  *lo = INT64_MAX;
  *hi = INT64_MIN;
  for (const auto& p : pieces(a, b)) {
    *lo = std::min(*lo, p.src_lo());
    *hi = std::max(*hi, p.src_hi());
  }
  if (*lo > *hi) *lo = *hi = 0;
}

DimMap DimMap::sliced(int64_t a, int64_t b) const {
  DimMap m = *this;
  m.count = std::max<int64_t>(b - a, 0);
  m.segments.clear();
  for (auto p : pieces(a, b)) {
    p.out -= a;
    m.segments.push_back(p);
  }
  return m;
}

DimMap DimMap::reversed() const {
  DimMap m = *this;
  m.segments.clear();
  for (auto it = segments.rbegin(); it != segments.rend(); ++it)
    m.segments.push_back({count - (it->out + it->count), it->count, it->last_src(), -it->step});
  return m;
}

DimMap DimMap::rolled(int64_t shift) const {
  if (count == 0) return *this;
  const int64_t k = ((shift % count) + count) % count;
  if (k == 0) return *this;
  // xarray: output i holds input (i - k) mod n, so input [n - k, n) comes first.
  DimMap head = sliced(count - k, count), tail = sliced(0, count - k);
  DimMap m = *this;
  m.segments = head.segments;
  for (auto s : tail.segments) {
    s.out += k;
    m.segments.push_back(s);
  }
  // Neighbouring segments that continue each other become one.
  std::vector<Segment> merged;
  for (const auto& s : m.segments) {
    if (!merged.empty()) {
      Segment& p = merged.back();
      if (p.out + p.count == s.out && p.step == s.step && p.src + p.step * p.count == s.src) {
        p.count += s.count;
        continue;
      }
    }
    merged.push_back(s);
  }
  m.segments = std::move(merged);
  return m;
}

const DimMap& Selection::dim(const std::string& source_dim) const {
  for (const auto& d : dims)
    if (d.source == source_dim) return d;
  throw Error::internal("no dimension " + source_dim);
}

const DimMap* Selection::find_output(const std::string& output_name) const {
  for (const auto& d : dims)
    if (d.name == output_name) return &d;
  return nullptr;
}

std::string Selection::output_name_of_var(const std::string& source_var) const {
  const auto it = var_renames.find(source_var);
  return it == var_renames.end() ? source_var : it->second;
}

namespace {

// The labels of a 1-D coordinate from its stored bytes `raw` (native order). A packed one is
// decoded first (GOES ABI x/y: int16 with scale_factor and add_offset, radians to xarray).
CoordinateValues coordinate_values(const Variable& v, const Bytes& raw) {
  CoordinateValues c;
  const auto n = static_cast<std::size_t>(v.shape[0]);
  c.values.resize(n);
  c.text = !v.dtype.numeric();
  c.dtype = v.dtype.native();
  if (c.text) return c;
  const Conversion conv = cf_decoding(v);
  c.packed = conv.has_scale || conv.has_offset || !(conv.in == c.dtype);
  if (!c.packed) {
    for (std::size_t i = 0; i < n; ++i) c.values[i] = load_as_double(raw.data(), i, c.dtype);
    return c;
  }
  Bytes decoded(n * static_cast<std::size_t>(conv.out.size));
  convert_run(conv, raw.data(), conv.in.size, decoded.data(), n);
  c.dtype = conv.out;
  for (std::size_t i = 0; i < n; ++i) c.values[i] = load_as_double(decoded.data(), i, c.dtype);
  return c;
}

}  // namespace

Coordinates load_coordinates(const Dataset& ds, KeptChunks* kept) {
  Coordinates out;
  ChunkReader reader(ds);
  std::vector<const Variable*> vars;
  for (const auto& dim : ds.dims) {
    const Variable* v = ds.find(dim.name);
    vars.push_back(v && ds.is_dimension_coordinate(*v) ? v : nullptr);
  }
  auto fetched = fetch_whole_1d(reader, vars, kept);  // remote: one round trip for all of them
  for (std::size_t i = 0; i < vars.size(); ++i) {
    const Variable* v = vars[i];
    if (!v) continue;
    const auto& dim = ds.dims[i];
    CoordinateValues c = coordinate_values(*v, read_whole_1d(reader, *v, std::move(fetched[i])));
    const std::string units = v->attrs.value("units", "");
    if (is_time_units(units)) {
      const std::string where = v->origin + ", variable '" + v->name + "' units";
      try {
        c.time = parse_time_units(units, v->attrs.value("calendar", "standard"), where);
        for (double x : c.values) c.time_us.push_back(value_to_us(x, *c.time));
      } catch (const Error& e) {
        c.time.reset();  // not decodable as time: keep plain numbers, as xarray would warn and do
        c.time_error = e.what();
      }
    }
    out.emplace(dim.name, std::move(c));
  }
  return out;
}

namespace {

DimMap& find_dim(Selection& s, const std::string& name, const std::string& key) {
  for (auto& d : s.dims)
    if (d.name == name) return d;
  std::string known;
  for (const auto& d : s.dims) known += (known.empty() ? "" : ", ") + d.name;
  throw Error::config(key, "no dimension '" + name + "' (dimensions: " + known + ")");
}

// Output index range [a, b) of `d` whose coordinate lies within [lo, hi]. False when the labels
// are not monotonic (as after an integer roll): xarray refuses a label slice there too.
template <typename T>
bool range_within(const DimMap& d, const std::vector<T>& values, T lo, T hi, int64_t* a,
                  int64_t* b) {
  *a = -1;
  *b = -1;
  bool up = true, down = true;
  for (int64_t i = 0; i < d.count; ++i) {
    const T v = values[static_cast<std::size_t>(d.source_index(i))];
    if (i > 0) {
      const T prev = values[static_cast<std::size_t>(d.source_index(i - 1))];
      up &= v >= prev;
      down &= v <= prev;
    }
    if (v >= lo && v <= hi) {
      if (*a < 0) *a = i;
      *b = i + 1;
    }
  }
  return up || down;
}

// "'latitude' runs from 90 to -90 (descending, 73 values)" for an empty selection's message.
std::string span_of(const DimMap& d, const CoordinateValues& c, const std::string& name) {
  if (d.count == 0) return "'" + name + "' has no values left";
  auto at = [&](int64_t i) {
    const auto k = static_cast<std::size_t>(d.source_index(i));
    return c.time ? format_datetime(from_us(c.time_us[k], c.time->calendar))
                  : fmt::format("{}", c.values[k]);
  };
  const double first =
      c.time ? static_cast<double>(c.time_us[static_cast<std::size_t>(d.source_index(0))])
             : c.values[static_cast<std::size_t>(d.source_index(0))];
  const double last =
      c.time ? static_cast<double>(c.time_us[static_cast<std::size_t>(d.source_index(d.count - 1))])
             : c.values[static_cast<std::size_t>(d.source_index(d.count - 1))];
  return fmt::format("'{}' runs from {} to {} ({}, {})", name, at(0), at(d.count - 1),
                     last >= first ? "ascending" : "descending", counted(d.count, "value"));
}

// True when a sel range starts or ends outside the coordinate's span (xarray clamps it). A date
// label names a period ("2000-01" is January): it reaches beyond only when the whole period does.
bool reaches_beyond(const DimMap& d, const CoordinateValues& c, const json& r) {
  const auto i0 = static_cast<std::size_t>(d.source_index(0));
  const auto i1 = static_cast<std::size_t>(d.source_index(d.count - 1));
  if (c.time) {
    const int64_t lo_have = std::min(c.time_us[i0], c.time_us[i1]);
    const int64_t hi_have = std::max(c.time_us[i0], c.time_us[i1]);
    int64_t f0, l0, f1, l1;
    label_bounds(r[0].get<std::string>(), c.time->calendar, &f0, &l0, "");
    label_bounds(r[1].get<std::string>(), c.time->calendar, &f1, &l1, "");
    const int64_t lower_last = f0 <= f1 ? l0 : l1, upper_first = f0 <= f1 ? f1 : f0;
    return lower_last < lo_have || upper_first > hi_have;
  }
  const double lo_have = std::min(c.values[i0], c.values[i1]);
  const double hi_have = std::max(c.values[i0], c.values[i1]);
  const double x = r[0].get<double>(), y = r[1].get<double>();
  return std::min(x, y) < lo_have || std::max(x, y) > hi_have;
}

// An open end (null), as in xarray's slice(a, None): the label at that end of the data (the first
// value for the start, the last for the end), so that the range follows a coordinate that grows.
json open_ends_filled(json r, const DimMap& d, const CoordinateValues& c) {
  if (!r.is_array() || r.size() != 2 || d.count == 0) return r;
  for (std::size_t e = 0; e < 2; ++e) {
    if (!r[e].is_null()) continue;
    const auto k = static_cast<std::size_t>(d.source_index(e == 0 ? 0 : d.count - 1));
    r[e] =
        c.time ? json(format_datetime(from_us(c.time_us[k], c.time->calendar))) : json(c.values[k]);
  }
  return r;
}

void apply_sel(Selection& s, const Coordinates& coords, const json& p, const std::string& key) {
  for (const auto& [dim_name, range] : p.items()) {
    if (dim_name == "type") continue;
    const std::string k = key + "." + dim_name;
    DimMap& d = find_dim(s, dim_name, k);
    const auto c = coords.find(d.source);
    if (c == coords.end())
      throw Error::config(k, "dimension '" + dim_name + "' has no coordinate to select on");
    if (c->second.text)
      throw Error::config(k, "'" + dim_name +
                                 "' has text labels, which sel does not match yet: "
                                 "select by position with isel");
    json r = open_ends_filled(range, d, c->second);
    if (r.is_string()) r = json::array({r, r});
    if (!r.is_array() || r.size() != 2)
      throw Error::config(k, "expected a range [start, end], got " + range.dump());
    int64_t a = -1, b = -1;
    if (c->second.time) {
      if (!r[0].is_string() || !r[1].is_string())
        throw Error::config(k, "'" + dim_name + "' is a time coordinate: give dates as strings");
      int64_t f0, l0, f1, l1;
      label_bounds(r[0].get<std::string>(), c->second.time->calendar, &f0, &l0, k);
      label_bounds(r[1].get<std::string>(), c->second.time->calendar, &f1, &l1, k);
      const int64_t lo = std::min(f0, f1), hi = std::max(l0, l1);
      if (!range_within(d, c->second.time_us, lo, hi, &a, &b))
        throw Error::config(k, "'" + dim_name +
                                   "' labels are not monotonic (after a roll?): a range "
                                   "cannot select them; select first, or use isel");
    } else {
      if (!c->second.time_error.empty() && (r[0].is_string() || r[1].is_string()))
        throw Error::config(k, "'" + dim_name + "' cannot be decoded as dates (" +
                                   c->second.time_error +
                                   "), so xarray keeps it as numbers too: select it with numbers");
      if (!r[0].is_number() || !r[1].is_number())
        throw Error::config(k, "expected numbers for '" + dim_name + "', got " + range.dump());
      const double x = r[0].get<double>(), y = r[1].get<double>();
      if (!range_within(d, c->second.values, std::min(x, y), std::max(x, y), &a, &b))
        throw Error::config(k, "'" + dim_name +
                                   "' labels are not monotonic (after a roll by an "
                                   "integer?): a range cannot select them; roll with shifts: auto, "
                                   "select first, or use isel");
    }
    if (a < 0)
      throw Error::config(k, "range " + range.dump() + " selects nothing from '" + dim_name +
                                 "': " + span_of(d, c->second, dim_name));
    if (reaches_beyond(d, c->second, r))
      s.notes.emplace_back(k, "range " + range.dump() + " reaches beyond the coordinate (" +
                                  span_of(d, c->second, dim_name) + "); the " +
                                  std::to_string(b - a) +
                                  " values inside are kept, as xarray does");
    d = d.sliced(a, b);
  }
}

int64_t python_index(const json& v, int64_t n, int64_t fallback, const std::string& key) {
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) throw Error::config(key, "index must be an integer, got " + v.dump());
  int64_t i = v.get<int64_t>();
  if (i < 0) i += n;
  return std::clamp<int64_t>(i, 0, n);
}

void apply_isel(Selection& s, const json& p, const std::string& key) {
  for (const auto& [dim_name, range] : p.items()) {
    if (dim_name == "type") continue;
    const std::string k = key + "." + dim_name;
    DimMap& d = find_dim(s, dim_name, k);
    if (!range.is_array() || range.size() != 2)
      throw Error::config(
          k, "expected [start, stop] (Python slice, stop excluded), got " + range.dump());
    const int64_t a = python_index(range[0], d.count, 0, k),
                  b = python_index(range[1], d.count, d.count, k);
    if (b <= a)
      throw Error::config(k, "range " + range.dump() + " selects nothing from '" + dim_name + "'");
    d = d.sliced(a, b);
  }
}

std::string string_field(const json& p, const char* field, const std::string& key) {
  if (!p.contains(field) || !p[field].is_string())
    throw Error::config(key + "." + field, "required string field is missing");
  return p[field].get<std::string>();
}

// A longitude must not jump (period 360): tiles would join distant places.
void check_no_jump(const DimMap& d, const std::vector<double>& labels, const std::string& k) {
  if ((d.name != "longitude" && d.name != "lon") || labels.size() <= 2) return;
  const double step = labels[1] - labels[0];
  for (std::size_t i = 1; i < labels.size(); ++i)
    if (std::fabs(labels[i] - labels[i - 1] - step) > 1e-6 * std::max(1.0, std::fabs(step)))
      throw Error::config(k, fmt::format("'{}' jumps from {} to {} (period 360): tiles would "
                                         "join distant places; roll first",
                                         d.name, labels[i - 1], labels[i]));
}

// A tiled axis must ascend (times compared as stored, in microseconds).
void check_ascending(const DimMap& d, const CoordinateValues& c, const std::vector<double>& labels,
                     const std::string& k) {
  const bool time = c.time.has_value();
  for (int64_t i = 1; i < d.count; ++i) {
    const auto si = static_cast<std::size_t>(d.source_index(i));
    const double a =
        time ? static_cast<double>(c.time_us[si]) : labels[static_cast<std::size_t>(i)];
    const auto pi = static_cast<std::size_t>(d.source_index(i - 1));
    const double b =
        time ? static_cast<double>(c.time_us[pi]) : labels[static_cast<std::size_t>(i - 1)];
    if (!(a > b))
      throw Error::config(k, fmt::format("tiled axis '{}' must ascend; it does not at position {} "
                                         "(reverse_axis it first)",
                                         d.name, i));
  }
}

// The labels of a tiled dimension as it is selected (none without a numeric coordinate), and
// their dtype in the store.
std::vector<double> tile_labels(const DimMap& d, const Coordinates& coords, const std::string& k,
                                DType& dtype) {
  std::vector<double> labels;
  dtype = DType{'f', 8, false};
  const auto c = coords.find(d.source);
  if (c == coords.end() || c->second.text) return labels;
  for (int64_t i = 0; i < d.count; ++i)
    labels.push_back(c->second.values[static_cast<std::size_t>(d.source_index(i))]);
  check_no_jump(d, labels, k);
  check_ascending(d, c->second, labels, k);
  if (c->second.dtype.kind == 'f') dtype = c->second.dtype;
  return labels;
}

// Tiles of `size` along `d`: padded to whole tiles (the end a gap, read as the fill value) or
// trimmed to them; the dimension joins `t`.
void tile_dimension(Selection::Tiling& t, DimMap& d, int64_t size, const Coordinates& coords,
                    const std::string& k) {
  DType dtype;
  std::vector<double> labels = tile_labels(d, coords, k, dtype);
  const int64_t whole = t.pad ? (d.count + size - 1) / size * size : d.count / size * size;
  if (whole == 0)
    throw Error::config(k, fmt::format("tile size {} is larger than '{}' ({}): boundary trim "
                                       "leaves nothing",
                                       size, d.name, counted(d.count, "value")));
  t.dims.push_back(d.name);
  t.sizes.push_back(size);
  t.original.push_back(d.count);
  if (!labels.empty()) labels.resize(static_cast<std::size_t>(whole), std::nan(""));
  t.labels.push_back(std::move(labels));
  t.label_dtypes.push_back(dtype);
  if (t.pad) {
    d.count = whole;  // the segments stay: the end is a gap, read as the fill value
  } else {
    d = d.sliced(0, whole);
  }
}

// tiled: {D: n, ..., boundary: pad|trim}, as the original's TilerTransform (xarray coarsen +
// construct + stack + transpose). Guards as the original's: a tiled axis must ascend, and a
// longitude must not jump (period 360).
void apply_tiled(Selection& s, const Coordinates& coords, const json& p, const std::string& key) {
  Selection::Tiling t;
  const std::string boundary = p.value("boundary", std::string("pad"));
  if (boundary != "pad" && boundary != "trim")
    throw Error::config(key + ".boundary", "expected pad or trim, got '" + boundary + "'");
  t.pad = boundary == "pad";
  for (const auto& [k, v] : p.items())
    if (k != "type" && k != "boundary") find_dim(s, k, key + "." + k);  // names must exist
  for (auto& d : s.dims) {
    if (!p.contains(d.name)) continue;
    const std::string k = key + "." + d.name;
    const json& n = p[d.name];
    if (!n.is_number_integer() || n.get<int64_t>() < 1)
      throw Error::config(k, "tile size must be a positive integer, got " + n.dump());
    tile_dimension(t, d, n.get<int64_t>(), coords, k);
  }
  if (t.dims.empty())
    throw Error::config(key, "tiled needs at least one dimension and its tile size");
  s.tiling = std::move(t);
}

// Preprocessors with fixed fields refuse others: a misspelled `shift` must not mean "auto".
void check_fields(const json& p, const std::string& type, const std::string& key) {
  static const std::map<std::string, std::vector<std::string>> fields = {
      {"reverse_axis", {"type", "dim"}},
      {"roll", {"type", "dim", "shifts"}},
      {"rename", {"type", "var_id", "new_name"}}};
  const auto it = fields.find(type);
  if (it == fields.end()) return;
  for (const auto& [k, v] : p.items())
    if (std::find(it->second.begin(), it->second.end(), k) == it->second.end()) {
      std::string known;
      for (const auto& f : it->second) known += (known.empty() ? "" : ", ") + f;
      throw Error::config(key + "." + k, "unknown field of " + type + " (" + known + ")");
    }
}

// ((x + 180) % 360) - 180 as numpy computes it in the coordinate's dtype (a float remainder takes
// the divisor's sign).
template <typename T>
T to_pm180(T x) {
  const T t = static_cast<T>(x + static_cast<T>(180));
  T r = static_cast<T>(std::fmod(t, static_cast<T>(360)));
  if (r != 0 && r < 0) r = static_cast<T>(r + static_cast<T>(360));
  return static_cast<T>(r - static_cast<T>(180));
}

// ((x + 180) % 360) - 180 of every label, per source index, in the coordinate's dtype.
Selection::Relabel pm180_labels(const CoordinateValues& cv) {
  Selection::Relabel r;
  r.values = cv.values;
  r.data.resize(cv.values.size() * static_cast<std::size_t>(cv.dtype.size), 0);
  for (std::size_t i = 0; i < cv.values.size(); ++i) {
    const double x = cv.values[i];
    double y;
    if (cv.dtype.kind == 'f' && cv.dtype.size == 4) {
      const float f = to_pm180(static_cast<float>(x));
      y = f;
      std::memcpy(r.data.data() + 4 * i, &f, 4);
    } else if (cv.dtype.kind == 'f') {
      y = to_pm180(x);
      std::memcpy(r.data.data() + 8 * i, &y, 8);
    } else {
      const auto v = static_cast<int64_t>(x);
      const int64_t m = (((v + 180) % 360) + 360) % 360 - 180;
      y = static_cast<double>(m);
      store_from_json(r.data.data(), i, cv.dtype, json(m));
    }
    r.values[i] = y;
  }
  return r;
}

// roll: {dim, shifts: N} is ds.roll(dim=N, roll_coords=True); shifts: auto (or null) is
// ds.assign_coords(dim=((ds[dim] + 180) % 360) - 180).sortby(dim) on a 0..360 periodic axis.
void apply_roll(Selection& s, Coordinates& coords, const json& p, const std::string& key) {
  const std::string dim_name = string_field(p, "dim", key);
  DimMap& d = find_dim(s, dim_name, key + ".dim");
  const json shifts = p.value("shifts", json(nullptr));
  const std::string k = key + ".shifts";
  if (shifts.is_number_integer()) {
    d = d.rolled(shifts.get<int64_t>() % std::max<int64_t>(d.count, 1));
    return;
  }
  if (!shifts.is_null() && shifts != "auto")
    throw Error::config(
        k,
        "expected an integer, or auto (null) to turn 0..360 into -180..180, got " + shifts.dump());
  const auto c = coords.find(d.source);
  if (c == coords.end() || c->second.text || c->second.time)
    throw Error::config(k, "auto needs '" + dim_name + "' to have numeric (longitude) labels");
  CoordinateValues& cv = c->second;
  if (cv.packed)
    throw Error::config(k, "auto does not relabel '" + dim_name +
                               "' yet: its labels are packed (scale_factor, add_offset or "
                               "_Unsigned); roll it by an integer");
  if (d.count < 2)
    throw Error::config(k, "auto needs at least two values along '" + dim_name + "'");
  std::vector<double> seen;
  for (int64_t i = 0; i < d.count; ++i)
    seen.push_back(cv.values[static_cast<std::size_t>(d.source_index(i))]);
  for (std::size_t i = 1; i < seen.size(); ++i)
    if (!(seen[i] > seen[i - 1]))
      throw Error::config(
          k, "auto needs '" + dim_name + "' ascending; it is not at position " + std::to_string(i));
  if (seen.front() < 0)
    throw Error::config(k, "'" + dim_name + "' already runs from " +
                               fmt::format("{}", seen.front()) + " to " +
                               fmt::format("{}", seen.back()) + ": nothing to roll");
  const double spacing = seen[1] - seen[0];
  const double span = seen.back() - seen.front() + spacing;
  if (std::fabs(span - 360) > 1e-6 * 360)
    throw Error::config(k, "auto needs a periodic axis covering 360 degrees; '" + dim_name +
                               "' covers " + fmt::format("{}", span) + " (" +
                               fmt::format("{}", seen.front()) + " to " +
                               fmt::format("{}", seen.back()) + ")");
  Selection::Relabel r = pm180_labels(cv);
  // sortby: the new labels are two ascending runs; the roll that puts the negative run first.
  int64_t first_negative = d.count;
  for (int64_t i = 0; i < d.count; ++i)
    if (r.values[static_cast<std::size_t>(d.source_index(i))] < 0) {
      first_negative = i;
      break;
    }
  d = d.rolled(d.count - first_negative);
  for (int64_t i = 1; i < d.count; ++i)
    if (!(r.values[static_cast<std::size_t>(d.source_index(i))] >
          r.values[static_cast<std::size_t>(d.source_index(i - 1))]))
      throw Error::config(k,
                          "the -180..180 labels of '" + dim_name + "' do not sort into one roll");
  cv.values = r.values;
  s.relabeled[d.source] = std::move(r);
}

void apply_rename(Selection& s, const Dataset& ds, const json& p, const std::string& key) {
  const std::string from = string_field(p, "var_id", key), to = string_field(p, "new_name", key);
  // A clash is this preprocessor's doing: say so here, not later under `variables`.
  if (to != from) {
    for (const auto& v : ds.variables)
      if (s.output_name_of_var(v.name) == to)
        throw Error::config(key + ".new_name", "'" + to + "' is already a variable's name");
    for (const auto& d : s.dims)
      if (d.name == to && !ds.find(d.source))
        throw Error::config(key + ".new_name", "'" + to + "' is already a dimension's name");
  }
  for (auto& d : s.dims)
    if (d.name == from) {
      d.name = to;
      if (ds.find(d.source)) s.var_renames[d.source] = to;
      return;
    }
  for (const auto& v : ds.variables)
    if (s.output_name_of_var(v.name) == from) {
      s.var_renames[v.name] = to;
      return;
    }
  throw Error::config(key + ".var_id", "no variable or dimension named '" + from + "'");
}

}  // namespace

Coordinates with_labels(Coordinates coords, const Selection& s) {
  for (const auto& [dim, r] : s.relabeled) coords[dim].values = r.values;
  return coords;
}

namespace {

// Time coordinates whose units no calendar decodes ('months since' outside 360_day, 'years
// since'): xarray leaves them numbers; so does the store, and the plan says so.
void note_undecoded_times(const Dataset& ds, const Coordinates& coords, Selection& s) {
  auto text = [](const Variable& v, const char* key, const char* otherwise) {
    return v.attrs.contains(key) && v.attrs[key].is_string() ? v.attrs[key].get<std::string>()
                                                             : std::string(otherwise);
  };
  for (const auto& [name, c] : coords) {
    const Variable* v = ds.find(name);
    if (c.time_error.empty() || !v) continue;
    s.notes.emplace_back(name, "units '" + text(*v, "units", "") + "' in the '" +
                                   text(*v, "calendar", "standard") +
                                   "' calendar are no times cftime decodes ('months' only in "
                                   "360_day, 'years' never): kept as the numbers the source "
                                   "holds, as xarray keeps them");
  }
}

}  // namespace

Selection apply_preprocessors(const Dataset& ds, const Coordinates& source_coords,
                              const std::vector<json>& preprocessors) {
  Selection s;
  Coordinates coords = source_coords;  // labels as each preprocessor sees them
  for (const auto& d : ds.dims) s.dims.push_back(DimMap::identity(d.name, d.size));
  note_undecoded_times(ds, source_coords, s);
  for (std::size_t i = 0; i < preprocessors.size(); ++i) {
    const json& p = preprocessors[i];
    const std::string key = fmt::format("preprocessors[{}]", i);
    const std::string type = string_field(p, "type", key);
    check_fields(p, type, key);
    if (type == "sel" || type == "subset") {
      apply_sel(s, coords, p, key);
    } else if (type == "isel") {
      apply_isel(s, p, key);
    } else if (type == "reverse_axis") {
      DimMap& d = find_dim(s, string_field(p, "dim", key), key + ".dim");
      d = d.reversed();
    } else if (type == "rename") {
      apply_rename(s, ds, p, key);
    } else if (type == "roll") {
      apply_roll(s, coords, p, key);
    } else if (type == "tiled") {
      if (i + 1 != preprocessors.size())
        throw Error::config(key + ".type", "tiled must be the last preprocessor");
      apply_tiled(s, coords, p, key);
    } else {
      throw Error::config(key + ".type",
                          "unknown preprocessor '" + type +
                              "' (sel, subset, isel, reverse_axis, roll, rename, tiled)");
    }
  }
  return s;
}

}  // namespace zp
