#include "source/kerchunk/kerchunk_template.hpp"

#include <cctype>
#include <cstdint>

#include "core/budget.hpp"
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
    const std::string shown = s_.size() > 80 ? s_.substr(0, 80) + "..." : s_;
    throw Error::source(where_, "bad template expression '" + shown + "': " + why);
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
  // Python's (and jinja2's) integer arithmetic, checked: a result beyond 64 bits is an error,
  // never a wrapped value that names another chunk.
  int64_t add(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  int64_t sub(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  int64_t mul(int64_t a, int64_t b) {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  int64_t negate(int64_t a) { return sub(0, a); }
  int64_t sum() {
    int64_t v = product();
    for (;;) {
      if (eat("+"))
        v = add(v, product());
      else if (eat("-"))
        v = sub(v, product());
      else
        return v;
    }
  }
  int64_t product() {
    int64_t v = unary();
    for (;;) {
      if (eat("//") || eat("/")) {
        v = floor_div(v, unary());
      } else if (eat("*")) {
        v = mul(v, unary());
      } else if (eat("%")) {
        const int64_t d = unary();
        // x % -1 is 0, but INT64_MIN // -1 does not fit
        v = d == -1 ? 0 : sub(v, mul(floor_div(v, d), d));
      } else {
        return v;
      }
    }
  }
  // Floor division as Python's //: -7 // 2 == -4.
  int64_t floor_div(int64_t n, int64_t d) {
    if (d == 0) fail("division by zero");
    if (d == -1) return negate(n);
    const int64_t q = n / d;
    return (n % d != 0 && ((n < 0) != (d < 0))) ? q - 1 : q;
  }
  int64_t unary() {
    // Nesting costs stack: far more than any generator needs, far less than the stack holds.
    if (++depth_ > kMaxDepth) fail("nested more than " + std::to_string(kMaxDepth) + " deep");
    const int64_t v = unary_inner();
    --depth_;
    return v;
  }
  int64_t unary_inner() {
    if (eat("-")) return negate(unary());
    if (eat("(")) {
      const int64_t v = sum();
      if (!eat(")")) fail("missing ')'");
      return v;
    }
    skip();
    const std::size_t start = pos_;
    if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      return number(s_.substr(start, pos_ - start));
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
  int64_t number(const std::string& digits) {
    int64_t v = 0;
    for (char c : digits) v = add(mul(v, 10), c - '0');
    return v;
  }

  static constexpr int kMaxDepth = 64;
  const std::string& s_;
  const std::map<std::string, int64_t>& vars_;
  const std::string& where_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

// Checked as it grows: "{{a}}" repeated with a large template "a" renders far more than its text.
void check_rendered_size(const std::string& out, const std::string& where) {
  if (static_cast<int64_t>(out.size()) > budget::kRenderedTemplateBytes)
    throw Error::source(where, "a template renders to more than " +
                                   std::to_string(budget::kRenderedTemplateBytes) +
                                   " bytes; refusing it");
}

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
    if (close == std::string::npos)
      throw Error::source(where, "unclosed '{{' in '" + text.substr(0, 80) + "'");
    out += text.substr(pos, open - pos);
    std::string inner = text.substr(open + 2, close - open - 2);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.front())))
      inner.erase(0, 1);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.back())))
      inner.pop_back();
    const auto s = strings.find(inner);
    out += s != strings.end() ? s->second : std::to_string(Expr(inner, numbers, where).parse());
    check_rendered_size(out, where);
    pos = close + 2;
  }
  out += text.substr(pos);
  check_rendered_size(out, where);
  return out;
}

}  // namespace zp
