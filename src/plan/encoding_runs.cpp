#include "plan/encoding_runs.hpp"

#include <filesystem>

#include "core/error.hpp"

namespace zp {

namespace {

std::string describe_encoding(const std::string& file, const Attrs& attrs,
                              const nlohmann::json& fill) {
  std::string out;
  for (const char* k : Variable::kDecodingAttrs)
    if (attrs.contains(k)) out += std::string(out.empty() ? "" : ", ") + k + " " + attrs[k].dump();
  if (!fill.is_null()) out += (out.empty() ? "" : ", ") + ("_FillValue " + fill.dump());
  return std::filesystem::path(file).filename().string() + ": " +
         (out.empty() ? "no scale_factor, add_offset or fill value" : out);
}

}  // namespace

// Files packed differently (Variable::encoding_runs) decode each with their own scale_factor,
// add_offset and fill values, as xarray decodes each file before joining them: one conversion per
// run, all to the same dtype. Their integers have no common packing, so `encoding: source`, which
// keeps the integers, is refused.
void apply_encoding_runs(ArrayPlan& a, const std::vector<std::string>& files, bool decoded) {
  const Variable& v = a.source;
  if (v.encoding_runs.empty()) return;
  const auto file = [&](uint32_t i) { return i < files.size() ? files[i] : v.origin; };
  const std::string first = describe_encoding(file(0), v.attrs, v.fill_value);
  const auto& r0 = v.encoding_runs[0];
  const std::string other = describe_encoding(file(r0.first_file), r0.attrs, r0.fill_value);
  const std::string what = "variable '" + v.name + "': its files encode it differently (" + first;
  if (a.coordinate || !(decoded || a.conversion.decode))
    throw Error::config("encoding",
                        what + "; " + other + "); " +
                            (a.coordinate ? std::string("a coordinate is kept as stored")
                                          : "encoding: source keeps the stored "
                                            "integers, which have no common "
                                            "packing: use encoding: decoded, which "
                                            "writes the values xarray decodes from "
                                            "each file"));
  for (const auto& run : v.encoding_runs) {
    const Conversion d = cf_decoding(v.decoded_as(run));
    const DType base = a.conversion.steps.empty() ? a.conversion.out : a.conversion.decoded;
    if (!(d.out == base))
      throw Error::config("encoding",
                          what + "; " +
                              describe_encoding(file(run.first_file), run.attrs, run.fill_value) +
                              "), and they decode to different types");
    ArrayPlan::FileConversion fc{run.first_file, a.conversion};
    fc.conversion.decode = d.decode;
    fc.conversion.fills = d.fills;
    fc.conversion.has_scale = d.has_scale;
    fc.conversion.has_offset = d.has_offset;
    fc.conversion.scale = d.scale;
    fc.conversion.offset = d.offset;
    a.file_conversions.push_back(std::move(fc));
  }
}

}  // namespace zp
