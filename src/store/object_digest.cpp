#include "store/object_digest.hpp"

#include <openssl/evp.h>

#include "core/error.hpp"

namespace zp {

namespace {

std::string digest(const EVP_MD* md, const Bytes& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out, &n, md, nullptr) != 1)
    throw Error::internal("EVP_Digest failed");
  return std::string(reinterpret_cast<const char*>(out), n);
}

}  // namespace

std::string md5_base64(const Bytes& data) {
  const std::string raw = digest(EVP_md5(), data);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
}

namespace {
std::string hex(const std::string& raw) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}
}  // namespace

std::string md5_hex(const Bytes& data) {
  return hex(digest(EVP_md5(), data));
}

std::string md5_hex_from_base64(const std::string& base64) {
  if (base64.size() != 24) return "";
  unsigned char out[24];
  const int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(base64.data()), 24);
  if (n != 18) return "";  // 16 bytes and the two that the padding decodes to
  return hex(std::string(reinterpret_cast<const char*>(out), 16));
}

std::string sha256_hex_of(const Bytes& data) {
  return hex(digest(EVP_sha256(), data));
}

}  // namespace zp
