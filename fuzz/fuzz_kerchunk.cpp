// libFuzzer harness: kerchunk reference sets, through to the dataset description. Any input must
// end in a Dataset or a zp::Error (references to files resolve to a folder that does not exist).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "source/kerchunk/kerchunk_source.hpp"
#include "source/zarr/zarr_source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const zp::ReferenceSet refs = zp::parse_kerchunk(text, "/nonexistent", "fuzz.json");
    zp::dataset_from_references(refs, "fuzz.json", "kerchunk");
  } catch (const zp::Error&) {
  }
  return 0;
}
