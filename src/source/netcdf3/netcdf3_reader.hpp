// NetCDF-3 (classic CDF-1, 64-bit offset CDF-2 and CDF-5) read from its header alone: the format
// puts every dimension, attribute, type and data offset in a header at the start of the file, and
// the data uncompressed at those offsets, so each variable becomes byte ranges (one per record for
// record variables). Read through a Readable, a classic file needs no netCDF-C (and none of its
// global lock) and can live behind HTTP(S) or S3; and `refs` can describe it.
#pragma once

#include <string>

#include "source/scan_cache.hpp"
#include "store/readable.hpp"

namespace zp {

// True when `head` (the file's first bytes) starts a NetCDF-3 file.
bool is_netcdf3(const Bytes& head);

// The part of the NetCDF-3 file at `location` (`size` bytes). Text, scalars and coordinate values
// are read here (a few ranges); numeric arrays become Range references, big-endian as stored.
// Throws Error(Source) naming the file for a malformed header; `group` must be "" (no groups).
ScanPart describe_netcdf3(Readable& reader, const std::string& location, uint64_t size,
                          const std::string& group);

}  // namespace zp
