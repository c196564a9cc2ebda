#include "source/chunk_reader.hpp"

#include <cstring>
#include <optional>

#include "core/crash_note.hpp"
#include "core/error.hpp"

namespace zp {

std::string chunk_location(const Dataset& ds, const Variable& v, int64_t chunk_index) {
  const auto& ref = v.chunks[static_cast<std::size_t>(chunk_index)];
  std::string where = ref.kind == ChunkRef::Kind::Range ? ds.files[ref.file] : ds.uri;
  where += ", variable '" + v.name + "', chunk (";
  const auto c = v.grid.coords(chunk_index);
  for (std::size_t d = 0; d < c.size(); ++d) where += (d ? ", " : "") + std::to_string(c[d]);
  return where + ")";
}

void ChunkReader::expect(const std::vector<Fingerprint>& fingerprints) {
  expecting_ = true;
  for (const auto& f : fingerprints) {
    planned_.insert(f.path);
    if (is_remote(f.path)) {  // checked in every answer's headers, no request of its own
      if (f.size >= 0)
        access_.reader(f.path, f.role)
            .expect_version(f.path, static_cast<uint64_t>(f.size), f.etag);
      continue;
    }
    expected_[f.path] = f;
  }
}

void ChunkReader::compare(uint32_t file, const char* when) {
  const std::string& path = ds_.files.at(file);
  const auto it = expected_.find(path);
  if (it == expected_.end()) return;
  const Fingerprint now = fingerprint_of(it->second, access_);
  if (!(now == it->second))
    throw Error::source(path, describe_change(it->second, now) + " " + when +
                                  "; a store is never written from two versions of its source: "
                                  "run again with resume: false");
}

void ChunkReader::check_unchanged(uint32_t file) {
  if (!expecting_) return;
  const std::string& path = ds_.files.at(file);
  // A file the plan's chunks name but its sources lack has no fingerprint to compare with: only
  // an edited or damaged plan says so. Refused, never read.
  if (!planned_.count(path))
    throw Error::store(path,
                       "is named by the plan's chunks but not among the sources it recorded "
                       "(plan.json damaged or edited): refused, nothing read from it");
  if (expected_.empty()) return;
  {
    std::lock_guard lock(checked_mutex_);
    if (!checked_.insert(file).second) return;
  }
  compare(file, "since the plan was made");
}

void ChunkReader::start_job() {
  std::lock_guard lock(checked_mutex_);
  checked_.clear();
}

void ChunkReader::check_files_read_unchanged() {
  std::set<uint32_t> read;
  {
    std::lock_guard lock(checked_mutex_);
    read = checked_;
  }
  for (uint32_t file : read) compare(file, "while it was read");
}

bool ChunkReader::remote(const Variable& v) const {
  for (const auto& ref : v.chunks)
    if (ref.kind == ChunkRef::Kind::Range) return is_remote(ds_.files.at(ref.file));
  return false;
}

std::vector<std::optional<Bytes>> ChunkReader::fetch_many(const Variable& v,
                                                          const std::vector<int64_t>& indices) {
  std::vector<ChunkOf> chunks;
  chunks.reserve(indices.size());
  for (const int64_t i : indices) chunks.push_back({&v, i});
  return fetch_many(chunks);
}

std::vector<std::optional<Bytes>> ChunkReader::fetch_many(const std::vector<ChunkOf>& chunks) {
  std::vector<std::optional<Bytes>> out(chunks.size());
  std::vector<RangeRequest> requests;
  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const ChunkRef& ref = chunks[i].v->chunks.at(static_cast<std::size_t>(chunks[i].index));
    if (ref.kind != ChunkRef::Kind::Range) continue;
    check_unchanged(ref.file);
    requests.push_back({ds_.files[ref.file], ref.offset, ref.length});
    which.push_back(i);
  }
  if (requests.empty()) return out;
  // One backend per dataset role; requests for several backends (rare) go one by one.
  Readable& first = access_.reader(requests[0].location, ds_.access.data_role());
  bool one_backend = true;
  for (const auto& r : requests)
    if (backend_of(r.location) != backend_of(requests[0].location)) one_backend = false;
  std::vector<Bytes> got;
  if (one_backend) {
    got = first.read_many(requests);
  } else {
    for (const auto& r : requests)
      got.push_back(
          access_.reader(r.location, ds_.access.data_role()).read(r.location, r.offset, r.length));
  }
  for (std::size_t k = 0; k < which.size(); ++k) out[which[k]] = std::move(got[k]);
  return out;
}

