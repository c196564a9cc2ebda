// The dataset cfgrib builds from a GRIB index (cfgrib/dataset.py's build_dataset_components), as a
// zarr-parallel Dataset: one variable per paramId named by cfVarName (else shortName), dimensions
// number/time/step/<typeOfLevel> where they take several values (scalar coordinates otherwise),
// then the grid's (latitude/longitude, y/x or values), valid_time, GRIB_* attributes. Each message
// is one source chunk decoded by the "grib" codec; messages absent from the index read as NaN.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "source/grib/grib_scan.hpp"

namespace zp {

// Error(Source) naming `uri` where cfgrib raises DatasetBuildError (a key that must be unique per
// variable or file takes several values: the message lists the filter_by_keys selecting each) or
// skips a variable (its coordinates differ from another variable's).
Dataset grib_dataset(const GribScan& scan, const nlohmann::json& filter_by_keys,
                     const std::string& uri);

}  // namespace zp
