// An HDF5 virtual file driver that reads through a Readable (src/store/), so HDF5 can describe a
// NetCDF-4/HDF5 file behind HTTP(S) or S3 with the same retries, credentials and version checks as
// every other remote read. HDF5 asks for many small metadata pieces; the driver serves them from
// pages of kPageBytes fetched by range, so a description costs a few requests, not hundreds.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>

#include "store/readable.hpp"

namespace zp {

// Opens `location` (size `size` bytes, from its ObjectInfo) read-only through `reader`, which must
// outlive the returned file id. A read that failed in `reader` is rethrown here as it was thrown
// (Error(Source) naming the URL and status, Error(Transient), ...) instead of HDF5's own message.
hid_t open_hdf5_through(Readable& reader, const std::string& location, uint64_t size);

// Call after an HDF5 call on a file opened by open_hdf5_through failed: rethrows the reader's own
// error when one caused it.
void rethrow_readable_error();
// A failed HDF5 call: the reader's own error when a remote read caused it, else Error(Source)
// `what` naming `where`.
[[noreturn]] void hdf5_failed(const std::string& where, const std::string& what);

}  // namespace zp
