// Limits on untrusted JSON. nlohmann::json copies and compares nested values recursively, so a
// document nested tens of thousands of levels deep (a few hundred kilobytes of '[') overflows the
// stack long after parsing. Every JSON text read from a source, a plan or a store is checked first.
#pragma once

#include <string_view>

namespace zp {

// Deepest nesting of arrays/objects in `text` (strings skipped); stops counting past `limit`.
int json_nesting_depth(std::string_view text, int limit);

// Deeper than any real metadata (kerchunk, Zarr, CF attributes nest a handful of levels).
inline constexpr int kMaxJsonDepth = 256;

inline bool json_too_deep(std::string_view text) {
  return json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth;
}

}  // namespace zp
