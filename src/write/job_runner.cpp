#include "write/job_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "codec/codec.hpp"
#include "codec/shard_index.hpp"
#include "core/error.hpp"
#include "plan/append_plan.hpp"
#include "plan/units.hpp"
#include "write/copy_region.hpp"
#include "write/output_format.hpp"
#include "write/shard_codec.hpp"
#include "write/unit_prefetch.hpp"

namespace zp {

std::vector<std::vector<int64_t>> chunks_in(const Region& r) {
  std::vector<std::vector<int64_t>> out;
  const std::size_t nd = r.lo.size();
  std::vector<int64_t> c = r.lo;
  for (;;) {
    out.push_back(c);
    std::size_t d = nd;
    while (d > 0 && ++c[d - 1] == r.hi[d - 1]) {
      c[d - 1] = r.lo[d - 1];
      --d;
    }
    if (d == 0) return out;
  }
}

Dataset files_of(const Plan& plan) {
  Dataset ds;
  ds.files = plan.files;
  ds.uri = plan.files.empty() ? std::string("source") : plan.files.front();
  ds.access = plan.access;
  // Secrets are not in the plan: the coordinator hands them to its workers by environment.
  ds.access.add_secrets_from_environment();
  return ds;
}

namespace {

// Fault injection for the tests of lost workers, resume and the kill trials: with
// ZP_FAULT_KILL_ONCE=PATH (or ZP_FAULT_STOP_ONCE=PATH) the first process to write its N-th chunk
// of a job (N = ZP_FAULT_AFTER_CHUNKS, default 1) creates PATH and stops itself with SIGKILL (a
// node failure) or SIGSTOP (a hung worker whose heartbeats stop), possibly while other threads
// are halfway through writing chunks.
void inject_fault() {
  static const char* after = std::getenv("ZP_FAULT_AFTER_CHUNKS");
  static const long limit = after ? std::max(1L, std::atol(after)) : 1L;
  static std::atomic<long> written{0};
  if (++written != limit) return;
  for (const auto& [var, sig] :
       {std::pair{"ZP_FAULT_KILL_ONCE", SIGKILL}, std::pair{"ZP_FAULT_STOP_ONCE", SIGSTOP}}) {
    const char* path = std::getenv(var);
    if (!path || !*path) continue;
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) continue;  // already fired
    ::close(fd);
    ::kill(::getpid(), sig);
  }
  // ZP_FAULT_SLEEP_ONCE=PATH: a slow worker instead (issue 34's measurement), whose heartbeats go
  // on: the first to get here sleeps ZP_FAULT_SLEEP_SECONDS (default 20) in the middle of its job.
  const char* path = std::getenv("ZP_FAULT_SLEEP_ONCE");
  if (!path || !*path) return;
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return;
  ::close(fd);
  const char* seconds = std::getenv("ZP_FAULT_SLEEP_SECONDS");
  std::this_thread::sleep_for(
      std::chrono::seconds(seconds ? std::max(0L, std::atol(seconds)) : 20L));
}

}  // namespace

std::vector<std::string> chunk_keys(const ArrayPlan& a, const std::vector<int64_t>& chunk,
                                    const OutputFormat& format) {
  if (!a.stored) return {format.chunk_key(a.name, chunk)};
  const StoredLayout& st = *a.stored;
  std::vector<int64_t> rest;  // the key after batch_dim: 0 along tiled dims (a tile is whole)
  for (std::size_t d = 0; d < a.ndim(); ++d) rest.push_back(st.tiled[d] ? 0 : chunk[d]);
  // Batch chunk indices: the array's own tile coordinates, every value along dims it lacks.
  std::vector<int64_t> batches = {0};
  for (std::size_t i = 0; i < st.coarse.size(); ++i) {
    const bool last = i + 1 == st.coarse.size();
    const int64_t extent = st.coarse[i] / (last ? st.tiles_per_chunk : 1);
    std::vector<int64_t> next;
    for (int64_t b : batches) {
      if (st.tile_dim[i] >= 0) {
        next.push_back(b * extent + chunk[static_cast<std::size_t>(st.tile_dim[i])]);
      } else {
        for (int64_t m = 0; m < extent; ++m) next.push_back(b * extent + m);
      }
    }
    batches = std::move(next);
  }
  std::vector<std::string> keys;
  for (int64_t b : batches) {
    std::vector<int64_t> key = {b};
    key.insert(key.end(), rest.begin(), rest.end());
    keys.push_back(format.chunk_key(a.name, key));
  }
  return keys;
}

