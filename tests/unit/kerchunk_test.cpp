// Kerchunk reference sets: inline data (raw and base64), templates, gen, versions, and errors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "source/chunk_reader.hpp"
#include "source/kerchunk/kerchunk_source.hpp"
#include "source/kerchunk/kerchunk_template.hpp"
#include "source/open_source.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

fs::path write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("zp_" + std::to_string(getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}

TEST(Kerchunk, TemplatesGenAndInlineData) {
  // A raw data file of 4 float32 chunks of 2 elements.
  const fs::path data = write_temp(
      "data.bin",
      std::string("\0\0\x80?\0\0\0@\0\0@@\0\0\x80@\0\0\xa0@\0\0\xc0@\0\0\xe0@\0\0\0A", 32));
  const std::string refs = R"({"version": 1,
    "templates": {"u": ")" +
                           data.filename().string() + R"("},
    "refs": {
      ".zgroup": "{\"zarr_format\": 2}",
      ".zattrs": "{\"title\": \"t\", \"bad\": NaN}",
      "x/.zarray": "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":NaN,\"filters\":null,\"order\":\"C\",\"shape\":[10],\"zarr_format\":2}",
      "x/.zattrs": "{\"_ARRAY_DIMENSIONS\":[\"x\"]}",
      "x/4": "base64:AAAQQQAAIEE="
    },
    "gen": [{"key": "x/{{i}}", "url": "{{u}}", "offset": "{{i * 8}}", "length": "8",
             "dimensions": {"i": {"stop": 4}}}]})";
  const fs::path json = write_temp("refs.json", refs);
  const Dataset ds = open_source(json.string(), "auto", "");
  EXPECT_EQ(ds.engine, "kerchunk");
  EXPECT_EQ(ds.attrs["title"], "t");
  const Variable& x = ds.variable("x");
  EXPECT_EQ(x.fill_value, "NaN");
  ChunkReader reader(ds);
  const Bytes all = read_whole_1d(reader, x);
  float values[10];
  std::memcpy(values, all.data(), sizeof values);
  for (int i = 0; i < 10; ++i) EXPECT_FLOAT_EQ(values[i], static_cast<float>(i + 1));
  fs::remove(json);
  fs::remove(data);
}

// Generated references are columns with a hash index (issue 32, P1): a later value of a key
// replaces the earlier one, erasing keeps the other keys findable, metadata keys stay explicit.
TEST(Kerchunk, GeneratedReferencesAsColumns) {
  ReferenceSet refs;
  refs.set("x/0", Reference{nullptr, "/old", 1, 2});
  const uint32_t a = refs.generated.path_id("/a.nc");
  EXPECT_EQ(refs.generated.path_id("/b.nc"), a + 1);
  EXPECT_EQ(refs.generated.path_id("/a.nc"), a);
  for (int i = 0; i < 5000; ++i) refs.set_generated("x/" + std::to_string(i), {a, i * 10, 10});
  refs.set_generated("x/7", {a + 1, 70, 11});  // replaces
  refs.set_generated("x/.zattrs", {a, 0, 5});  // metadata: explicit
  EXPECT_EQ(refs.size(), 5001u);
  EXPECT_EQ(refs.explicit_refs.count("x/0"), 0u);  // the generated one replaced it
  EXPECT_EQ(refs.get("x/0")->path, "/a.nc");
  EXPECT_EQ(refs.get("x/7")->path, "/b.nc");
  EXPECT_EQ(refs.get("x/7")->length, 11);
  EXPECT_EQ(refs.get("x/4999")->offset, 49990);
  EXPECT_EQ(refs.explicit_refs.at("x/.zattrs").path, "/a.nc");
  EXPECT_FALSE(refs.get("x/5000"));
  for (int i = 0; i < 5000; i += 2) EXPECT_TRUE(refs.generated.erase("x/" + std::to_string(i)));
  EXPECT_FALSE(refs.generated.erase("x/0"));
  for (int i = 1; i < 5000; i += 2) ASSERT_TRUE(refs.contains("x/" + std::to_string(i))) << i;
  EXPECT_FALSE(refs.contains("x/2"));
  refs.set("x/3", Reference{nullptr, "/c.nc", 0, 1});  // explicit replaces generated
  EXPECT_EQ(refs.get("x/3")->path, "/c.nc");
  const ReferenceSet sub = refs.below("x/");
  EXPECT_EQ(sub.size(), 2501u);
  EXPECT_EQ(sub.get("7")->path, "/b.nc");
  EXPECT_EQ(sub.get("3")->path, "/c.nc");
  EXPECT_TRUE(sub.explicit_refs.count(".zattrs"));
}

TEST(Kerchunk, TemplateExpressions) {
  EXPECT_EQ(render_template("a{{ (i + 1) * 3 // 2 }}b{{u}}", {{"u", "U"}}, {{"i", 4}}, "t"),
            "a7bU");
  EXPECT_THROW(render_template("{{i +}}", {}, {{"i", 1}}, "t"), Error);
  EXPECT_THROW(render_template("{{j}}", {}, {{"i", 1}}, "t"), Error);
  EXPECT_THROW(render_template("{{i", {}, {{"i", 1}}, "t"), Error);
  EXPECT_THROW(render_template("{{1/0}}", {}, {}, "t"), Error);
}

