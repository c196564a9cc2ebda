// The small template language of kerchunk reference sets: "{{name}}" in URLs (from "templates")
// and "{{i * 1000 + 24}}" in "gen" entries (integer arithmetic on the generator's dimensions:
// + - * / // % and parentheses, with Python's floor semantics; a result beyond 64 bits or nesting
// deeper than 64 is an error). Pure functions; errors are Error(Source) naming `where`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/text_codec.hpp"

namespace zp {

std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& strings,
                            const std::map<std::string, int64_t>& numbers,
                            const std::string& where);

// One "{{...}}" expression compiled to postfix steps (parsed once, evaluated once a point).
struct ExprProgram {
  enum class Op : uint8_t { Const, Var, Add, Sub, Mul, FloorDiv, Mod, Neg };
  struct Step {
    Op op;
    int64_t value;  // Const: the value; Var: the dimension's index
  };
  std::vector<Step> steps;
  std::size_t stack = 0;  // the deepest its evaluation stack gets
};

// A template compiled once and rendered many times (a "gen" entry: once a reference), as
// render_template renders it: `strings` substituted now, each other "{{...}}" an expression
// whose names are `dims` (an unknown name or a malformed expression fails here, not later).
class CompiledTemplate {
 public:
  CompiledTemplate(const std::string& text, const std::map<std::string, std::string>& strings,
                   const std::vector<std::string>& dims, const std::string& where);
  // `values`: each of `dims`' value at the point.
  std::string render(const std::vector<int64_t>& values) const;
  // The value of a template that is one expression and nothing else ("{{i * 8}}"); else nullopt.
  std::optional<int64_t> value(const std::vector<int64_t>& values) const;

 private:
  struct Piece {
    std::string text;  // literal text, or the expression
    bool expression = false;
    ExprProgram program;
  };
  std::vector<Piece> pieces_;
  std::string where_;
};

}  // namespace zp
