#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "source/dataset_json.hpp"

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

// As Python's json.dumps writes: non-ASCII as \u escapes (surrogate pairs beyond the BMP), also
// beside a NaN, and the text parses back to the same strings.
TEST(JsonNonfinite, PythonJsonIsAscii) {
  const nlohmann::ordered_json j = {{"units", "\u00b0C"}, {"t", "\u6c17 \U0001f321"}};
  EXPECT_EQ(zp::dump_python_json(j), R"({"units":"\u00b0C","t":"\u6c17 \ud83c\udf21"})");
  nlohmann::ordered_json with_nan = j;
  with_nan["x"] = std::nan("");
  EXPECT_EQ(zp::dump_python_json(with_nan),
            R"({"units":"\u00b0C","t":"\u6c17 \ud83c\udf21","x":NaN})");
  EXPECT_EQ(nlohmann::ordered_json::parse(zp::dump_python_json(j)), j);
}

// Manifests of every kind of reference (missing, ranges in any file order with offsets up and
// down to 2^63, filter masks, inline bytes), whole or a random subset in random order, come back
// from their packed JSON as they were; a damaged packed string is refused.
TEST(Manifest, PackedReferencesRoundTrip) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<zp::ChunkRef> refs(rng() % 40);
    const bool masks = rng() % 3 == 0;
    for (auto& r : refs) {
      const auto pick = rng() % 5;
      if (pick == 0) continue;  // missing
      if (pick == 1) {
        r.kind = zp::ChunkRef::Kind::Inline;
        r.data =
            std::make_shared<zp::Bytes>(zp::Bytes(rng() % 9, static_cast<unsigned char>(rng())));
        continue;
      }
      r.kind = zp::ChunkRef::Kind::Range;
      r.file = static_cast<uint32_t>(rng() % 4 == 0 ? rng() : rng() % 6);
      r.offset = rng() % 2 ? rng() % 100000 : rng() >> 1;
      r.length = rng() % 2 ? rng() % 70000 : rng() >> 30;
      r.filter_mask = masks ? static_cast<uint32_t>(rng()) : 0;
    }
    std::vector<int64_t> only;
    for (std::size_t i = 0; i < refs.size(); ++i)
      if (rng() % 2) only.push_back(static_cast<int64_t>(i));
    std::shuffle(only.begin(), only.end(), rng);
    for (const bool subset : {false, true}) {
      const nlohmann::json j = zp::chunk_refs_json(refs, subset ? &only : nullptr);
      std::vector<zp::ChunkRef> back(refs.size());
      zp::chunk_refs_from(nlohmann::json::parse(j.dump()), back, "test");
      for (std::size_t i = 0; i < refs.size(); ++i) {
        const bool wanted =
            !subset || std::find(only.begin(), only.end(), static_cast<int64_t>(i)) != only.end();
        const zp::ChunkRef& want = refs[i];
        const zp::ChunkRef& got = back[i];
        if (!wanted || want.kind == zp::ChunkRef::Kind::Missing) {
          EXPECT_EQ(got.kind, zp::ChunkRef::Kind::Missing) << trial << " " << i;
          continue;
        }
        ASSERT_EQ(got.kind, want.kind) << trial << " " << i;
        if (want.kind == zp::ChunkRef::Kind::Inline) {
          EXPECT_EQ(*got.data, *want.data);
          continue;
        }
        EXPECT_EQ(got.file, want.file) << trial << " " << i;
        EXPECT_EQ(got.offset, want.offset) << trial << " " << i;
        EXPECT_EQ(got.length, want.length) << trial << " " << i;
        EXPECT_EQ(got.filter_mask, want.filter_mask) << trial << " " << i;
      }
      const std::string packed = j["range"]["packed"];
      if (packed.size() < 8) continue;
      nlohmann::json cut = j;
      cut["range"]["packed"] = packed.substr(0, packed.size() - 4);
      std::vector<zp::ChunkRef> none(refs.size());
      EXPECT_THROW(zp::chunk_refs_from(cut, none, "test"), zp::Error) << trial;
    }
  }
}

}  // namespace