std::optional<Bytes> ChunkReader::stored(const Variable& v, int64_t chunk_index,
                                         std::optional<Bytes> fetched) {
  const ChunkRef& ref = v.chunks.at(static_cast<std::size_t>(chunk_index));
  Bytes raw;
  switch (ref.kind) {
    case ChunkRef::Kind::Missing:
      return std::nullopt;
    case ChunkRef::Kind::Inline:
      raw = *ref.data;
      break;
    case ChunkRef::Kind::Range:
      if (fetched) {
        raw = std::move(*fetched);
      } else {
        check_unchanged(ref.file);
        const std::string& where = ds_.files[ref.file];
        raw = access_.reader(where, ds_.access.data_role()).read(where, ref.offset, ref.length);
      }
      break;
  }
  bytes_read_ += raw.size();
  // Uncompressed contiguous data split along dim 0: the last slab is short; pad it.
  const std::size_t nbytes = v.chunk_bytes_of(ref);
  const auto& codecs = v.codecs_of(ref);
  bool no_codec = true;
  for (std::size_t i = 0; i < codecs.size(); ++i)
    if (!(ref.filter_mask & (1u << i))) no_codec = false;
  if (ref.kind == ChunkRef::Kind::Range && raw.size() < nbytes && no_codec) {
    // Exactly the slab's cells, else these are no raw values (compressed bytes described as
    // uncompressed by a damaged or forged manifest): refused, never read as data.
    std::size_t cells = static_cast<std::size_t>(v.dtype.size);
    const auto c = v.grid.coords(chunk_index);
    for (std::size_t d = 0; d < c.size(); ++d) {
      const auto k = static_cast<std::size_t>(c[d]);
      cells *= static_cast<std::size_t>(v.grid.edges[d][k + 1] - v.grid.edges[d][k]);
    }
    if (raw.size() != cells)
      throw Error::source(chunk_location(ds_, v, chunk_index),
                          "uncompressed chunk of " + std::to_string(raw.size()) +
                              " bytes; its cells hold " + std::to_string(cells));
    raw.resize(nbytes, 0);
  }
  return raw;
}

namespace {

// The chunk's codec chain: its file's (Variable::codecs_of), less the filters its HDF5 filter mask
// skipped. Most chunks skip none: then the variable's own chain, not a copy (a copy of its JSON
// configurations for each of tens of thousands of chunks).
const std::vector<CodecSpec>& chain_of(const Variable& v, const ChunkRef& ref,
                                       std::vector<CodecSpec>& masked) {
  const auto& codecs = v.codecs_of(ref);
  const uint32_t used = codecs.size() >= 32 ? ~0u : (1u << codecs.size()) - 1;
  if (!(ref.filter_mask & used)) return codecs;
  for (std::size_t i = 0; i < codecs.size(); ++i)
    if (!(ref.filter_mask & (1u << i))) masked.push_back(codecs[i]);
  return masked;
}

// What a missing chunk reads as: the variable's missing_chunk_value everywhere.
void fill_missing(const Variable& v, unsigned char* out) {
  fill_elements(out, v.chunk_bytes() / static_cast<std::size_t>(v.dtype.size), v.dtype.native(),
                v.missing_chunk_value);
}

// Decoded bytes (`n`) of a big-endian variable into this machine's order.
void to_native(const Variable& v, unsigned char* out, std::size_t n) {
  if (!v.dtype.big_endian) return;
  const int unit = v.dtype.swap_unit();
  byteswap(out, n / static_cast<std::size_t>(unit), unit);
}

// What a worker's crash note says while a codec whose library may abort (ecCodes) decodes the
// chunk: the coordinator then names the chunk and its bytes (core/crash_note.hpp).
void note_chunk(std::optional<CrashNoteScope>& note, const std::vector<CodecSpec>& chain,
                const Dataset& ds, const Variable& v, int64_t chunk_index) {
  if (!chain_may_abort(chain)) return;
  const ChunkRef& ref = v.chunks[static_cast<std::size_t>(chunk_index)];
  std::string where = "decoding " + chunk_location(ds, v, chunk_index);
  if (ref.kind == ChunkRef::Kind::Range)
    where += ", bytes " + std::to_string(ref.offset) + "+" + std::to_string(ref.length);
  note.emplace(where);
}

}  // namespace

