// The kerchunk engine: a reference set (version 0 or 1: refs, inline raw and base64 data,
// templates, gen) parsed into a ReferenceSet, then read as the Zarr v2 store it describes
// (zarr/zarr_source.hpp), whose chunks point at byte ranges of the files it names.
#pragma once

#include <string>

#include "source/zarr/reference_set.hpp"
#include "store/store_table.hpp"

namespace zp {

// Parses a kerchunk JSON file (local or a URL); relative chunk paths resolve against its folder
// or URL prefix, paths without a scheme take `remote_protocol` when set (as fsspec's). The origin
// rule: a reference set read from a remote location may not name local files (Error(Source))
// unless `access.options().allow_local_references`.
ReferenceSet load_kerchunk(const std::string& location, SourceAccess& access);
// The same from text; `where` names it in errors. `base` remote: the origin rule as above.
ReferenceSet parse_kerchunk(const std::string& text, const std::string& base,
                            const std::string& where, const std::string& remote_protocol = "",
                            bool allow_local_references = false);

}  // namespace zp
