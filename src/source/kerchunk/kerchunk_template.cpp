#include "source/kerchunk/kerchunk_template.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "core/budget.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

// Python's (and jinja2's) integer arithmetic, checked: a result beyond 64 bits is an error, never
// a wrapped value that names another chunk. Errors name the expression `text`.
struct Checked {
  const std::string& text;
  const std::string& where;

  [[noreturn]] void fail(const std::string& why) const {
    const std::string shown = text.size() > 80 ? text.substr(0, 80) + "..." : text;
    throw Error::source(where, "bad template expression '" + shown + "': " + why);
  }
  int64_t add(int64_t a, int64_t b) const {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  int64_t sub(int64_t a, int64_t b) const {
    int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  int64_t mul(int64_t a, int64_t b) const {
    int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) fail("a value beyond 64 bits");
    return r;
  }
  // Floor division as Python's //: -7 // 2 == -4.
  int64_t floor_div(int64_t n, int64_t d) const {
    if (d == 0) fail("division by zero");
    if (d == -1) return sub(0, n);
    const int64_t q = n / d;
    return (n % d != 0 && ((n < 0) != (d < 0))) ? q - 1 : q;
  }
  // x % -1 is 0, but INT64_MIN // -1 does not fit.
  int64_t mod(int64_t n, int64_t d) const { return d == -1 ? 0 : sub(n, mul(floor_div(n, d), d)); }
};

// Recursive-descent compiler of one "{{ ... }}" expression into postfix steps: parsed once,
// evaluated once a point (run below). A name is a dimension of `dims` (its value at the point) or
// else a constant of `vars`.
class Expr {
 public:
  Expr(const std::string& s, const std::map<std::string, int64_t>& vars,
       const std::vector<std::string>& dims, const std::string& where)
      : s_(s), vars_(vars), dims_(dims), check_{s, where} {}

  ExprProgram compile() {
    sum();
    skip();
    if (pos_ != s_.size()) check_.fail("unexpected '" + s_.substr(pos_) + "'");
    return prog_;
  }

 private:
  using Op = ExprProgram::Op;
  void emit(Op op, int64_t value = 0) {
    prog_.steps.push_back({op, value});
    if (op == Op::Const || op == Op::Var) {
      prog_.stack = std::max(prog_.stack, ++height_);
    } else if (op != Op::Neg) {
      --height_;
    }
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
  void sum() {
    product();
    for (;;) {
      if (eat("+")) {
        product();
        emit(Op::Add);
      } else if (eat("-")) {
        product();
        emit(Op::Sub);
      } else {
        return;
      }
    }
  }
  void product() {
    unary();
    for (;;) {
      Op op;
      if (eat("//") || eat("/"))
        op = Op::FloorDiv;
      else if (eat("*"))
        op = Op::Mul;
      else if (eat("%"))
        op = Op::Mod;
      else
        return;
      unary();
      emit(op);
    }
  }
  void unary() {
    // Nesting costs stack: far more than any generator needs, far less than the stack holds.
    if (++depth_ > kMaxDepth)
      check_.fail("nested more than " + std::to_string(kMaxDepth) + " deep");
    unary_inner();
    --depth_;
  }
  void unary_inner() {
    if (eat("-")) {
      unary();
      return emit(Op::Neg);
    }
    if (eat("(")) {
      sum();
      if (!eat(")")) check_.fail("missing ')'");
      return;
    }
    skip();
    const std::size_t start = pos_;
    if (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      return emit(Op::Const, number(s_.substr(start, pos_ - start)));
    }
    while (pos_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '_'))
      ++pos_;
    const std::string name = s_.substr(start, pos_ - start);
    if (name.empty()) check_.fail("expected a number or a name");
    for (std::size_t d = 0; d < dims_.size(); ++d)
      if (dims_[d] == name) return emit(Op::Var, static_cast<int64_t>(d));
    const auto it = vars_.find(name);
    if (it == vars_.end()) check_.fail("unknown name '" + name + "'");
    emit(Op::Const, it->second);
  }
  int64_t number(const std::string& digits) {
    int64_t v = 0;
    for (char c : digits) v = check_.add(check_.mul(v, 10), c - '0');
    return v;
  }

