// A store seen as its keys: each key's bytes inline, or a byte range of an object. A kerchunk
// reference set is one (kerchunk/), and so is a Zarr store listed object by object (zarr_listing).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/bytes.hpp"

namespace zp {

// One reference: inline bytes, or a byte range of an object (length < 0: the whole object).
struct Reference {
  std::shared_ptr<const Bytes> data;
  std::string path;  // resolved location: a local path or a URL
  int64_t offset = 0;
  int64_t length = -1;
};
using ReferenceSet = std::map<std::string, Reference>;

}  // namespace zp