Bytes ChunkReader::read(const Variable& v, int64_t chunk_index, std::optional<Bytes> fetched) {
  std::optional<Bytes> raw = stored(v, chunk_index, std::move(fetched));
  if (!raw) {
    Bytes out(v.chunk_bytes());
    fill_missing(v, out.data());
    return out;
  }
  std::vector<CodecSpec> masked;
  const ChunkRef& ref = v.chunks[static_cast<std::size_t>(chunk_index)];
  const std::size_t n = v.chunk_bytes_of(ref);
  const auto& chain = chain_of(v, ref, masked);
  std::optional<CrashNoteScope> note;
  note_chunk(note, chain, ds_, v, chunk_index);
  Bytes out =
      decode_chain(chain, std::move(*raw), n, [&] { return chunk_location(ds_, v, chunk_index); });
  to_native(v, out.data(), n);
  return out;
}

void ChunkReader::read_into(const Variable& v, int64_t chunk_index, std::optional<Bytes> fetched,
                            unsigned char* out) {
  std::optional<Bytes> raw = stored(v, chunk_index, std::move(fetched));
  if (!raw) return fill_missing(v, out);
  std::vector<CodecSpec> masked;
  const ChunkRef& ref = v.chunks[static_cast<std::size_t>(chunk_index)];
  const std::size_t n = v.chunk_bytes_of(ref);
  const auto& chain = chain_of(v, ref, masked);
  std::optional<CrashNoteScope> note;
  note_chunk(note, chain, ds_, v, chunk_index);
  decode_chain_into(chain, std::move(*raw), out, n,
                    [&] { return chunk_location(ds_, v, chunk_index); });
  to_native(v, out, n);
}

KeptChunk ChunkReader::kept(const Variable& v, int64_t chunk_index, Bytes bytes) {
  const ChunkRef& ref = v.chunks.at(static_cast<std::size_t>(chunk_index));
  const std::string& location = ds_.files.at(ref.file);
  return {location, ref.offset, ref.length,
          access_.reader(location, ds_.access.data_role()).version_seen(location),
          std::move(bytes)};
}

std::vector<std::vector<std::optional<Bytes>>> fetch_whole_1d(
    ChunkReader& reader, const std::vector<const Variable*>& vars, KeptChunks* kept) {
  std::vector<ChunkReader::ChunkOf> chunks;
  for (const Variable* v : vars)
    if (v && v->ndim() == 1 && reader.remote(*v))
      for (int64_t c = 0; c < v->grid.chunks_along(0); ++c) chunks.push_back({v, c});
  auto raw = reader.fetch_many(chunks);
  uint64_t kept_bytes = 0;
  for (std::size_t k = 0; kept && k < chunks.size(); ++k) {
    if (!raw[k] || (kept_bytes += raw[k]->size()) > kKeptChunkBytes) continue;
    kept->push_back(reader.kept(*chunks[k].v, chunks[k].index, *raw[k]));
  }
  std::vector<std::vector<std::optional<Bytes>>> out(vars.size());
  for (std::size_t i = 0, k = 0; i < vars.size(); ++i)
    for (; k < chunks.size() && chunks[k].v == vars[i]; ++k) out[i].push_back(std::move(raw[k]));
  return out;
}

Bytes read_whole_1d(ChunkReader& reader, const Variable& v,
                    std::vector<std::optional<Bytes>> fetched) {
  if (v.ndim() != 1) throw Error::internal("read_whole_1d on " + std::to_string(v.ndim()) + "-D");
  const std::size_t item = static_cast<std::size_t>(v.dtype.size);
  Bytes out(static_cast<std::size_t>(v.shape[0]) * item, 0);
  for (int64_t c = 0; c < v.grid.chunks_along(0); ++c) {
    const auto k = static_cast<std::size_t>(c);
    const Bytes chunk =
        reader.read(v, c, k < fetched.size() ? std::move(fetched[k]) : std::nullopt);
    const auto lo = static_cast<std::size_t>(v.grid.edges[0][k]);
    const auto hi = static_cast<std::size_t>(v.grid.edges[0][k + 1]);
    std::memcpy(out.data() + lo * item, chunk.data(), (hi - lo) * item);
  }
  return out;
}

}  // namespace zp
