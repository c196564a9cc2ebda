// DType: an element type as numpy spells it ("<i2", ">f8", "|u1", "|S1"). Value type. Fixed-width
// bytes ('S': netCDF char data as xarray reads it) are only ever copied, never converted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace zp {

struct DType {
  char kind = 'f';  // 'i' signed int, 'u' unsigned int, 'f' IEEE float, 'S' fixed-width bytes
  int size = 4;     // bytes per element
  bool big_endian = false;

  static DType parse(const std::string& numpy_str);  // throws Error(Config) on unknown types
  std::string str() const;                           // numpy string, e.g. "<i2"
  DType native() const { return {kind, size, false}; }
  bool operator==(const DType&) const = default;
};

// Byte-swaps n elements of `size` bytes in place.
void byteswap(void* data, std::size_t n, int size);

// Reads element i of a native-endian buffer of type t as double.
double load_as_double(const void* data, std::size_t i, DType t);

// Writes `value` (already of the right type, e.g. a fill value) into element i of buffer.
void store_from_json(void* data, std::size_t i, DType t, const nlohmann::json& value);

// Fills n elements with the value encoded in JSON (number, "NaN", "Infinity", null = 0).
void fill_elements(void* data, std::size_t n, DType t, const nlohmann::json& value);

}  // namespace zp
