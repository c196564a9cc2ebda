#include "codec/shard_index.hpp"

#include "core/error.hpp"

namespace zp {

namespace {

void put_u64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

Bytes encode_shard_index(const std::vector<ShardEntry>& entries) {
  Bytes out;
  out.reserve(shard_index_bytes(entries.size()));
  for (const auto& e : entries) {
    put_u64(out, e.offset);
    put_u64(out, e.nbytes);
  }
  return crc32c_encode(out, nullptr, 1);
}

std::vector<ShardEntry> decode_shard_index(const Bytes& index, std::size_t n, uint64_t data_begin,
                                           uint64_t data_end, const std::string& where) {
  if (index.size() != shard_index_bytes(n))
    throw Error::source(where, "shard index has " + std::to_string(index.size()) +
                                   " bytes, expected " + std::to_string(shard_index_bytes(n)));
  Bytes raw;
  try {
    raw = crc32c_decode(index, nullptr, 0);
  } catch (const Error& e) {
    throw Error::source(where, std::string("shard index: ") + e.what());
  }
  std::vector<ShardEntry> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i].offset = get_u64(raw.data() + 16 * i);
    out[i].nbytes = get_u64(raw.data() + 16 * i + 8);
    if (out[i].missing()) continue;
    if (out[i].offset < data_begin || out[i].offset > data_end ||
        out[i].nbytes > data_end - out[i].offset)
      throw Error::source(
          where, "shard index entry " + std::to_string(i) + " points outside the shard's data");
  }
  return out;
}

}  // namespace zp
