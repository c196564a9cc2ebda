// Char arrays as xarray shows them (conventions.decode_cf_variables and CharacterArrayCoder): the
// last dimension of a char array becomes the length of its strings (|S n) only when that
// dimension is stackable — no variable is named after it, and every variable using it is a char
// array whose last dimension it is. Otherwise the array stays |S1 with all its dimensions (Argo
// profiles: PRES_QC(N_PROF, N_LEVELS) beside PRES, DATA_MODE(N_PROF)). Either way xarray masks its
// _FillValue as it masks numbers.
#pragma once

#include <string>
#include <vector>

#include "source/dataset.hpp"

namespace zp {

// One variable of the file (or group) as the rule sees it.
struct DimsUse {
  std::string name;
  std::vector<std::string> dims;  // every axis, a char array's length included
  bool chars = false;             // a char array (xarray's dtype kind 'S')
};

// Whether a char array's last dimension `dim` is joined into its strings.
bool char_dim_stackable(const std::string& dim, const std::vector<DimsUse>& variables);

// The char array's _FillValue attribute becomes its fill_value, in Zarr's form (base64 of the
// bytes), which xarray's zarr backend masks as its netCDF backend masks the attribute. A value
// longer than the element stays an attribute.
void take_char_fill_value(Variable& v);

// Text is read whole when scanned; larger arrays of text are refused rather than held in memory.
void check_whole_text_size(std::size_t bytes, const std::string& where);

}  // namespace zp
