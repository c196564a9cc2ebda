#include "source/char_arrays.hpp"

#include "core/error.hpp"
#include "core/text_codec.hpp"

namespace zp {

bool char_dim_stackable(const std::string& dim, const std::vector<DimsUse>& variables) {
  for (const auto& v : variables) {
    if (v.name == dim) return false;
    for (std::size_t d = 0; d < v.dims.size(); ++d)
      if (v.dims[d] == dim && (!v.chars || d + 1 != v.dims.size())) return false;
  }
  return true;
}

void take_char_fill_value(Variable& v) {
  v.fill_value = nullptr;
  const auto it = v.attrs.find("_FillValue");
  if (it == v.attrs.end()) return;
  if (!it->is_string()) {
    v.attrs.erase(it);
    return;
  }
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() > static_cast<std::size_t>(v.dtype.size)) return;
  v.fill_value = encode_base64(Bytes(s.begin(), s.end()));
  v.attrs.erase("_FillValue");
}

namespace {

constexpr std::size_t kMaxWholeText = std::size_t{256} << 20;

}  // namespace

void check_whole_text_size(std::size_t bytes, const std::string& where) {
  if (bytes > kMaxWholeText)
    throw Error::source(where, "text variable of " + std::to_string(bytes >> 20) +
                                   " MiB: text is read whole and zarr-parallel caps it at 256 MiB");
}

}  // namespace zp
