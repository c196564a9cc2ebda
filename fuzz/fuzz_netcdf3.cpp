// libFuzzer harness: NetCDF-3 headers, through to the dataset description. Any input must end in
// a Dataset or a zp::Error, reading only within the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "source/netcdf3/netcdf3_reader.hpp"

namespace {

// The input as the one object "fuzz.nc".
class MemoryReader : public zp::Readable {
 public:
  MemoryReader(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  zp::Bytes read(const std::string& location, uint64_t offset, uint64_t length) override {
    if (offset > size_ || length > size_ - offset)
      throw zp::Error::source(location, "range past the end of the file");
    return zp::Bytes(data_ + offset, data_ + offset + length);
  }
  std::optional<zp::Bytes> get(const std::string& location) override {
    return read(location, 0, size_);
  }
  zp::ObjectInfo info(const std::string&) override { return {true, size_, 0, ""}; }
  uint64_t bytes_read() const override { return 0; }

 private:
  const uint8_t* data_;
  std::size_t size_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    MemoryReader reader(data, size);
    zp::describe_netcdf3(reader, "fuzz.nc", size, "");
  } catch (const zp::Error&) {
  }
  return 0;
}