Bytes to_stored_order(const ArrayPlan& a, const Bytes& logical) {
  // Logical chunk: [outer][k tiles][inner] along the last tiled dimension; stored:
  // [k][outer][inner].
  std::size_t t = a.ndim();
  for (std::size_t d = 0; d < a.ndim(); ++d)
    if (a.stored->tiled[d]) t = d;
  const auto k = static_cast<std::size_t>(a.stored->tiles_per_chunk);
  std::size_t outer = 1, inner = static_cast<std::size_t>(a.conversion.out.size) *
                                 static_cast<std::size_t>(a.chunks[t]) / k;
  for (std::size_t d = 0; d < t; ++d) outer *= static_cast<std::size_t>(a.chunks[d]);
  for (std::size_t d = t + 1; d < a.ndim(); ++d) inner *= static_cast<std::size_t>(a.chunks[d]);
  Bytes out(logical.size());
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t j = 0; j < k; ++j)
      std::memcpy(out.data() + (j * outer + o) * inner, logical.data() + (o * k + j) * inner,
                  inner);
  return out;
}

JobRunner::JobRunner(const Plan& plan, const Writable& store, ThreadPool& pool)
    : plan_(plan), store_(store), pool_(pool), files_(files_of(plan)), reader_(files_) {
  reader_.expect(plan.sources);
}

void JobRunner::put(const std::string& key, const std::vector<const Bytes*>& parts) {
  if (fence_) fence_();
  batch_->put(key, parts);
}

JobStats JobRunner::run(const Job& job, const std::function<void(const JobStats&)>& progress,
                        FetchedChunks* seeded) {
  const auto t0 = std::chrono::steady_clock::now();
  batch_ = store_.batch();
  const ArrayPlan& a = plan_.arrays.at(static_cast<std::size_t>(job.array));
  JobStats stats;
  stats.job_id = job.id;
  stats.chunks_total = job.region.num_chunks();
  const uint64_t read_before = reader_.bytes_read();
  reader_.start_job();
  uint64_t written = 0;
  const std::vector<Region> units = units_in(a, job.region);
  const bool remote = reader_.remote(a.source);
  FetchedChunks fetched;
  if (seeded) fetched = std::move(*seeded);
  UnitPrefetch prefetch(a, units, reader_);  // remote: the next batch arrives during this one
  for (std::size_t u = 0; u < units.size(); ++u) {
    const Region& unit = units[u];
    if (remote && !seeded) prefetch.cover(u, fetched);
    FetchedChunks* ahead = remote ? &fetched : nullptr;
    written += a.inner_chunks.empty() ? write_unit(a, unit, ahead, job.id >= 0)
                                      : write_sharded_unit(job.array, unit, ahead, job.id >= 0);
    stats.chunks_written += unit.num_chunks();
    stats.bytes_read = reader_.bytes_read() - read_before;
    stats.bytes_written = written;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(stats);
  }
  batch_->finish();
  reader_.check_files_read_unchanged();  // before the job counts as done
  return stats;
}

// A unit of output chunks: assembled, then encoded and written in parallel, each buffer freed as
// soon as it is written. Returns the bytes written.
uint64_t JobRunner::write_unit(const ArrayPlan& a, const Region& unit, FetchedChunks* fetched,
                               bool faults) {
  const OutputFormat& format = output_format(plan_.zarr_format);
  const auto out_chunks = chunks_in(unit);
  std::vector<Bytes> buffers = assemble_unit(a, unit, reader_, pool_, fetched);
  std::atomic<uint64_t> written{0};
  pool_.parallel_for(out_chunks.size(), [&](std::size_t i) {
    // nullopt: a shard of fill values only, which is not stored.
    const std::optional<Bytes> encoded = format.encode(a, std::move(buffers[i]));
    if (encoded) {
      for (const auto& key : chunk_keys(a, out_chunks[i], format)) put(key, {&*encoded});
      written += encoded->size();
    }
    if (faults) inject_fault();
    Bytes().swap(buffers[i]);
  });
  return written;
}

namespace {

// The inner chunks that shards `unit` of `a` hold (`per`: inner chunks a shard along each
// dimension), cut at the array's end.
Region inner_region(const ArrayPlan& a, const ArrayPlan& iv, const Region& unit,
                    std::vector<int64_t>& per) {
  Region ir;
  per.resize(a.ndim());
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    per[d] = a.chunks[d] / a.inner_chunks[d];
    ir.lo.push_back(unit.lo[d] * per[d]);
    ir.hi.push_back(std::min(unit.hi[d] * per[d], iv.chunks_along(d)));
  }
  return ir;
}

