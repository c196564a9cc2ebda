// Selection: what the preprocessors make of the source, as an index map. Every output dimension is
// a source dimension seen through `source index = start + step * i` (step +1 or -1), possibly
// renamed; variables may be renamed too. sel/subset, isel, reverse_axis and rename compose into
// this map, so the planner and the writer never look at labels. Built from coordinate values read
// once from the source; pure after that. Errors are Error(Config) naming the preprocessor key.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "transform/cf_time.hpp"

namespace zp {

struct DimMap {
  std::string source;  // source dimension name
  std::string name;    // output name
  int64_t start = 0;   // source index of output index 0
  int64_t count = 0;
  int64_t step = 1;  // +1 or -1
  int64_t source_index(int64_t i) const { return start + step * i; }
  // Source index range [lo, hi) covered by output indices [a, b).
  void source_range(int64_t a, int64_t b, int64_t* lo, int64_t* hi) const;
};

// Decoded coordinate values of one dimension: numbers, and microseconds when it is CF time.
struct CoordinateValues {
  std::vector<double> values;
  std::optional<CfTimeUnits> time;
  std::vector<int64_t> time_us;
  std::string time_error;  // time units that could not be decoded: why (values stay numbers)
  bool text = false;       // text labels (station names): selectable by position only
};
using Coordinates = std::map<std::string, CoordinateValues>;  // by source dim name

struct Selection {
  std::vector<DimMap> dims;                        // in source dimension order
  std::map<std::string, std::string> var_renames;  // source variable name -> output name
  // What the user should know but need not act on ({key, message}): a sel range that reaches
  // beyond the coordinate, which xarray clamps silently.
  std::vector<std::pair<std::string, std::string>> notes;

  const DimMap& dim(const std::string& source_dim) const;
  const DimMap* find_output(const std::string& output_name) const;
  std::string output_name_of_var(const std::string& source_var) const;
};

// Reads the dimension coordinates of `ds` (small 1-D arrays) and decodes CF time.
Coordinates load_coordinates(const Dataset& ds);

// Applies preprocessors in order. `identity` when the list is empty.
Selection apply_preprocessors(const Dataset& ds, const Coordinates& coords,
                              const std::vector<nlohmann::json>& preprocessors);

}  // namespace zp
