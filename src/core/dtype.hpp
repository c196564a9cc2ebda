// DType: an element type as numpy spells it ("<i2", ">f8", "|u1", "|S5", "<U3", "|b1"). Value type.
// Fixed-width bytes ('S'), UCS-4 text ('U') and booleans ('b') are only ever copied, never
// converted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace zp {

struct DType {
  // 'i' signed int, 'u' unsigned int, 'f' IEEE float, 'S' fixed-width bytes, 'U' fixed-width
  // UCS-4 text (size = 4 x characters), 'b' bool
  char kind = 'f';
  int size = 4;  // bytes per element
  bool big_endian = false;

  static DType parse(const std::string& numpy_str);  // throws Error(Config) on unknown types
  std::string str() const;                           // numpy string, e.g. "<i2"
  DType native() const { return {kind, size, false}; }
  bool numeric() const { return kind == 'i' || kind == 'u' || kind == 'f'; }
  // The unit a byte swap reverses: the element, or a UCS-4 code unit of text.
  int swap_unit() const { return kind == 'U' ? 4 : size; }
  bool operator==(const DType&) const = default;
};

// Byte-swaps n elements of `size` bytes in place.
void byteswap(void* data, std::size_t n, int size);

// Reads element i of a native-endian buffer of type t as double.
double load_as_double(const void* data, std::size_t i, DType t);

// Writes `value` (already of the right type, e.g. a fill value) into element i of buffer. Values
// are in Zarr v2's fill_value JSON form: 'S' base64 text, 'U' text, 'b' true/false.
void store_from_json(void* data, std::size_t i, DType t, const nlohmann::json& value);

// Fills n elements with the value encoded in JSON (number, "NaN", "Infinity", null = 0).
void fill_elements(void* data, std::size_t n, DType t, const nlohmann::json& value);

}  // namespace zp