// Hostile generator arithmetic (issue 26 item 11): on the old evaluator INT64_MIN // -1 and % -1
// trapped (SIGFPE), deep parentheses overflowed the stack and products wrapped silently.
TEST(Kerchunk, TemplateArithmeticIsCheckedAndBounded) {
  const std::map<std::string, int64_t> min{{"m", INT64_MIN}};
  EXPECT_THROW(render_template("{{m // -1}}", {}, min, "t"), Error);
  EXPECT_THROW(render_template("{{-m}}", {}, min, "t"), Error);
  EXPECT_EQ(render_template("{{m % -1}}", {}, min, "t"), "0");
  EXPECT_THROW(render_template("{{4294967296 * 4294967296}}", {}, {}, "t"), Error);
  EXPECT_THROW(render_template("{{9223372036854775807 + 1}}", {}, {}, "t"), Error);
  EXPECT_THROW(render_template("{{99999999999999999999}}", {}, {}, "t"), Error);
  EXPECT_EQ(render_template("{{9223372036854775807}}", {}, {}, "t"), "9223372036854775807");
  const std::string deep = "{{" + std::string(200000, '(') + "1" + std::string(200000, ')') + "}}";
  EXPECT_THROW(render_template(deep, {}, {}, "t"), Error);
  EXPECT_THROW(render_template("{{" + std::string(200000, '-') + "1}}", {}, {}, "t"), Error);
  EXPECT_EQ(render_template("{{((((i))))}}", {}, {{"i", 3}}, "t"), "3");
  // Python's floor semantics, as jinja2 renders them for kerchunk.
  EXPECT_EQ(render_template("{{-7 // 2}} {{-7 % 3}} {{7 % -3}}", {}, {}, "t"), "-4 2 -2");
}

TEST(Kerchunk, Base64StrictAndRoundTrip) {
  const Bytes b = {0, 1, 2, 250, 251, 252, 253};
  EXPECT_EQ(decode_base64(encode_base64(b), "t"), b);
  EXPECT_THROW(decode_base64("ab$d", "t"), Error);
  EXPECT_THROW(decode_base64("a", "t"), Error);
}

TEST(TextCodec, Ucs4RoundTripsUtf8BothEndians) {
  const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // a, e-acute, euro, emoji
  for (bool big : {false, true}) {
    const auto units = ucs4_from_utf8(text, big, "t");
    ASSERT_EQ(units.size(), 16u);
    EXPECT_EQ(units[big ? 3 : 0], 'a');
    EXPECT_EQ(utf8_from_ucs4(units.data(), 4, big), text);
  }
  EXPECT_THROW(ucs4_from_utf8("\xc3", false, "t"), Error);
  // Fill values: '|S' as base64, '<U' as text, zero-padded to the element.
  unsigned char s[4], u[8];
  store_from_json(s, 0, DType::parse("|S4"), "YWI=");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(s), 4), std::string("ab\0\0", 4));
  store_from_json(u, 0, DType::parse("<U2"), "\xc3\xa9");
  EXPECT_EQ(utf8_from_ucs4(u, 2, false), "\xc3\xa9");
  EXPECT_EQ(DType::parse(">U3").str(), ">U3");
  EXPECT_EQ(DType::parse(">U3").size, 12);
  EXPECT_EQ(DType::parse("|b1").str(), "|b1");
}

TEST(Kerchunk, MalformedSetsAreSourceErrors) {
  const char* bad[] = {
      "not json",
      R"({"version": 2, "refs": {}})",
      R"({"version": 1})",
      R"({"version": 1, "refs": {".zgroup": 5}})",
      R"({"version": 1, "refs": {"x/0": ["f.bin", -1, 4]}})",
      R"({"version": 1, "refs": {"x/0": ["s3://bucket/f.bin", 0, 4]}})",
      R"({"version": 1, "refs": {"x/.zarray": "{\"shape\": [2]}", "x/.zattrs": "{}"}})",
      R"({"version": 1, "refs": {"x/.zarray": "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<c8\",\"fill_value\":0,\"filters\":null,\"order\":\"C\",\"shape\":[2],\"zarr_format\":2}", "x/.zattrs": "{\"_ARRAY_DIMENSIONS\":[\"x\"]}"}})",
      R"({"version": 1, "refs": {"x/.zarray": "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":0,\"filters\":null,\"order\":\"C\",\"shape\":[2],\"zarr_format\":2}", "x/.zattrs": "{}"}})",
      R"({"version": 1, "refs": {}})",
      R"({"version": 1, "refs": {"x/.zarray": "{\"chunks\":[1,1],\"compressor\":null,\"dtype\":\"<f4\",\"fill_value\":0,\"filters\":null,\"order\":\"C\",\"shape\":[100000000,100000000],\"zarr_format\":2}", "x/.zattrs": "{\"_ARRAY_DIMENSIONS\":[\"x\",\"y\"]}"}})",
  };
  for (const char* text : bad) {
    const fs::path p = write_temp("bad.json", text);
    try {
      open_source(p.string(), "kerchunk", "");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Source) << text << " -> " << e.what();
    }
    fs::remove(p);
  }
}

TEST(Kerchunk, FixtureReferencesResolveRelativeToTheirFolder) {
  const fs::path refs = fs::path(ZP_FIXTURES) / "era5_small" / "refs.json";
  if (!fs::exists(refs)) GTEST_SKIP() << "fixtures not found";
  const Dataset ds = open_source(refs.string(), "auto", "");
  EXPECT_EQ(ds.files.size(), 4u);
  for (const auto& f : ds.files) EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_EQ(ds.variable("d2m").grid.num_chunks(), 64);
  EXPECT_EQ(ds.variable("time").chunks[0].kind, ChunkRef::Kind::Inline);
}

}  // namespace
}  // namespace zp
