#include "source/netcdf3/netcdf3_reader.hpp"

#include <algorithm>
#include <cstring>

#include "core/cf_time.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/json_nonfinite.hpp"
#include "core/utf8.hpp"
#include "source/char_arrays.hpp"
#include "source/netcdf_values.hpp"

namespace zp {

namespace {

constexpr uint32_t kDimensionTag = 0x0A, kVariableTag = 0x0B, kAttributeTag = 0x0C;
constexpr uint64_t kStreaming = 0xFFFFFFFFu;

struct OutOfHeader {};  // the header is longer than what was read: read more and parse again

class Cursor {
 public:
  Cursor(const Bytes& b, int version) : b_(b), version_(version) {}
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | b_[at_++];
    return v;
  }
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | b_[at_++];
    return v;
  }
  uint64_t count() { return version_ == 5 ? u64() : u32(); }   // NON_NEG
  uint64_t offset() { return version_ == 1 ? u32() : u64(); }  // OFFSET
  std::string name() {
    const uint64_t n = count();
    if (n > (1u << 16)) throw Error::source(where_, "NetCDF-3 header: a name longer than 64 KiB");
    std::string s = text(n);
    return s;
  }
  std::string text(uint64_t n) {
    need(padded(n));
    std::string s(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += padded(n);
    return s;
  }
  const unsigned char* bytes(uint64_t n) {
    need(padded(n));
    const unsigned char* p = b_.data() + at_;
    at_ += padded(n);
    return p;
  }
  void set_where(const std::string& w) { where_ = w; }
  int version() const { return version_; }

 private:
  static uint64_t padded(uint64_t n) { return (n + 3) / 4 * 4; }
  void need(uint64_t n) {
    if (n > b_.size() || at_ > b_.size() - n) throw OutOfHeader{};
  }
  const Bytes& b_;
  int version_;
  std::size_t at_ = 4;
  std::string where_;
};

enum NcType : uint32_t {
  kByte = 1,
  kChar,
  kShort,
  kInt,
  kFloat,
  kDouble,
  kUbyte,
  kUshort,
  kUint,
  kInt64,
  kUint64
};

std::optional<DType> dtype_of(uint32_t t) {
  switch (t) {
    case kByte:
      return DType{'i', 1, false};
    case kShort:
      return DType{'i', 2, true};
    case kInt:
      return DType{'i', 4, true};
    case kFloat:
      return DType{'f', 4, true};
    case kDouble:
      return DType{'f', 8, true};
    case kUbyte:
      return DType{'u', 1, false};
    case kUshort:
      return DType{'u', 2, true};
    case kUint:
      return DType{'u', 4, true};
    case kInt64:
      return DType{'i', 8, true};
    case kUint64:
      return DType{'u', 8, true};
    default:
      return std::nullopt;
  }
}

DType native(DType t) {
  t.big_endian = false;
  return t;
}

// Big-endian values to native order.
Bytes to_native(const unsigned char* p, uint64_t n, DType t) {
  Bytes out(p, p + n * static_cast<uint64_t>(t.size));
  if (t.size > 1) byteswap(out.data(), n, t.size);
  return out;
}

struct Attribute {
  std::string name;
  uint32_t type = 0;
  uint64_t n = 0;
  const unsigned char* values = nullptr;
};

std::vector<Attribute> read_attributes(Cursor& c) {
  const uint32_t tag = c.u32();
  const uint64_t n = c.count();
  if (tag == 0 && n == 0) return {};
  if (tag != kAttributeTag) throw Error::source("", "NetCDF-3 header: attribute list expected");
  std::vector<Attribute> out;
  for (uint64_t i = 0; i < n; ++i) {
    Attribute a;
    a.name = c.name();
    a.type = c.u32();
    a.n = c.count();
    const auto t = dtype_of(a.type);
    if (a.type != kChar && !t) throw Error::source("", "NetCDF-3 header: unknown attribute type");
    const uint64_t size = a.type == kChar ? 1 : static_cast<uint64_t>(t->size);
    if (a.n > (uint64_t{1} << 32) / size) throw OutOfHeader{};
    a.values = c.bytes(a.n * size);
    out.push_back(a);
  }
  return out;
}

Attrs attrs_json(const std::vector<Attribute>& list) {
  Attrs attrs = Attrs::object();
  for (const auto& a : list) {
    if (a.type == kChar) {
      std::string text(reinterpret_cast<const char*>(a.values), a.n);
      while (!text.empty() && text.back() == '\0') text.pop_back();
      attrs[a.name] = to_valid_utf8(text);
      continue;
    }
    const DType t = *dtype_of(a.type);
    const Bytes v = to_native(a.values, a.n, t);
    nlohmann::json arr = nlohmann::json::array();
    for (uint64_t k = 0; k < a.n; ++k) arr.push_back(number_json(v.data(), k, native(t), false));
    attrs[a.name] = a.n == 1 ? arr[0] : arr;
  }
  return attrs;
}

struct Var {
  std::string name;
  std::vector<uint64_t> dimids;
  std::vector<Attribute> attrs;
  uint32_t type = 0;
  uint64_t vsize = 0, begin = 0;
};

struct Header {
  uint64_t numrecs = 0;
  std::vector<std::pair<std::string, uint64_t>> dims;  // length 0: the record dimension
  std::vector<Attribute> gatts;
  std::vector<Var> vars;
};

Header parse(const Bytes& head, int version) {
  Cursor c(head, version);
  Header h;
  h.numrecs = version == 5 ? c.u64() : c.u32();
  if (version != 5 && h.numrecs == kStreaming) h.numrecs = ~uint64_t{0};
  uint32_t tag = c.u32();
  uint64_t n = c.count();
  if (!(tag == 0 && n == 0)) {
    if (tag != kDimensionTag) throw Error::source("", "NetCDF-3 header: dimension list expected");
    for (uint64_t i = 0; i < n; ++i) {
      std::string name = c.name();
      h.dims.emplace_back(std::move(name), c.count());
    }
  }
  h.gatts = read_attributes(c);
  tag = c.u32();
  n = c.count();
  if (!(tag == 0 && n == 0)) {
    if (tag != kVariableTag) throw Error::source("", "NetCDF-3 header: variable list expected");
    for (uint64_t i = 0; i < n; ++i) {
      Var v;
      v.name = c.name();
      const uint64_t nd = c.count();
      if (nd > 1024) throw Error::source("", "NetCDF-3 header: more than 1024 dimensions");
      for (uint64_t d = 0; d < nd; ++d) v.dimids.push_back(c.count());
      v.attrs = read_attributes(c);
      v.type = c.u32();
      v.vsize = version == 5 ? c.u64() : c.u32();
      v.begin = c.offset();
      for (uint64_t id : v.dimids)
        if (id >= h.dims.size()) throw Error::source("", "NetCDF-3 header: unknown dimension id");
      h.vars.push_back(std::move(v));
    }
  }
  return h;
}

// The header, read in growing pieces until it parses; the attributes' values point into `head`.
Header read_header(Readable& reader, const std::string& location, uint64_t size, Bytes& head) {
  for (uint64_t want = std::min<uint64_t>(size, 256 << 10);; want = std::min(size, want * 4)) {
    head = reader.read(location, 0, want);
    if (!is_netcdf3(head)) throw Error::source(location, "not a NetCDF-3 file");
    try {
      return parse(head, head[3]);
    } catch (const OutOfHeader&) {
      if (want >= size)
        throw Error::source(location, "NetCDF-3 header runs past the end of the file");
    } catch (const Error& e) {
      throw Error::source(location, e.what());
    }
  }
}

uint64_t element_size(uint32_t type) {
  return type == kChar ? 1 : (dtype_of(type) ? static_cast<uint64_t>(dtype_of(type)->size) : 0);
}

// The record dimension and the size of one record (all record variables' slabs, padded to 4
// bytes each unless there is only one record variable).
struct Records {
  std::optional<uint64_t> dim;
  uint64_t size = 0;
  bool of(const Var& v) const { return dim && !v.dimids.empty() && v.dimids[0] == *dim; }
};

Records records_of(const Header& h, uint64_t size) {
  Records rec;
  for (uint64_t d = 0; d < h.dims.size(); ++d)
    if (h.dims[d].second == 0) rec.dim = d;
  uint64_t record_vars = 0;
  for (const auto& v : h.vars)
    if (rec.of(v)) {
      rec.size = std::min<uint64_t>(rec.size + std::min<uint64_t>(v.vsize, size + 1), size + 1);
      ++record_vars;
    }
  if (record_vars == 1)
    for (const auto& v : h.vars)
      if (rec.of(v)) {
        rec.size = element_size(v.type);
        for (std::size_t k = 1; k < v.dimids.size(); ++k)
          if (__builtin_mul_overflow(
                  rec.size, h.dims.at(static_cast<std::size_t>(v.dimids[k])).second, &rec.size))
            rec.size = size + 1;
      }
  return rec;
}

// The number of records: as the header says, or for a file written by a stream as many as it
// holds. Every record lies in the file: a header claiming more is damaged (or the file truncated).
void count_records(Header& h, const Records& rec, uint64_t size, const std::string& location) {
  uint64_t first_record_begin = ~uint64_t{0};
  for (const auto& v : h.vars)
    if (rec.of(v)) first_record_begin = std::min(first_record_begin, v.begin);
  if (h.numrecs == ~uint64_t{0})
    h.numrecs =
        rec.size == 0 || first_record_begin > size ? 0 : (size - first_record_begin) / rec.size;
  if (h.numrecs > (uint64_t{1} << 31) || h.numrecs > size ||
      (rec.size > 0 && h.numrecs > size / rec.size))
    throw Error::source(location, "NetCDF-3 header claims " + std::to_string(h.numrecs) +
                                      " records, more than the file holds (truncated?)");
}

// What describing one variable reads from: the file, its header and the dataset so far.
struct FileContext {
  Readable& reader;
  const std::string& location;
  uint64_t size;
  const Records& rec;
  const Dataset& ds;
  const std::vector<DimsUse>& uses;
};

// Where one variable's bytes lie.
struct VarLayout {
  std::string where;
  bool record = false;
  uint64_t esize = 0;
  std::vector<int64_t> full;  // every axis, the char length included
  uint64_t slab = 0;          // bytes of one record of this variable, or of all of it
  uint64_t records = 1;
};

VarLayout layout_of(const FileContext& f, const Var& var) {
  VarLayout l;
  l.where = f.location + ", variable '" + var.name + "'";
  for (uint64_t id : var.dimids)
    if (id >= f.ds.dims.size())
      throw Error::source(l.where, "NetCDF-3 header: unknown dimension id");
  l.record = f.rec.of(var);
  l.esize = element_size(var.type);
  if (l.esize == 0) throw Error::source(l.where, "NetCDF-3 header: unknown variable type");
  for (uint64_t id : var.dimids) l.full.push_back(f.ds.dims[static_cast<std::size_t>(id)].size);
  l.slab = l.esize;
  for (std::size_t k = l.record ? 1 : 0; k < l.full.size(); ++k)
    if (__builtin_mul_overflow(l.slab, static_cast<uint64_t>(l.full[k]), &l.slab) ||
        l.slab > f.size)
      throw Error::source(l.where, "larger than the file (a damaged header, or a truncated file)");
  l.records = l.record ? static_cast<uint64_t>(l.full[0]) : 1;
  return l;
}

// The variable's bytes, whole, as stored (text, scalars, coordinates: small).
Bytes read_all(const FileContext& f, const Var& var, const VarLayout& l) {
  std::vector<RangeRequest> ranges;
  for (uint64_t r = 0; r < l.records; ++r)
    if (l.slab > 0) ranges.push_back({f.location, var.begin + r * f.rec.size, l.slab});
  Bytes all;
  for (auto& piece : f.reader.read_many(ranges)) all.insert(all.end(), piece.begin(), piece.end());
  return all;
}

// One value inline: a scalar's chunk.
void hold_scalar(Variable& v, Bytes value) {
  v.grid = ChunkGrid::regular({}, {});
  v.chunks = {ChunkRef{}};
  v.chunks[0].kind = ChunkRef::Kind::Inline;
  v.chunks[0].data = std::make_shared<Bytes>(std::move(value));
}

// Char arrays as text, read whole (xarray's rule: the last axis is the strings' length only when
// it is stackable).
void char_variable(const FileContext& f, const Var& var, const VarLayout& l, Variable& v) {
  const bool stacked =
      !l.full.empty() &&
      char_dim_stackable(f.ds.dims[static_cast<std::size_t>(var.dimids.back())].name, f.uses);
  const bool scalar = l.full.empty() || (l.full.size() == 1 && stacked);
  const auto width = static_cast<std::size_t>(stacked ? l.full.back() : 1);
  v.dtype = DType{'S', static_cast<int>(std::max<std::size_t>(width, 1)), false};
  for (std::size_t k = 0; !scalar && k + (stacked ? 1 : 0) < l.full.size(); ++k) {
    v.dims.push_back(f.ds.dims[static_cast<std::size_t>(var.dimids[k])].name);
    v.shape.push_back(l.full[k]);
  }
  take_char_fill_value(v);
  v.missing_chunk_value = nullptr;
  std::size_t n = 1;
  for (int64_t s : v.shape) n *= static_cast<std::size_t>(s);
  check_whole_text_size(n * width, l.where);
  Bytes data = read_all(f, var, l);
  data.resize(n * static_cast<std::size_t>(v.dtype.size), 0);
  if (scalar)
    hold_scalar(v, std::move(data));
  else
    v.hold_whole(std::move(data));
}

// _FillValue as the fill value, and what never-written data reads as: it, else netCDF's default.
void fill_values(Variable& v, const Var& var, DType stored) {
  v.fill_value = nullptr;
  unsigned char fill[8] = {};
  default_fill(native(stored), fill);
  if (v.attrs.contains("_FillValue")) {
    v.fill_value = zarr_fill_value(nonfinite_numbers_to_markers(v.attrs["_FillValue"]));
    v.attrs.erase("_FillValue");
    for (const auto& a : var.attrs)
      if (a.name == "_FillValue" && a.type == var.type && a.n >= 1) {
        const Bytes fv = to_native(a.values, 1, stored);
        std::memcpy(fill, fv.data(), fv.size());
      }
  }
  v.missing_chunk_value = number_json(fill, 0, native(stored));
}

// Chunk manifest: one chunk per record for record variables; fixed-size ones cut along dim 0
// into slabs of at most ~16 MiB; each a byte range.
void chunk_manifest(const FileContext& f, const Var& var, const VarLayout& l, Variable& v) {
  std::vector<int64_t> chunk = v.shape;
  const uint64_t row = v.shape[0] > 0 ? l.slab / static_cast<uint64_t>(v.shape[0]) : 0;
  if (l.record)
    chunk[0] = 1;
  else if (row > 0)
    chunk[0] = std::clamp<int64_t>(static_cast<int64_t>((16u << 20) / row), 1,
                                   std::max<int64_t>(v.shape[0], 1));
  for (auto& c : chunk) c = std::max<int64_t>(c, 1);
  v.grid = ChunkGrid::regular(v.shape, chunk, l.where);
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  const uint64_t step = static_cast<uint64_t>(chunk[0]) * row;
  const std::size_t n = l.record ? static_cast<std::size_t>(l.records) : v.chunks.size();
  for (std::size_t i = 0; i < n && l.slab > 0; ++i) {
    auto& ref = v.chunks[i];
    ref.kind = ChunkRef::Kind::Range;
    ref.offset = var.begin + i * (l.record ? f.rec.size : step);
    ref.length = l.record ? l.slab : std::min<uint64_t>(step, l.slab - i * step);
  }
  if (l.records > 0 && l.slab > 0 && var.begin + (l.records - 1) * f.rec.size + l.slab > f.size)
    throw Error::source(l.where, "data past the end of the file (truncated?)");
}

// A dimension coordinate's values, read whole for the join's digest; a time axis (the usual
// concat_dim) keeps them: the join converts files counted from their own start to the first
// file's units, and holds the joined values (join_values).
void coordinate_values(const FileContext& f, const Var& var, const VarLayout& l, const Variable& v,
                       DType stored, ScanPart& out) {
  const Bytes raw = read_all(f, var, l);
  const Bytes nat = to_native(raw.data(), raw.size() / l.esize, stored);
  std::vector<double> values(raw.size() / l.esize);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = load_as_double(nat.data(), i, native(stored));
  out.coord_digests[v.name] = sha256_hex(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)));
  if ((v.attrs.contains("units") && v.attrs["units"].is_string() &&
       is_time_units(v.attrs["units"].get<std::string>())) &&
      nat.size() <= kMaxJoinValueBytes)
    out.join_values[v.name] = nat;
}

