// Selection: what the preprocessors make of the source, as an index map. Every output dimension is
// a source dimension seen through a piecewise index map (runs of source indices, step +1 or -1,
// with gaps for padding), possibly renamed; variables may be renamed too. sel/subset, isel,
// reverse_axis, roll and rename compose into this map, so the planner and the writer never look at
// labels. Built from coordinate values read
// once from the source; pure after that. Errors are Error(Config) naming the preprocessor key.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/cf_time.hpp"
#include "source/chunk_reader.hpp"
#include "source/dataset.hpp"

namespace zp {

// A run of output indices mapped to source indices: output out + k ↦ source src + step * k for
// k in [0, count), step +1 or -1.
struct Segment {
  int64_t out = 0;
  int64_t count = 0;
  int64_t src = 0;
  int64_t step = 1;
  // The source index of its last element, and the source range [src_lo, src_hi) it reads.
  int64_t last_src() const { return src + step * (count - 1); }
  int64_t src_lo() const { return step > 0 ? src : last_src(); }
  int64_t src_hi() const { return (step > 0 ? last_src() : src) + 1; }
  bool operator==(const Segment&) const = default;
};

// How one output dimension reads its source dimension: a piecewise index map. Segments are
// ordered by output index and disjoint; output indices no segment covers are gaps, read as the
// fill value (tile padding). A slice is one segment; reverse_axis flips steps; a roll splits
// the map at the seam into two segments.
struct DimMap {
  std::string source;  // source dimension name
  std::string name;    // output name
  int64_t count = 0;   // output length
  std::vector<Segment> segments;

  static DimMap identity(const std::string& dim, int64_t n);
  // One segment: output i ↦ start + step * i.
  static DimMap linear(const std::string& source, const std::string& name, int64_t start,
                       int64_t count, int64_t step);

  // Source index of output index i; throws Error(Internal) for a gap.
  int64_t source_index(int64_t i) const;
  bool linear() const { return segments.size() == 1 && segments[0].count == count; }
  // The segments clipped to output indices [a, b).
  std::vector<Segment> pieces(int64_t a, int64_t b) const;
  // Smallest source index range [lo, hi) holding every source index that output [a, b) reads
  // ({0, 0} when it reads none).
  void source_hull(int64_t a, int64_t b, int64_t* lo, int64_t* hi) const;

  // The map of this map's output indices [a, b), [count-1 .. 0] and rolled by `shift` (xarray's
  // roll: output i holds what was at (i - shift) mod count).
  DimMap sliced(int64_t a, int64_t b) const;
  DimMap reversed() const;
  DimMap rolled(int64_t shift) const;

  bool operator==(const DimMap&) const = default;
};

// Decoded coordinate values of one dimension: numbers, and microseconds when it is CF time.
struct CoordinateValues {
  std::vector<double> values;
  std::optional<CfTimeUnits> time;
  std::vector<int64_t> time_us;
  std::string time_error;  // time units that could not be decoded: why (values stay numbers)
  bool text = false;       // text labels (station names): selectable by position only
  // Packed (scale_factor/add_offset, _Unsigned): `values` are decoded as xarray decodes them,
  // in `dtype`, the decoded type; the stored integers are no labels.
  bool packed = false;
  DType dtype;  // of the coordinate as xarray shows it
};
using Coordinates = std::map<std::string, CoordinateValues>;  // by source dim name

struct Selection {
  std::vector<DimMap> dims;                        // in source dimension order
  std::map<std::string, std::string> var_renames;  // source variable name -> output name
  // What the user should know but need not act on ({key, message}): a sel range that reaches
  // beyond the coordinate, which xarray clamps silently.
  std::vector<std::pair<std::string, std::string>> notes;
  // New labels of a dimension coordinate, per source index (roll with shifts: auto turns 0..360
  // longitudes into -180..180): as doubles for selection, and as the coordinate's own bytes.
  struct Relabel {
    std::vector<double> values;
    Bytes data;
  };
  std::map<std::string, Relabel> relabeled;  // by source dimension
  // tiled (the last preprocessor): tile sizes along output dimensions, in the source's dimension
  // order; each map is padded (a gap at its end) or trimmed to whole tiles. `labels`: each tiled
  // dimension's coordinate values through its map (NaN in the padding), empty without one.
  struct Tiling {
    std::vector<std::string> dims;
    std::vector<int64_t> sizes, original;
    std::vector<std::vector<double>> labels;
    std::vector<DType> label_dtypes;
    bool pad = true;
  };
  std::optional<Tiling> tiling;

  const DimMap& dim(const std::string& source_dim) const;
  const DimMap* find_output(const std::string& output_name) const;
  std::string output_name_of_var(const std::string& source_var) const;
};

// Reads the dimension coordinates of `ds` (small 1-D arrays) and decodes CF time. `kept`, when
// given, gets the remote chunks' stored bytes with the version seen (fetch_whole_1d).
Coordinates load_coordinates(const Dataset& ds, KeptChunks* kept = nullptr);

// Applies preprocessors in order. `identity` when the list is empty. Labels that a preprocessor
// changes are in Selection::relabeled; with_labels() gives the coordinates as the output has them.
Selection apply_preprocessors(const Dataset& ds, const Coordinates& coords,
                              const std::vector<nlohmann::json>& preprocessors);
Coordinates with_labels(Coordinates coords, const Selection& s);

}  // namespace zp
