#include "source/grib/grib_concept_memo.hpp"

#include <cstdint>
#include <cstring>

namespace zp {

namespace {

constexpr std::size_t kMemoEntries = 1 << 14;  // distinct headers kept (then the memo restarts)

uint64_t big_endian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// A section of `length` bytes at `at`, appended with the octets [from, to] (1-based) zeroed.
void append(std::string& out, const unsigned char* at, std::size_t length, std::size_t from = 0,
            std::size_t to = 0) {
  const std::size_t start = out.size();
  out.append(reinterpret_cast<const char*>(at), length);
  for (std::size_t i = from; i && i <= to && i <= length; ++i) out[start + i - 1] = 0;
}

std::string grib2_signature(const unsigned char* m, std::size_t n) {
  std::string out(reinterpret_cast<const char*>(m + 6), 2);  // discipline, edition
  for (std::size_t pos = 16; pos + 5 <= n;) {
    const uint64_t length = big_endian(m + pos, 4);
    const unsigned number = m[pos + 4];
    if (number >= 5 && number <= 8) return out;  // the first field's header is complete
    if (number < 1 || number > 4 || length < 5 || length > n - pos) return "";
    out += static_cast<char>(number);
    append(out, m + pos, static_cast<std::size_t>(length), number == 1 ? 13 : 0, 19);
    pos += static_cast<std::size_t>(length);
  }
  return "";
}

std::string grib1_signature(const unsigned char* m, std::size_t n) {
  if (n < 8 + 28) return "";
  const uint64_t pds = big_endian(m + 8, 3);
  if (pds < 28 || pds > n - 8) return "";
  std::string out;
  append(out, m + 8, static_cast<std::size_t>(pds), 13, 17);
  out[24] = 0;            // the century
  if (m[8 + 7] & 0x80) {  // a grid description section follows
    const std::size_t at = 8 + static_cast<std::size_t>(pds);
    if (at + 3 > n) return "";
    const uint64_t gds = big_endian(m + at, 3);
    if (gds < 3 || gds > n - at) return "";
    append(out, m + at, static_cast<std::size_t>(gds));
  }
  return out;
}

}  // namespace

std::string grib_header_signature(const unsigned char* m, std::size_t n) {
  if (!m || n < 16 || std::memcmp(m, "GRIB", 4) != 0) return "";
  if (m[7] == 2) return grib2_signature(m, n);
  if (m[7] == 1) return grib1_signature(m, n);
  return "";
}

nlohmann::json GribConceptMemo::get(codes_handle* h,
                                    const std::function<nlohmann::json()>& compute) {
  const void* message = nullptr;
  size_t size = 0;
  if (codes_get_message(h, &message, &size)) return compute();
  std::string key = grib_header_signature(static_cast<const unsigned char*>(message), size);
  if (key.empty()) return compute();
  if (const auto it = memo_.find(key); it != memo_.end()) return it->second;
  if (memo_.size() >= kMemoEntries) memo_.clear();
  nlohmann::json v = compute();
  memo_.emplace(std::move(key), v);
  return v;
}

}  // namespace zp
