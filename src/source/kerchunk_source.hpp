// The kerchunk engine: a reference set (version 0 or 1: refs, inline raw and base64 data,
// templates, gen) into a Dataset whose chunks point at byte ranges of the files it names. The
// zarr engine reuses this: a Zarr v2 folder is read as the reference set of its own files.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "source/dataset.hpp"

namespace zp {

// One reference: inline bytes, or a byte range of a local file (length < 0: the whole file).
struct Reference {
  std::shared_ptr<const Bytes> data;
  std::string path;  // resolved local path
  int64_t offset = 0;
  int64_t length = -1;
};
using ReferenceSet = std::map<std::string, Reference>;

// Parses a kerchunk JSON file; relative chunk paths resolve against the file's folder.
ReferenceSet load_kerchunk(const std::string& json_path);
// The same from text; `where` names it in errors.
ReferenceSet parse_kerchunk(const std::string& text, const std::string& base_dir, const std::string& where);
// A Zarr v2 folder as references to its files.
ReferenceSet load_zarr_folder(const std::string& folder);
// Builds the description and manifest from Zarr v2 metadata inside the references.
// `group`: a subgroup path ("a/b"): its keys are read as a store of their own; "" = the root.
Dataset dataset_from_references(const ReferenceSet& refs, const std::string& uri,
                                const std::string& engine, const std::string& group = "");

}  // namespace zp
