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
    case 4:  // H5Z_FILTER_SZIP: the values as the dataset stores them (set_local filled them in)
      if (cd_values.size() < 4) break;
      return {"szip",
              {{"id", "szip"},
               {"mask", cd_values[0]},
               {"pixels_per_block", cd_values[1]},
               {"bits_per_pixel", cd_values[2]},
               {"pixels_per_scanline", cd_values[3]}}};
    case 307:  // bzip2 (netCDF-C's plugin): one bzip2 stream, as numcodecs' BZ2 reads it
      return {"bz2", {{"id", "bz2"}, {"level", cd_values.empty() ? 9 : cd_values[0]}}};
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
      {4, "szip"},           {5, "nbit"},   {6, "scaleoffset"}, {32000, "lzf"},
      {32008, "bitshuffle"}, {32017, "sz"}, {32013, "zfp"}};
  std::string name = "id " + std::to_string(filter_id);
  for (const auto& [id, n] : names)
    if (id == filter_id) name = std::string(n) + " (id " + std::to_string(id) + ")";
  throw Error::source(
      where, "unsupported HDF5 filter " + name +
                 "; supported: deflate, shuffle, fletcher32, szip, bzip2, blosc, zstd, lz4");
}

}  // namespace zp
