// How a source format plugs in: the one interface every source format implements.
//
// An engine (netcdf, kerchunk, zarr) opens a data_uri into a Dataset; open_source picks it by
// name, or for "auto" by the URI's shape (open_source.hpp). The netcdf engine reads files: each
// file's format is found by its first bytes among the file formats below, described into a
// ScanPart (open → dimensions → variables → attributes → chunk manifest), and the parts of many
// files are joined along concat_dim (join.hpp). A new file format (GRIB) is one folder under
// source/ with a FileFormat, and one line in file_formats() (format.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "source/scan_cache.hpp"
#include "store/readable.hpp"
#include "store/store_table.hpp"

namespace zp {

// A file format of the netcdf engine.
struct FileFormat {
  const char* name;  // in errors ("NetCDF-3")
  // Whether the file at `location` whose first bytes are `head` (kHeadBytes, fewer when the file
  // is shorter) is of this format.
  bool (*recognises)(const Bytes& head, const std::string& location);
  // The file's part, read through `reader` (`size` bytes). `group`: a group path as xarray's
  // open_dataset(group=...), "" = the root. Throws Error(Source) naming the file.
  ScanPart (*describe)(Readable& reader, const std::string& location, uint64_t size,
                       const std::string& group);
  // Described in a child process (scan_child.hpp): its library may crash or hang on a damaged
  // file. A format parsed by our own (fuzzed) code is described in this process.
  bool in_child;
};

inline constexpr uint64_t kHeadBytes = 8;

// The file formats, in the order they are tried.
const std::vector<FileFormat>& file_formats();
// The first bytes of the object at `location` (`size` bytes) that recognises() looks at.
Bytes head_of(Readable& reader, const std::string& location, uint64_t size);
// The format that recognises the file; Error(Source) naming it when none does.
const FileFormat& file_format_of(const Bytes& head, const std::string& location);

// What an engine opens: a data_uri and the options of its config.
struct SourceRequest {
  std::string uri;
  std::string engine;      // resolved: never "auto"
  std::string concat_dim;  // the netcdf engine's join dimension ("" = the unlimited one)
  std::string group;       // "" = the root
  SourceAccess& access;
  nlohmann::json filter_by_keys = nullptr;  // the grib engine's (cfgrib's): null = none
};

// An engine: a name (the config's `engine`) and how it opens a data_uri.
struct SourceEngine {
  const char* name;
  Dataset (*open)(const SourceRequest& request);
};

}  // namespace zp