// A numeric variable: dimensions, fill values, then its one value inline (a scalar: grid
// mapping, scalar coordinate) or its chunk manifest, big-endian as stored (the chunk reader
// swaps after reading).
void numeric_variable(const FileContext& f, const Var& var, const VarLayout& l, Variable& v,
                      ScanPart& out) {
  const DType stored = *dtype_of(var.type);
  for (std::size_t k = 0; k < l.full.size(); ++k) {
    v.dims.push_back(f.ds.dims[static_cast<std::size_t>(var.dimids[k])].name);
    v.shape.push_back(l.full[k]);
  }
  fill_values(v, var, stored);
  if (v.ndim() == 0) {
    v.dtype = native(stored);
    const Bytes raw = f.reader.read(f.location, var.begin, l.esize);
    return hold_scalar(v, to_native(raw.data(), 1, stored));
  }
  v.dtype = stored;
  chunk_manifest(f, var, l, v);
  if (v.ndim() == 1 && v.dims[0] == v.name) coordinate_values(f, var, l, v, stored, out);
}

// Dimensions: the record dimension as long as the records.
void dimensions_of(const Header& h, const Records& rec, Dataset& ds) {
  for (uint64_t d = 0; d < h.dims.size(); ++d) {
    const bool unlim = rec.dim && d == *rec.dim;
    ds.dims.push_back(
        {h.dims[d].first, static_cast<int64_t>(unlim ? h.numrecs : h.dims[d].second), unlim});
  }
}

