#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/json_nonfinite.hpp"

namespace {

// The plain definition: one character at a time, strings (with escapes) copied untouched.
std::string reference_markers(const std::string& s) {
  std::string out;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < s.size())
        out += s[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool replaced = false;
    for (const char* tok : {"-Infinity", "Infinity", "NaN"})
      if (s.compare(i, std::strlen(tok), tok) == 0) {
        out += std::string("\"\\u0000") + tok + "\"";
        i += std::strlen(tok) - 1;
        replaced = true;
        break;
      }
    if (!replaced) out += c;
  }
  return out;
}

TEST(JsonNonfinite, TokensBecomeMarkersOutsideStringsOnly) {
  const std::string text =
      R"({"a": NaN, "b": [Infinity, -Infinity, 1], "s": "NaN \" NaN", "t": "x\\", "c": NaN})";
  nlohmann::json j = nlohmann::json::parse(zp::nonfinite_tokens_to_markers(text));
  zp::nonfinite_markers_to_numbers(j);
  EXPECT_TRUE(std::isnan(j["a"].get<double>()));
  EXPECT_TRUE(std::isnan(j["c"].get<double>()));
  EXPECT_EQ(j["b"][0].get<double>(), HUGE_VAL);
  EXPECT_EQ(j["b"][1].get<double>(), -HUGE_VAL);
  EXPECT_EQ(j["s"], "NaN \" NaN");
  EXPECT_EQ(j["t"], "x\\");
  const std::string plain = R"({"fill_value": "NaN", "n": 1})";
  EXPECT_EQ(zp::nonfinite_tokens_to_markers(plain), plain);
}

// Random texts of quotes, escapes, token pieces and whole tokens: the span-copying rewrite equals
// the plain definition, including unterminated strings and escapes at the end.
TEST(JsonNonfinite, SpanRewriteEqualsTheDefinition) {
  const std::vector<std::string> pieces = {"\"",  "\\", "NaN", "Infinity", "-Infinity", "Na",
                                           "Inf", "-",  "N",   "I",        " ",         "1",
                                           ",",   "[",  "x",   "\"NaN\""};
  std::mt19937 rng(7);
  for (int t = 0; t < 20000; ++t) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    ASSERT_EQ(zp::nonfinite_tokens_to_markers(s), reference_markers(s)) << s;
  }
}

}  // namespace
