#include "source/format.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "source/netcdf3/netcdf3_format.hpp"
#include "source/netcdf4/netcdf4_format.hpp"

namespace zp {

// NetCDF-3 first: its signature is certain, while NetCDF-4/HDF5 claims any remote object no
// other format claims (HDF5 then judges it, as a user block may put its signature past the head).
const std::vector<FileFormat>& file_formats() {
  static const std::vector<FileFormat> formats = {netcdf3_format(), netcdf4_format()};
  return formats;
}

Bytes head_of(Readable& reader, const std::string& location, uint64_t size) {
  return reader.read(location, 0, std::min(kHeadBytes, size));
}

const FileFormat& file_format_of(const Bytes& head, const std::string& location) {
  for (const auto& f : file_formats())
    if (f.recognises(head, location)) return f;
  std::string names;
  for (const auto& f : file_formats()) names += std::string(names.empty() ? "" : " nor ") + f.name;
  throw Error::source(location, "not a NetCDF file (neither " + names + ")");
}

}  // namespace zp
