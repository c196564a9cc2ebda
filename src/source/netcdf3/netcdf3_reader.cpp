#include "source/netcdf3/netcdf3_reader.hpp"

#include <algorithm>
#include <cstring>

#include "core/cf_time.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/json_nonfinite.hpp"
#include "core/utf8.hpp"
#include "source/char_arrays.hpp"
#include "source/netcdf4/netcdf4_reader.hpp"

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

}  // namespace

bool is_netcdf3(const Bytes& head) {
  return head.size() >= 4 && head[0] == 'C' && head[1] == 'D' && head[2] == 'F' &&
         (head[3] == 1 || head[3] == 2 || head[3] == 5);
}

ScanPart describe_netcdf3(Readable& reader, const std::string& location, uint64_t size,
                          const std::string& group) {
  if (!group.empty())
    throw Error::config("group", "no group '" + group + "' in " + location + " (it has none)");
  Header h;
  int version = 0;
  Bytes head;  // the attributes' values point into it
  for (uint64_t want = std::min<uint64_t>(size, 256 << 10);; want = std::min(size, want * 4)) {
    head = reader.read(location, 0, want);
    if (!is_netcdf3(head)) throw Error::source(location, "not a NetCDF-3 file");
    version = head[3];
    try {
      h = parse(head, version);
      break;
    } catch (const OutOfHeader&) {
      if (want >= size)
        throw Error::source(location, "NetCDF-3 header runs past the end of the file");
    } catch (const Error& e) {
      throw Error::source(location, e.what());
    }
  }
  // The record dimension and the size of one record (all record variables' slabs, padded to 4
  // bytes each unless there is only one record variable).
  std::optional<uint64_t> rec_dim;
  for (uint64_t d = 0; d < h.dims.size(); ++d)
    if (h.dims[d].second == 0) rec_dim = d;
  auto is_record = [&](const Var& v) {
    return rec_dim && !v.dimids.empty() && v.dimids[0] == *rec_dim;
  };
  uint64_t recsize = 0, record_vars = 0, first_record_begin = ~uint64_t{0};
  for (const auto& v : h.vars)
    if (is_record(v)) {
      recsize = std::min<uint64_t>(recsize + std::min<uint64_t>(v.vsize, size + 1), size + 1);
      ++record_vars;
      first_record_begin = std::min(first_record_begin, v.begin);
    }
  auto element_size = [](uint32_t type) -> uint64_t {
    return type == kChar ? 1 : (dtype_of(type) ? static_cast<uint64_t>(dtype_of(type)->size) : 0);
  };
  if (record_vars == 1)
    for (const auto& v : h.vars)
      if (is_record(v)) {
        recsize = element_size(v.type);
        for (std::size_t k = 1; k < v.dimids.size(); ++k)
          if (__builtin_mul_overflow(
                  recsize, h.dims.at(static_cast<std::size_t>(v.dimids[k])).second, &recsize))
            recsize = size + 1;
      }
  if (h.numrecs == ~uint64_t{0})  // written by a stream: as many records as the file holds
    h.numrecs =
        recsize == 0 || first_record_begin > size ? 0 : (size - first_record_begin) / recsize;
  // Every record lies in the file: a header claiming more is damaged (or the file truncated).
  if (h.numrecs > (uint64_t{1} << 31) || h.numrecs > size ||
      (recsize > 0 && h.numrecs > size / recsize))
    throw Error::source(location, "NetCDF-3 header claims " + std::to_string(h.numrecs) +
                                      " records, more than the file holds (truncated?)");

  ScanPart out;
  Dataset& ds = out.ds;
  ds.engine = "netcdf";
  ds.files = {location};
  for (uint64_t d = 0; d < h.dims.size(); ++d) {
    const bool unlim = rec_dim && d == *rec_dim;
    ds.dims.push_back(
        {h.dims[d].first, static_cast<int64_t>(unlim ? h.numrecs : h.dims[d].second), unlim});
  }
  ds.attrs = attrs_json(h.gatts);
  std::vector<DimsUse> uses;
  for (const auto& var : h.vars) {
    DimsUse u{var.name, {}, var.type == kChar};
    for (uint64_t id : var.dimids)
      if (id < h.dims.size()) u.dims.push_back(h.dims[static_cast<std::size_t>(id)].first);
    uses.push_back(std::move(u));
  }
  for (const auto& var : h.vars) {
    const std::string where = location + ", variable '" + var.name + "'";
    for (uint64_t id : var.dimids)
      if (id >= h.dims.size()) throw Error::source(where, "NetCDF-3 header: unknown dimension id");
    const bool record = is_record(var);
    const uint64_t esize = element_size(var.type);
    if (esize == 0) throw Error::source(where, "NetCDF-3 header: unknown variable type");
    Variable v;
    v.name = var.name;
    v.origin = location;
    v.attrs = attrs_json(var.attrs);
    std::vector<int64_t> full;  // every axis, the char length included
    for (uint64_t id : var.dimids) full.push_back(ds.dims[static_cast<std::size_t>(id)].size);
    // Bytes of one record of this variable (record variables), or of all of it.
    uint64_t slab = esize;
    for (std::size_t k = record ? 1 : 0; k < full.size(); ++k)
      if (__builtin_mul_overflow(slab, static_cast<uint64_t>(full[k]), &slab) || slab > size)
        throw Error::source(where, "larger than the file (a damaged header, or a truncated file)");
    const uint64_t records = record ? static_cast<uint64_t>(full[0]) : 1;
    // The variable's bytes, whole, in native order (text, scalars, coordinates: small).
    auto read_all = [&]() {
      std::vector<RangeRequest> ranges;
      for (uint64_t r = 0; r < records; ++r)
        if (slab > 0) ranges.push_back({location, var.begin + r * recsize, slab});
      Bytes all;
      for (auto& piece : reader.read_many(ranges))
        all.insert(all.end(), piece.begin(), piece.end());
      return all;
    };
    if (var.type == kChar) {
      // xarray's rule: the last axis is the strings' length only when it is stackable.
      const bool stacked =
          !full.empty() &&
          char_dim_stackable(ds.dims[static_cast<std::size_t>(var.dimids.back())].name, uses);
      const bool scalar = full.empty() || (full.size() == 1 && stacked);
      const auto width = static_cast<std::size_t>(stacked ? full.back() : 1);
      v.dtype = DType{'S', static_cast<int>(std::max<std::size_t>(width, 1)), false};
      for (std::size_t k = 0; !scalar && k + (stacked ? 1 : 0) < full.size(); ++k) {
        v.dims.push_back(ds.dims[static_cast<std::size_t>(var.dimids[k])].name);
        v.shape.push_back(full[k]);
      }
      take_char_fill_value(v);
      v.missing_chunk_value = nullptr;
      std::size_t n = 1;
      for (int64_t s : v.shape) n *= static_cast<std::size_t>(s);
      check_whole_text_size(n * width, where);
      Bytes data = read_all();
      data.resize(n * static_cast<std::size_t>(v.dtype.size), 0);
      if (scalar) {
        v.grid = ChunkGrid::regular({}, {});
        v.chunks = {ChunkRef{}};
        v.chunks[0].kind = ChunkRef::Kind::Inline;
        v.chunks[0].data = std::make_shared<Bytes>(std::move(data));
      } else {
        v.hold_whole(std::move(data));
      }
      ds.variables.push_back(std::move(v));
      continue;
    }
    const DType stored = *dtype_of(var.type);
    for (std::size_t k = 0; k < full.size(); ++k) {
      v.dims.push_back(ds.dims[static_cast<std::size_t>(var.dimids[k])].name);
      v.shape.push_back(full[k]);
    }
    v.fill_value = nullptr;
    unsigned char fill[8] = {};
    default_fill(native(stored), fill);
    if (v.attrs.contains("_FillValue")) {
      v.fill_value = zarr_fill_value(nonfinite_numbers_to_markers(v.attrs["_FillValue"]));
      v.attrs.erase("_FillValue");
      for (const auto& a : var.attrs)
        if (a.name == "_FillValue" && a.type == var.type && a.n >= 1) {
          const Bytes f = to_native(a.values, 1, stored);
          std::memcpy(fill, f.data(), f.size());
        }
    }
    v.missing_chunk_value = number_json(fill, 0, native(stored));
    if (v.ndim() == 0) {
      // A scalar (grid mapping, scalar coordinate): its one value travels inline, native order.
      v.dtype = native(stored);
      const Bytes raw = reader.read(location, var.begin, esize);
      v.grid = ChunkGrid::regular({}, {});
      v.chunks = {ChunkRef{}};
      v.chunks[0].kind = ChunkRef::Kind::Inline;
      v.chunks[0].data = std::make_shared<Bytes>(to_native(raw.data(), 1, stored));
      ds.variables.push_back(std::move(v));
      continue;
    }
    v.dtype = stored;  // big-endian as stored: the chunk reader swaps after reading
    if (record) {
      std::vector<int64_t> chunk = v.shape;
      chunk[0] = 1;
      for (auto& c : chunk) c = std::max<int64_t>(c, 1);
      v.grid = ChunkGrid::regular(v.shape, chunk, where);
      v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
      for (uint64_t r = 0; r < records && slab > 0; ++r) {
        auto& ref = v.chunks[static_cast<std::size_t>(r)];
        ref.kind = ChunkRef::Kind::Range;
        ref.offset = var.begin + r * recsize;
        ref.length = slab;
      }
    } else {
      // Cut along dim 0 into slabs of at most ~16 MiB, each a byte range.
      std::vector<int64_t> chunk = v.shape;
      const uint64_t row = v.shape[0] > 0 ? slab / static_cast<uint64_t>(v.shape[0]) : 0;
      if (row > 0)
        chunk[0] = std::clamp<int64_t>(static_cast<int64_t>((16u << 20) / row), 1,
                                       std::max<int64_t>(v.shape[0], 1));
      for (auto& c : chunk) c = std::max<int64_t>(c, 1);
      v.grid = ChunkGrid::regular(v.shape, chunk, where);
      v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
      const uint64_t step = static_cast<uint64_t>(chunk[0]) * row;
      for (std::size_t i = 0; i < v.chunks.size() && slab > 0; ++i) {
        v.chunks[i].kind = ChunkRef::Kind::Range;
        v.chunks[i].offset = var.begin + i * step;
        v.chunks[i].length = std::min<uint64_t>(step, slab - i * step);
      }
    }
    if (records > 0 && slab > 0 && var.begin + (records - 1) * recsize + slab > size)
      throw Error::source(where, "data past the end of the file (truncated?)");
    if (v.ndim() == 1 && v.dims[0] == v.name) {
      const Bytes raw = read_all();
      const Bytes nat = to_native(raw.data(), raw.size() / esize, stored);
      std::vector<double> values(raw.size() / esize);
      for (std::size_t i = 0; i < values.size(); ++i)
        values[i] = load_as_double(nat.data(), i, native(stored));
      out.coord_digests[v.name] = sha256_hex(std::string(
          reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)));
      // A time axis (the usual concat_dim): the join converts files counted from their own
      // start to the first file's units, and holds the joined values (join_values).
      if ((v.attrs.contains("units") && v.attrs["units"].is_string() &&
           is_time_units(v.attrs["units"].get<std::string>())) &&
          nat.size() <= kMaxJoinValueBytes)
        out.join_values[v.name] = nat;
    }
    ds.variables.push_back(std::move(v));
  }
  return out;
}

}  // namespace zp
