#include "plan/plan.hpp"

#include "codec/codec.hpp"
#include "store/file_store.hpp"

namespace zp {

int64_t ArrayPlan::num_chunks() const {
  int64_t n = 1;
  for (std::size_t d = 0; d < ndim(); ++d) n *= chunks_along(d);
  return n;
}

std::size_t ArrayPlan::chunk_bytes() const {
  std::size_t n = static_cast<std::size_t>(conversion.out.size);
  for (auto c : chunks) n *= static_cast<std::size_t>(c);
  return n;
}

int64_t ArrayPlan::output_bytes() const {
  int64_t n = conversion.out.size;
  for (auto s : shape) n *= s;
  return n;
}

int64_t Region::num_chunks() const {
  int64_t n = 1;
  for (std::size_t d = 0; d < lo.size(); ++d) n *= hi[d] - lo[d];
  return n;
}

const Conversion& ArrayPlan::conversion_of(const ChunkRef& ref) const {
  if (file_conversions.empty() || ref.kind == ChunkRef::Kind::Missing) return conversion;
  const Conversion* c = &conversion;
  for (const auto& fc : file_conversions)
    if (fc.first_file <= ref.file) c = &fc.conversion;
  return *c;
}

std::string ArrayPlan::object_codec() const {
  for (const auto& c : codecs)
    if (c.id == "vlen-utf8" || c.id == "vlen-bytes") return c.id;
  return "";
}

std::vector<CodecSpec> ArrayPlan::bytes_codecs() const {
  std::vector<CodecSpec> out;
  for (const auto& c : codecs)
    if (codec_kind(c.id) == CodecKind::BytesToBytes) out.push_back(c);
  return out;
}

bool Plan::reads_remote() const {
  for (const auto& f : files)
    if (is_remote(f)) return true;
  return false;
}

}  // namespace zp
