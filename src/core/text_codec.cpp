#include "core/text_codec.hpp"

#include <cstdint>

#include "core/error.hpp"

namespace zp {

Bytes decode_base64(const std::string& text, const std::string& where) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::size_t end = text.size();
  while (end > 0 && text[end - 1] == '=') --end;
  if (text.size() - end > 2 || end % 4 == 1) throw Error::source(where, "bad base64 length");
  Bytes out;
  out.reserve(end * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < end; ++i) {
    const int v = value(text[i]);
    if (v < 0) throw Error::source(where, "bad base64 character at position " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string encode_base64(const Bytes& data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < data.size(); i += 3) {
    const uint32_t b0 = data[i], b1 = i + 1 < data.size() ? data[i + 1] : 0,
                   b2 = i + 2 < data.size() ? data[i + 2] : 0;
    const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < data.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

Bytes ucs4_from_utf8(const std::string& text, bool big_endian, const std::string& where) {
  Bytes out;
  out.reserve(text.size() * 4);
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int n = c < 0x80           ? 1
                  : (c >> 5) == 0x6  ? 2
                  : (c >> 4) == 0xe  ? 3
                  : (c >> 3) == 0x1e ? 4
                                     : 0;
    if (n == 0 || i + static_cast<std::size_t>(n) > text.size())
      throw Error::source(where, "text is not UTF-8 at byte " + std::to_string(i));
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (int k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      if ((cc & 0xc0) != 0x80)
        throw Error::source(where, "text is not UTF-8 at byte " + std::to_string(i));
      cp = (cp << 6) | (cc & 0x3f);
    }
    i += static_cast<std::size_t>(n);
    for (int k = 0; k < 4; ++k)
      out.push_back(static_cast<unsigned char>(cp >> (8 * (big_endian ? 3 - k : k))));
  }
  return out;
}

std::string utf8_from_ucs4(const unsigned char* data, std::size_t units, bool big_endian) {
  std::string out;
  for (std::size_t u = 0; u < units; ++u) {
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k)
      cp |= static_cast<uint32_t>(data[4 * u + static_cast<std::size_t>(k)])
            << (8 * (big_endian ? 3 - k : k));
    if (cp == 0) break;
    if (cp > 0x10ffff) cp = 0xfffd;
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  return out;
}

}  // namespace zp
