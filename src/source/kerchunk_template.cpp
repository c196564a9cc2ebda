#include "source/kerchunk_template.hpp"

#include <cctype>

#include "core/error.hpp"

namespace zp {

namespace {

// Recursive-descent evaluator over one "{{ ... }}" expression.
class Expr {
 public:
  Expr(const std::string& s, const std::map<std::string, int64_t>& vars, const std::string& where)
      : s_(s), vars_(vars), where_(where) {}

  int64_t parse() {
    const int64_t v = sum();
    skip();
    if (pos_ != s_.size()) fail("unexpected '" + s_.substr(pos_) + "'");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw Error::source(where_, "bad template expression '" + s_ + "': " + why);
  }
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(const char* tok) {
    skip();
    const std::size_t n = std::char_traits<char>::length(tok);
    if (s_.compare(pos_, n, tok) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }
  int64_t sum() {
    int64_t v = product();
    for (;;) {
      if (eat("+"))
        v += product();
      else if (eat("-"))
        v -= product();
      else
        return v;
    }
  }
  int64_t product() {
    int64_t v = unary();
    for (;;) {
      if (eat("//") || eat("/")) {
        const int64_t d = unary();
        if (d == 0) fail("division by zero");
        v /= d;
      } else if (eat("*")) {
        v *= unary();
      } else if (eat("%")) {
        const int64_t d = unary();
        if (d == 0) fail("division by zero");
        v %= d;
      } else {
        return v;
      }
    }
  }
  int64_t unary() {
    if (eat("-")) return -unary();
    if (eat("(")) {
      const int64_t v = sum();
      if (!eat(")")) fail("missing ')'");
      return v;
    }
    skip();
    const std::size_t start = pos_;
    if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      return std::stoll(s_.substr(start, pos_ - start));
    }
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
      ++pos_;
    const std::string name = s_.substr(start, pos_ - start);
    if (name.empty()) fail("expected a number or a name");
    const auto it = vars_.find(name);
    if (it == vars_.end()) fail("unknown name '" + name + "'");
    return it->second;
  }

  const std::string& s_;
  const std::map<std::string, int64_t>& vars_;
  const std::string& where_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& strings,
                            const std::map<std::string, int64_t>& numbers,
                            const std::string& where) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos) throw Error::source(where, "unclosed '{{' in '" + text + "'");
    out += text.substr(pos, open - pos);
    std::string inner = text.substr(open + 2, close - open - 2);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.front())))
      inner.erase(0, 1);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.back())))
      inner.pop_back();
    const auto s = strings.find(inner);
    out += s != strings.end() ? s->second : std::to_string(Expr(inner, numbers, where).parse());
    pos = close + 2;
  }
  return out + text.substr(pos);
}

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

}  // namespace zp

namespace zp {

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

}  // namespace zp
