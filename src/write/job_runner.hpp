// JobRunner: runs one job of a plan — read its source chunks, decode, copy through the index map
// into output chunk buffers, encode, write each chunk atomically and durably (its bytes and its
// folders flushed before run() returns, so a done marker written after run() never outlives its
// chunks in a crash). The job is streamed one work
// unit at a time, so memory holds one unit's output chunks plus one source chunk per thread.
// Source and output chunks of a unit are processed in parallel on the given pool. One runner per
// worker process; not for concurrent run() calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "core/thread_pool.hpp"
#include "plan/plan.hpp"
#include "source/chunk_reader.hpp"
#include "store/writable.hpp"
#include "write/output_format.hpp"
#include "write/unit_prefetch.hpp"

namespace zp {

struct JobStats {
  int64_t job_id = 0;
  int64_t chunks_written = 0;
  int64_t chunks_total = 0;
  uint64_t bytes_read = 0;     // stored source bytes
  uint64_t bytes_written = 0;  // encoded output bytes
  double seconds = 0;
};

class JobRunner {
 public:
  JobRunner(const Plan& plan, const Writable& store, ThreadPool& pool);

  // `progress` is called (from the calling thread) after each unit. `seeded`: the stored bytes
  // of every remote source chunk the job reads, fetched by the caller (none fetched here).
  JobStats run(const Job& job, const std::function<void(const JobStats&)>& progress = {},
               FetchedChunks* seeded = nullptr);
  // Writes a whole array as one job (coordinates, before the jobs start).
  JobStats run_whole_array(int array_index);
  // The same for several arrays; behind a network their source chunks are fetched in one round
  // of requests first (a round trip per array before). `kept`: chunks read already (the
  // coordinates, for the plan); each is used instead of a request when its object's version seen
  // then is the plan's fingerprint of it (size and ETag / Last-Modified), else fetched again.
  void run_whole_arrays(const std::vector<int>& arrays, const KeptChunks* kept = nullptr);
  // `check` runs before each chunk or shard of a job is put into place (on pool threads, at the
  // same time); what it throws stops the job there. A worker's fence against writing into a store
  // that has moved on to another run.
  void fence_writes(std::function<void()> check) { fence_ = std::move(check); }

 private:
  const Plan& plan_;
  const Writable& store_;
  ThreadPool& pool_;
  Dataset files_;  // only `files` and `uri`: what ChunkReader needs to find bytes
  ChunkReader reader_;
  std::map<int, ArrayPlan> inner_views_;  // sharded arrays as their inner chunks
  std::unique_ptr<WriteBatch> batch_;     // this job's chunks, on their way, awaited before it ends
  std::function<void()> fence_;
  void put(const std::string& key, const std::vector<const Bytes*>& parts);
  uint64_t write_unit(const ArrayPlan& a, const Region& unit, FetchedChunks* fetched, bool faults);
  uint64_t write_sharded_unit(int array, const Region& unit, FetchedChunks* fetched, bool faults);
};

// The keys of a logical output chunk of `a`: one, or for a tiled array its stored key(s) — several
// when the array lacks a tiled dimension and xarray's stack repeats it along batch_dim.
std::vector<std::string> chunk_keys(const ArrayPlan& a, const std::vector<int64_t>& chunk,
                                    const OutputFormat& format);
// A logical output chunk's bytes in the order its stored chunk holds them (tiled arrays with
// several tiles a chunk: tile first).
Bytes to_stored_order(const ArrayPlan& a, const Bytes& logical);

// Output chunk coordinates of a region, in C order.
std::vector<std::vector<int64_t>> chunks_in(const Region& r);

// The decoded output chunks of one work unit (in chunks_in order), assembled from the source:
// the read → decode → copy half of a job, shared by the writer and `verify`.
std::vector<Bytes> assemble_unit(const ArrayPlan& a, const Region& unit, ChunkReader& reader,
                                 ThreadPool& pool, FetchedChunks* fetched = nullptr);

// The Dataset-shaped view of a plan's file table that ChunkReader needs.
Dataset files_of(const Plan& plan);

}  // namespace zp
