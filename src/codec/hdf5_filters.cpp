// The table of HDF5 filter ids we decode (see hdf5_filters.hpp).
#include "codec/hdf5_filters.hpp"

#include "core/error.hpp"

namespace zp {

CodecSpec codec_from_hdf5_filter(int filter_id, const std::vector<unsigned>& cd_values,
                                 int elementsize, const std::string& where) {
  switch (filter_id) {
    case 1:  // H5Z_FILTER_DEFLATE
      return {"zlib", {{"id", "zlib"}, {"level", cd_values.empty() ? 1 : cd_values[0]}}};
    case 2:  // H5Z_FILTER_SHUFFLE
      return {"shuffle", {{"id", "shuffle"}, {"elementsize", elementsize}}};
    case 3:  // H5Z_FILTER_FLETCHER32
      return {"fletcher32", {{"id", "fletcher32"}}};
    case 32001:  // blosc: the whole chunk is one blosc buffer
      return {"blosc", {{"id", "blosc"}}};
    case 32004:
      return {"hdf5_lz4", {{"id", "hdf5_lz4"}}};
    case 32015:
      return {"zstd", {{"id", "zstd"}}};
    default:
      break;
  }
  static const std::pair<int, const char*> names[] = {
      {4, "szip"},           {5, "nbit"},   {6, "scaleoffset"}, {307, "bzip2"},
      {32008, "bitshuffle"}, {32017, "sz"}, {32013, "zfp"}};
  std::string name = "id " + std::to_string(filter_id);
  for (const auto& [id, n] : names)
    if (id == filter_id) name = std::string(n) + " (id " + std::to_string(id) + ")";
  throw Error::source(where, "unsupported HDF5 filter " + name +
                                 "; supported: deflate, shuffle, fletcher32, blosc, zstd, lz4");
}

}  // namespace zp
