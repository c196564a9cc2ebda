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

}  // namespace zp
