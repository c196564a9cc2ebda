// The kerchunk engine: a reference set (version 0 or 1: refs, inline raw and base64 data,
// templates, gen) into a Dataset whose chunks point at byte ranges of the files it names. The
// zarr engine reuses this: a Zarr v2 folder is read as the reference set of its own files.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "source/dataset.hpp"
#include "store/store_table.hpp"

namespace zp {

// One reference: inline bytes, or a byte range of an object (length < 0: the whole object).
struct Reference {
  std::shared_ptr<const Bytes> data;
  std::string path;  // resolved location: a local path or a URL
  int64_t offset = 0;
  int64_t length = -1;
};
using ReferenceSet = std::map<std::string, Reference>;

// Parses a kerchunk JSON file (local or a URL); relative chunk paths resolve against its folder
// or URL prefix, paths without a scheme take `remote_protocol` when set (as fsspec's). The origin
// rule: a reference set read from a remote location may not name local files (Error(Source))
// unless `access.options().allow_local_references`.
ReferenceSet load_kerchunk(const std::string& location, SourceAccess& access);
// The same from text; `where` names it in errors. `base` remote: the origin rule as above.
ReferenceSet parse_kerchunk(const std::string& text, const std::string& base,
                            const std::string& where, const std::string& remote_protocol = "",
                            bool allow_local_references = false);
// A Zarr v2 store (a folder, an S3 prefix, or an HTTP URL with consolidated metadata) as
// references to its objects.
ReferenceSet load_zarr_store(const std::string& location, SourceAccess& access);
// Builds the description and manifest from Zarr v2 metadata inside the references; objects they
// point at are read through `access` (local files only when null).
// `group`: a subgroup path ("a/b"): its keys are read as a store of their own; "" = the root.
Dataset dataset_from_references(const ReferenceSet& refs, const std::string& uri,
                                const std::string& engine, const std::string& group = "",
                                SourceAccess* access = nullptr);

}  // namespace zp