// A shard of the unit on its way to the store: its key(s) opened at the first inner chunk that is
// not all fill, the entries of its index as its inner chunks are appended (in any order).
struct ShardStream {
  std::mutex mutex;
  std::vector<std::unique_ptr<PieceWriter>> writers;  // one a key (tiled arrays: several)
  std::vector<ShardEntry> entries;
  uint64_t size = 0;
};

// Where inner chunk `g` (inner grid coordinates) goes: its shard's place in `unit` (C order) and
// its own place in that shard (C order over `per`).
std::pair<std::size_t, std::size_t> shard_slot(const std::vector<int64_t>& g, const Region& unit,
                                               const std::vector<int64_t>& per) {
  std::size_t s = 0, k = 0;
  for (std::size_t d = 0; d < g.size(); ++d) {
    s = s * static_cast<std::size_t>(unit.hi[d] - unit.lo[d]) +
        static_cast<std::size_t>(g[d] / per[d] - unit.lo[d]);
    k = k * static_cast<std::size_t>(per[d]) + static_cast<std::size_t>(g[d] % per[d]);
  }
  return {s, k};
}

}  // namespace

// A unit of shards, streamed: its inner chunks are assembled and encoded a piece of the unit at a
// time (the units the inner chunks alone make: each source chunk is still read once) and each is
// appended to its shard as soon as it is encoded; each shard's index follows its inner chunks. So
// memory holds one such piece, not the unit's shards (W8: 280 MB a worker before).
uint64_t JobRunner::write_sharded_unit(int array, const Region& unit, FetchedChunks* fetched,
                                       bool faults) {
  const ArrayPlan& a = plan_.arrays.at(static_cast<std::size_t>(array));
  auto view_it = inner_views_.find(array);
  if (view_it == inner_views_.end()) {
    view_it = inner_views_.emplace(array, inner_chunk_view(a)).first;
    // Pieces merge inner chunks that share source chunks (cut at the unit's edges): none is more
    // than the unit, and none reads a source chunk another piece reads.
    view_it->second.per_chunk_units.assign(a.ndim(), false);
  }
  const ArrayPlan& iv = view_it->second;
  std::vector<int64_t> per;
  const Region ir = inner_region(a, iv, unit, per);
  std::size_t per_shard = 1;
  for (auto p : per) per_shard *= static_cast<std::size_t>(p);
  const OutputFormat& format = output_format(plan_.zarr_format);
  const auto shards = chunks_in(unit);
  std::vector<ShardStream> streams(shards.size());
  const Bytes fill = fill_chunk(iv);
  uint64_t written = 0;
  for (const Region& piece : units_in(iv, ir)) {
    const auto inner = chunks_in(piece);
    std::vector<Bytes> buffers = assemble_unit(iv, piece, reader_, pool_, fetched);
    pool_.parallel_for(buffers.size(), [&](std::size_t i) {
      if (buffers[i] == fill) {  // all fill: left out of its shard
        Bytes().swap(buffers[i]);
        return;
      }
      const Bytes encoded = encode_chain(iv.codecs, std::move(buffers[i]), iv.conversion.out.size);
      Bytes().swap(buffers[i]);
      const auto [s, k] = shard_slot(inner[i], unit, per);
      ShardStream& st = streams[s];
      const std::lock_guard guard(st.mutex);
      if (st.writers.empty()) {
        st.entries.assign(per_shard, ShardEntry{});
        for (const auto& key : chunk_keys(a, shards[s], format))
          st.writers.push_back(batch_->open(key));
      }
      for (auto& w : st.writers) w->append(encoded);
      st.entries[k] = ShardEntry{st.size, encoded.size()};
      st.size += encoded.size();
    });
  }
  for (ShardStream& st : streams) {
    if (st.writers.empty()) continue;  // every inner chunk fill: the shard is not stored
    const Bytes index = encode_shard_index(st.entries);
    if (fence_) fence_();
    for (auto& w : st.writers) {
      w->append(index);
      w->commit();
    }
    written += st.size + index.size();
    if (faults) inject_fault();
  }
  return written;
}