  static constexpr int kMaxDepth = 64;
  const std::string& s_;
  const std::map<std::string, int64_t>& vars_;
  const std::vector<std::string>& dims_;
  Checked check_;
  ExprProgram prog_;
  std::size_t pos_ = 0;
  std::size_t height_ = 0;
  int depth_ = 0;
};

// Checked as it grows: "{{a}}" repeated with a large template "a" renders far more than its text.
void check_rendered_size(const std::string& out, const std::string& where) {
  if (static_cast<int64_t>(out.size()) > budget::kRenderedTemplateBytes)
    throw Error::source(where, "a template renders to more than " +
                                   std::to_string(budget::kRenderedTemplateBytes) +
                                   " bytes; refusing it");
}

// The value of a compiled expression (`text` and `where` for its errors) at the point `values`.
int64_t run(const ExprProgram& p, const std::vector<int64_t>& values, const std::string& text,
            const std::string& where) {
  using Op = ExprProgram::Op;
  const Checked check{text, where};
  int64_t small[32];
  std::vector<int64_t> large;
  int64_t* st = small;
  if (p.stack > 32) large.resize(p.stack), st = large.data();
  std::size_t n = 0;
  for (const auto& [op, value] : p.steps) {
    if (op == Op::Const || op == Op::Var) {
      st[n++] = op == Op::Const ? value : values[static_cast<std::size_t>(value)];
      continue;
    }
    if (op == Op::Neg) {
      st[n - 1] = check.sub(0, st[n - 1]);
      continue;
    }
    const int64_t b = st[--n];
    int64_t& a = st[n - 1];
    switch (op) {
      case Op::Add:
        a = check.add(a, b);
        break;
      case Op::Sub:
        a = check.sub(a, b);
        break;
      case Op::Mul:
        a = check.mul(a, b);
        break;
      case Op::FloorDiv:
        a = check.floor_div(a, b);
        break;
      default:
        a = check.mod(a, b);
        break;
    }
  }
  return st[0];
}

}  // namespace

namespace {

// Each "{{...}}" of `text` with its inner text trimmed: calls literal(text before it) and
// expression(inner), then literal(the rest).
template <typename Literal, typename Expression>
void split_template(const std::string& text, const std::string& where, Literal&& literal,
                    Expression&& expression) {
  std::size_t pos = 0;
  for (;;) {
    const auto open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos)
      throw Error::source(where, "unclosed '{{' in '" + text.substr(0, 80) + "'");
    literal(text.substr(pos, open - pos));
    std::string inner = text.substr(open + 2, close - open - 2);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.front())))
      inner.erase(0, 1);
    while (!inner.empty() && std::isspace(static_cast<unsigned char>(inner.back())))
      inner.pop_back();
    expression(inner);
    pos = close + 2;
  }
  literal(text.substr(pos));
}

}  // namespace

std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& strings,
                            const std::map<std::string, int64_t>& numbers,
                            const std::string& where) {
  std::string out;
  split_template(
      text, where,
      [&](const std::string& lit) {
        out += lit;
        check_rendered_size(out, where);
      },
      [&](const std::string& inner) {
        const auto s = strings.find(inner);
        if (s != strings.end())
          out += s->second;
        else
          out += std::to_string(run(Expr(inner, numbers, {}, where).compile(), {}, inner, where));
        check_rendered_size(out, where);
      });
  return out;
}

CompiledTemplate::CompiledTemplate(const std::string& text,
                                   const std::map<std::string, std::string>& strings,
                                   const std::vector<std::string>& dims, const std::string& where)
    : where_(where) {
  auto literal = [&](const std::string& lit) {
    if (lit.empty()) return;
    if (!pieces_.empty() && !pieces_.back().expression)
      pieces_.back().text += lit;
    else
      pieces_.push_back({lit, false, {}});
    check_rendered_size(pieces_.back().text, where);
  };
  split_template(text, where, literal, [&](const std::string& inner) {
    const auto s = strings.find(inner);
    if (s != strings.end()) return literal(s->second);
    pieces_.push_back({inner, true, Expr(inner, {}, dims, where).compile()});
  });
}

std::string CompiledTemplate::render(const std::vector<int64_t>& values) const {
  std::string out;
  for (const Piece& p : pieces_) {
    out += p.expression ? std::to_string(run(p.program, values, p.text, where_)) : p.text;
    check_rendered_size(out, where_);
  }
  return out;
}

std::optional<int64_t> CompiledTemplate::value(const std::vector<int64_t>& values) const {
  if (pieces_.size() != 1 || !pieces_[0].expression) return std::nullopt;
  return run(pieces_[0].program, values, pieces_[0].text, where_);
}

}  // namespace zp
