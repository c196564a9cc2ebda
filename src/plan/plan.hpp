// Plan: the contract between planning and running. Output arrays (shape, chunks, dtype, attributes,
// how each output index maps to the source, the source chunks it needs) and jobs (regions of whole
// output chunks, each written by exactly one job). Serialisable to JSON, so a worker on another
// node runs a job from the plan file alone, without opening the source. Plain values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "source/fingerprint.hpp"
#include "transform/element_transform.hpp"
#include "transform/selection.hpp"

namespace zp {

// How a tiled array is stored: dims ("batch_dim", then each logical dimension in order, tiled ones
// as "<dim>_fine"), shape and chunks. Planning, units and copies stay in the logical dimensions
// (one tile = one logical chunk along the tiled ones); only chunk keys and metadata use this.
struct StoredLayout {
  std::vector<std::string> dims;
  std::vector<int64_t> shape, chunks;
  std::vector<bool> tiled;  // per logical dimension
  // Tiles a stored chunk holds (chunks: {batch_dim: k}): k consecutive tiles along the last tiled
  // dimension, whose logical chunk is then k tiles long.
  int64_t tiles_per_chunk = 1;
  // Per tiled dimension, in batch order: the array's dimension holding it, or -1 when the array
  // lacks it (xarray's stack broadcasts such an array: the same tile under every batch index that
  // differs only there); and the number of tiles along it.
  std::vector<int> tile_dim;
  std::vector<int64_t> coarse;
};

struct ArrayPlan {
  std::string name;               // output array name, its key in the store
  bool coordinate = false;        // written by the coordinator before the jobs
  std::vector<std::string> dims;  // output dimension names
  std::vector<int64_t> shape;
  std::vector<int64_t> chunks;
  std::vector<DimMap> index;  // per output dimension
  Variable source;            // source variable with its manifest
  Conversion conversion;
  // Files that decode differently (Variable::encoding_runs): from Dataset::files index
  // `first_file` on, up to the next, chunks convert with `conversion` instead. Same `out` dtype.
  struct FileConversion {
    uint32_t first_file = 0;
    Conversion conversion;
  };
  std::vector<FileConversion> file_conversions;
  nlohmann::json fill_value;  // Zarr fill_value of the output
  Attrs attrs;                // output attributes (without _ARRAY_DIMENSIONS)
  // How a chunk is stored, in encode order, typed by kind (codec_kind): array→array filters, at
  // most one array→bytes codec (vlen-utf8/vlen-bytes of a |O array; none = the plain bytes), then
  // bytes→bytes codecs (the compressor). Output formats spell it their way (v2 filters +
  // compressor, v3 codecs).
  std::vector<CodecSpec> codecs;
  // Zarr v3 sharding: the inner (read-side) chunk shape; `chunks` is then the shard, the
  // planner's write chunk. Empty: no sharding.
  std::vector<int64_t> inner_chunks;
  // Along each dimension: true when every output chunk is its own work unit (the memory limit did
  // not allow the units that read each source chunk once), false for such units.
  std::vector<bool> per_chunk_units;
  std::optional<StoredLayout> stored;  // tiled arrays only
  // An append (Plan::append_dim set): output chunks before this index along that dimension are
  // the store's own and kept; the plan writes the rest (see plan/append_plan.hpp).
  int64_t append_from = 0;

  std::size_t ndim() const { return dims.size(); }
  int64_t chunks_along(std::size_t d) const { return (shape[d] + chunks[d] - 1) / chunks[d]; }
  // "" or the vlen codec of a |O array (see Variable::object_codec).
  std::string object_codec() const;
  // How source chunk `ref` converts: by its file (never-written chunks hold the first file's
  // missing_chunk_value, so they convert as the first file).
  const Conversion& conversion_of(const ChunkRef& ref) const;
  // The bytes→bytes codecs (what Zarr v2 calls the compressor, plus any before it).
  std::vector<CodecSpec> bytes_codecs() const;
  int64_t num_chunks() const;
  std::size_t chunk_bytes() const;  // decoded bytes of one (padded) output chunk
  int64_t output_bytes() const;     // bytes of the selection, unpadded
};

// A box of output chunk indices: [lo[d], hi[d]) along each dimension.
struct Region {
  std::vector<int64_t> lo, hi;
  int64_t num_chunks() const;
};

struct Job {
  int64_t id = 0;
  int array = 0;  // index into Plan::arrays
  Region region;
  std::vector<int64_t> source_chunks;  // distinct source chunks (linear indices) it reads
  uint64_t read_bytes = 0;             // stored bytes it reads, counting re-reads
  uint64_t output_bytes = 0;
};

struct PlanSummary {
  uint64_t read_bytes = 0;    // stored bytes all jobs read
  uint64_t needed_bytes = 0;  // stored bytes of the distinct source chunks needed
  double read_amplification = 1.0;
  uint64_t peak_memory = 0;  // predicted peak per worker, bytes
  uint64_t output_bytes = 0;
  int64_t output_chunks = 0;
  int64_t source_chunks = 0;
};

struct Recommendation {
  std::string key;      // config key it concerns, e.g. "preprocessors[0].latitude"
  std::string message;  // what cuts what, and what each alternative would save
  // An alternative reads less per byte needed or needs clearly less memory: only such advice stops
  // a cache (exit 3, or the question); the rest is printed and the run goes on.
  bool saves = true;
};

// Stored bytes of remote source chunks a worker holds at once before decoding them: a unit is
// fetched in batches of about this size (plus one chunk); the memory prediction counts it.
inline constexpr uint64_t kRemoteBatchBytes = 64ull << 20;

struct Plan {
  std::string config_hash;
  std::string store;     // where it was planned to be written (informative: workers use the
                         // folder their plan file is in)
  std::string store_id;  // the marker of the store it writes; workers refuse any other store
  std::string tool_version;
  int zarr_format = 2;
  std::string encoding = "source";
  std::vector<std::string> files;
  AccessOptions access;  // how `files` are reached; secrets never stored (see SecretsChannel)
  std::vector<Fingerprint> sources;  // every source file as planned
  Attrs global_attrs;
  std::vector<ArrayPlan> arrays;
  std::vector<Job> jobs;
  int workers = 1;
  int threads_per_worker = 1;
  int64_t memory_limit = 0;
  int64_t worker_timeout = 0;
  PlanSummary summary;
  std::vector<Recommendation> recommendations;
  std::vector<Recommendation> notes;  // informational (a sel range clamped to the coordinate)
  // "" or the dimension a complete store is extended along: then arrays without it are kept as
  // they are and the others are written from their `append_from` chunk on.
  std::string append_dim;

  bool reads_remote() const;  // some source file is behind HTTP(S) or S3
};

}  // namespace zp