namespace {

using PlaceFn = std::function<void(int64_t source, std::optional<Bytes> raw)>;

// One buffer an output chunk of the unit, filled with the fill value where no source chunk
// covers it.
std::vector<Bytes> prefilled_buffers(const ArrayPlan& a,
                                     const std::vector<std::vector<int64_t>>& out_chunks,
                                     ThreadPool& pool) {
  std::vector<Bytes> buffers(out_chunks.size());
  const nlohmann::json fill = a.fill_value.is_null() ? nlohmann::json(0) : a.fill_value;
  pool.parallel_for(out_chunks.size(), [&](std::size_t i) {
    buffers[i].resize(a.chunk_bytes());
    if (!copies_cover_chunk(a, out_chunks[i]))
      fill_elements(buffers[i].data(),
                    a.chunk_bytes() / static_cast<std::size_t>(a.conversion.out.size),
                    a.conversion.out, fill);
  });
  return buffers;
}

// Decodes source chunk `source` once and copies it into every output chunk it touches. One that
// lands whole, in order and unconverted in one output chunk (hourly files into a daily chunk, a
// rechunk along the first dimension) is decoded straight into that chunk's buffer: no copy.
void place_source(const ArrayPlan& a, const std::vector<std::vector<int64_t>>& out_chunks,
                  std::vector<Bytes>& buffers, ChunkReader& reader, int64_t source,
                  std::optional<Bytes> raw) {
  const auto sc = a.source.grid.coords(source);
  std::vector<ChunkCopy> copies;
  copies.reserve(out_chunks.size());
  std::size_t meets = 0, last = 0;
  for (std::size_t k = 0; k < out_chunks.size(); ++k) {
    copies.emplace_back(a, out_chunks[k], sc);
    if (copies.back().elements() > 0) ++meets, last = k;
  }
  if (meets == 1)
    if (const auto at = copies[last].whole_run_offset()) {
      reader.read_into(a.source, source, std::move(raw), buffers[last].data() + *at);
      return;
    }
  const Bytes decoded = reader.read(a.source, source, std::move(raw));
  for (std::size_t k = 0; k < out_chunks.size(); ++k)
    copies[k].copy(buffers[k].data(), decoded.data());
}

// The stored bytes of `sources`: those the caller fetched ahead (taken out of `fetched`), the
// others (a re-read) fetched together now.
std::vector<std::optional<Bytes>> take_fetched(const Variable& v,
                                               const std::vector<int64_t>& sources,
                                               ChunkReader& reader, FetchedChunks& fetched) {
  std::vector<int64_t> missing;
  std::vector<std::optional<Bytes>> raw(sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const auto it = fetched.find(sources[i]);
    if (it == fetched.end()) {
      missing.push_back(static_cast<int64_t>(i));
      continue;
    }
    raw[i] = std::move(it->second);
    fetched.erase(it);
  }
  if (!missing.empty()) {
    std::vector<int64_t> ids;
    for (auto i : missing) ids.push_back(sources[static_cast<std::size_t>(i)]);
    auto more = reader.fetch_many(v, ids);
    for (std::size_t k = 0; k < missing.size(); ++k)
      raw[static_cast<std::size_t>(missing[k])] = std::move(more[k]);
  }
  return raw;
}

// Behind a network: the unit's byte ranges are fetched together (concurrent requests hide the
// round trips), at most kRemoteBatchBytes of stored bytes at a time, then decoded in the pool.
void fetch_and_place(const Variable& v, const std::vector<int64_t>& sources, ChunkReader& reader,
                     ThreadPool& pool, const PlaceFn& place) {
  std::size_t lo = 0;
  while (lo < sources.size()) {
    std::size_t hi = lo;
    uint64_t bytes = 0;
    while (hi < sources.size() && (hi == lo || bytes < kRemoteBatchBytes)) {
      const ChunkRef& ref = v.chunks[static_cast<std::size_t>(sources[hi])];
      bytes += ref.kind == ChunkRef::Kind::Range ? ref.length : 0;
      ++hi;
    }
    const std::vector<int64_t> batch(sources.begin() + static_cast<std::ptrdiff_t>(lo),
                                     sources.begin() + static_cast<std::ptrdiff_t>(hi));
    auto raw = reader.fetch_many(v, batch);
    pool.parallel_for(batch.size(), [&](std::size_t i) { place(batch[i], std::move(raw[i])); });
    lo = hi;
  }
}

}  // namespace