std::vector<DimsUse> dims_uses(const Header& h) {
  std::vector<DimsUse> uses;
  for (const auto& var : h.vars) {
    DimsUse u{var.name, {}, var.type == kChar};
    for (uint64_t id : var.dimids)
      if (id < h.dims.size()) u.dims.push_back(h.dims[static_cast<std::size_t>(id)].first);
    uses.push_back(std::move(u));
  }
  return uses;
}

}  // namespace

bool is_netcdf3(const Bytes& head) {
  return head.size() >= 4 && head[0] == 'C' && head[1] == 'D' && head[2] == 'F' &&
         (head[3] == 1 || head[3] == 2 || head[3] == 5);
}

// open → dimensions → attributes → variables (their attributes, inline values, chunk manifest).
ScanPart describe_netcdf3(Readable& reader, const std::string& location, uint64_t size,
                          const std::string& group) {
  if (!group.empty())
    throw Error::config("group", "no group '" + group + "' in " + location + " (it has none)");
  Bytes head;  // the attributes' values point into it
  Header h = read_header(reader, location, size, head);
  const Records rec = records_of(h, size);
  count_records(h, rec, size, location);
  ScanPart out;
  out.ds.engine = "netcdf";
  out.ds.files = {location};
  dimensions_of(h, rec, out.ds);
  out.ds.attrs = attrs_json(h.gatts);
  const std::vector<DimsUse> uses = dims_uses(h);
  const FileContext f{reader, location, size, rec, out.ds, uses};
  for (const auto& var : h.vars) {
    const VarLayout l = layout_of(f, var);
    Variable v;
    v.name = var.name;
    v.origin = location;
    v.attrs = attrs_json(var.attrs);
    if (var.type == kChar)
      char_variable(f, var, l, v);
    else
      numeric_variable(f, var, l, v, out);
    out.ds.variables.push_back(std::move(v));
  }
  return out;
}

}  // namespace zp
