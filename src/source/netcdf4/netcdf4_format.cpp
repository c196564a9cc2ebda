#include "source/netcdf4/netcdf4_format.hpp"

#include <hdf5.h>

#include <cstring>

#include "core/error.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"
#include "source/netcdf4/netcdf4_reader.hpp"

namespace zp {

namespace {

// A local file: HDF5 looks for its signature at 0, 512, 1024, ... (a user block may precede it).
// A remote one is left to HDF5 to judge when no other format claimed it.
bool recognises(const Bytes& head, const std::string& location) {
  static const char kSignature[] = "\x89HDF\r\n\x1a\n";
  if (head.size() >= 8 && std::memcmp(head.data(), kSignature, 8) == 0) return true;
  if (is_remote(location)) return true;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return H5Fis_hdf5(location.c_str()) > 0;
}

hid_t open_local(const std::string& path) {
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
  // Sources are only read, and one changed under a run is caught by its fingerprint: HDF5's lock
  // adds nothing, and fails where the file system has no locks (NFS without its lock daemon).
  H5Pset_file_locking(fapl, false, true);
#endif
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (file < 0) throw Error::source(path, "HDF5 cannot open the file");
  return file;
}

// A local file through HDF5's own driver; a remote one by range through `reader`.
ScanPart describe(Readable& reader, const std::string& location, uint64_t size,
                  const std::string& group) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file =
      is_remote(location) ? open_hdf5_through(reader, location, size) : open_local(location);
  struct Closer {
    hid_t id;
    ~Closer() { H5Fclose(id); }
  } closer{file};
  return describe_netcdf4(file, location, group);
}

}  // namespace

FileFormat netcdf4_format() {
  return {"NetCDF-4/HDF5", recognises, describe, true};
}

}  // namespace zp
