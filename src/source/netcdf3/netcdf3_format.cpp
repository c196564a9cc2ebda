#include "source/netcdf3/netcdf3_format.hpp"

#include "source/netcdf3/netcdf3_reader.hpp"

namespace zp {

FileFormat netcdf3_format() {
  return {"NetCDF-3", [](const Bytes& head, const std::string&) { return is_netcdf3(head); },
          describe_netcdf3, false};
}

}  // namespace zp