std::vector<Bytes> assemble_unit(const ArrayPlan& a, const Region& unit, ChunkReader& reader,
                                 ThreadPool& pool, FetchedChunks* fetched) {
  const auto out_chunks = chunks_in(unit);
  std::vector<Bytes> buffers = prefilled_buffers(a, out_chunks, pool);
  const auto sources = source_chunks_of(a, unit);
  // Different source chunks fill disjoint parts of a buffer: they are placed in parallel.
  const PlaceFn place = [&](int64_t source, std::optional<Bytes> raw) {
    place_source(a, out_chunks, buffers, reader, source, std::move(raw));
  };
  if (!reader.remote(a.source)) {
    pool.parallel_for(sources.size(), [&](std::size_t i) { place(sources[i], std::nullopt); });
  } else if (fetched) {
    auto raw = take_fetched(a.source, sources, reader, *fetched);
    pool.parallel_for(sources.size(), [&](std::size_t i) { place(sources[i], std::move(raw[i])); });
  } else {
    fetch_and_place(a.source, sources, reader, pool, place);
  }
  if (a.stored && a.stored->tiles_per_chunk > 1)
    pool.parallel_for(buffers.size(),
                      [&](std::size_t k) { buffers[k] = to_stored_order(a, buffers[k]); });
  return buffers;
}

namespace {

// The job that writes a whole array; nullopt when there is nothing to write.
std::optional<Job> whole_array_job(const Plan& plan, int array_index) {
  const ArrayPlan& a = plan.arrays.at(static_cast<std::size_t>(array_index));
  Job job;
  job.id = -1;
  job.array = array_index;
  job.region = written_region(plan, a);  // an append writes only its new chunks
  if (kept_whole(plan, a) || job.region.num_chunks() == 0) return std::nullopt;
  return job;
}

}  // namespace

JobStats JobRunner::run_whole_array(int array_index) {
  const auto job = whole_array_job(plan_, array_index);
  return job ? run(*job) : JobStats{};
}

namespace {

// The bytes of `ref` among `kept`, when the object's version seen with them is its fingerprint in
// `sources` (the one every later answer is checked against); nullptr otherwise.
const Bytes* kept_bytes(const KeptChunks* kept, const std::vector<Fingerprint>& sources,
                        const std::string& location, const ChunkRef& ref) {
  if (!kept) return nullptr;
  const auto fp = std::find_if(sources.begin(), sources.end(),
                               [&](const Fingerprint& f) { return f.path == location; });
  if (fp == sources.end() || fp->size < 0) return nullptr;
  for (const KeptChunk& k : *kept)
    if (k.location == location && k.offset == ref.offset && k.length == ref.length &&
        k.seen.exists && k.seen.size == static_cast<uint64_t>(fp->size) &&
        k.seen.etag == fp->etag && k.bytes.size() == ref.length)
      return &k.bytes;
  return nullptr;
}

}  // namespace

void JobRunner::run_whole_arrays(const std::vector<int>& arrays, const KeptChunks* kept) {
  std::vector<Job> jobs;
  std::vector<ChunkReader::ChunkOf> want;
  std::vector<std::size_t> owner;  // the job of each chunk in `want`
  std::vector<FetchedChunks> seeds;
  uint64_t bytes = 0;
  for (const int i : arrays) {
    const auto job = whole_array_job(plan_, i);
    if (!job) continue;
    jobs.push_back(*job);
    seeds.emplace_back();
    const ArrayPlan& a = plan_.arrays.at(static_cast<std::size_t>(i));
    if (!reader_.remote(a.source)) continue;
    for (const Region& unit : units_in(a, job->region))
      for (const int64_t c : source_chunks_of(a, unit)) {
        const ChunkRef& ref = a.source.chunks.at(static_cast<std::size_t>(c));
        if (ref.kind != ChunkRef::Kind::Range) continue;  // inline: nothing to fetch
        if (const Bytes* b = kept_bytes(kept, plan_.sources, files_.files.at(ref.file), ref)) {
          seeds.back().emplace(c, *b);  // no second request for the same bytes
          continue;
        }
        bytes += ref.length;
        want.push_back({&a.source, c});
        owner.push_back(jobs.size() - 1);
      }
  }
  // Within the memory a job's fetch may hold; larger (rare for coordinates) as before.
  if (bytes > kRemoteBatchBytes) {
    for (const Job& job : jobs) run(job);
    return;
  }
  auto raw = reader_.fetch_many(want);
  for (std::size_t k = 0; k < want.size(); ++k)
    if (raw[k]) seeds[owner[k]].emplace(want[k].index, std::move(*raw[k]));
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const bool remote =
        reader_.remote(plan_.arrays.at(static_cast<std::size_t>(jobs[j].array)).source);
    run(jobs[j], {}, remote ? &seeds[j] : nullptr);
  }
}

}  // namespace zp
