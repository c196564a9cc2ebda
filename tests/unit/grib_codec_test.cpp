// The "grib" codec: a message ecCodes writes (from its own sample) decodes to its float32 values,
// bitmap points to NaN as cfgrib reads them; damaged messages are refused, never a crash.
#include <eccodes.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {
namespace {

// A 16 x 31 GRIB2 message (ecCodes' GRIB2 sample) holding i + 0.5 at point i, points 3..5 missing.
Bytes sample_message(std::vector<double>& values) {
  codes_handle* h = codes_grib_handle_new_from_samples(nullptr, "GRIB2");
  EXPECT_NE(h, nullptr);
  size_t n = 0;
  codes_get_size(h, "values", &n);
  values.resize(n);
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<double>(i % 97) + 0.5;
  for (size_t i = 3; i < 6; ++i) values[i] = 9999.0;
  codes_set_long(h, "bitmapPresent", 1);
  codes_set_double(h, "missingValue", 9999.0);
  codes_set_double_array(h, "values", values.data(), n);
  const void* msg = nullptr;
  size_t size = 0;
  codes_get_message(h, &msg, &size);
  Bytes out(size);
  std::memcpy(out.data(), msg, size);
  codes_handle_delete(h);
  return out;
}

TEST(GribCodec, DecodesValuesAndBitmapAsNaN) {
  std::vector<double> values;
  const Bytes msg = sample_message(values);
  const Codec* c = find_codec("grib");
  ASSERT_NE(c, nullptr);
  const Bytes out = c->decode(msg, {{"id", "grib"}}, values.size() * sizeof(float));
  ASSERT_EQ(out.size(), values.size() * sizeof(float));
  const auto* f = reinterpret_cast<const float*>(out.data());
  for (size_t i = 0; i < values.size(); ++i) {
    if (i >= 3 && i < 6)
      EXPECT_TRUE(std::isnan(f[i])) << i;
    else
      EXPECT_EQ(f[i], static_cast<float>(values[i])) << i;
  }
}

TEST(GribCodec, RefusesOtherSizesAndDamagedMessages) {
  std::vector<double> values;
  const Bytes msg = sample_message(values);
  const Codec* c = find_codec("grib");
  EXPECT_THROW(c->decode(msg, {{"id", "grib"}}, 4), Error);  // not the field's size
  Bytes cut(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(msg.size() / 2));
  EXPECT_THROW(c->decode(cut, {{"id", "grib"}}, values.size() * sizeof(float)), Error);
  Bytes junk(200, 7);
  std::memcpy(junk.data(), "GRIB", 4);
  EXPECT_THROW(c->decode(junk, {{"id", "grib"}}, 0), Error);
  EXPECT_THROW(c->decode(Bytes(3, 0), {{"id", "grib"}}, 0), Error);
}

// Straight into an output buffer (a message that is a whole output chunk): the same bits as
// decode, and false (nothing promised) for a place of another size, so the caller falls back.
TEST(GribCodec, DecodesIntoPlaceAsDecodeDoes) {
  std::vector<double> values;
  const Bytes msg = sample_message(values);
  const Codec* c = find_codec("grib");
  ASSERT_NE(c->decode_into, nullptr);
  const Bytes want = c->decode(msg, {{"id", "grib"}}, values.size() * sizeof(float));
  std::vector<unsigned char> out(want.size() + 8, 0xAB);
  ASSERT_TRUE(c->decode_into(msg, {{"id", "grib"}}, out.data() + 4, want.size()));
  EXPECT_EQ(std::memcmp(out.data() + 4, want.data(), want.size()), 0);
  EXPECT_EQ(out[3], 0xAB);  // nothing written outside its place
  EXPECT_EQ(out[want.size() + 4], 0xAB);
  EXPECT_FALSE(c->decode_into(msg, {{"id", "grib"}}, out.data(), want.size() - 4));
  EXPECT_FALSE(c->decode_into(msg, {{"id", "grib"}}, out.data(), want.size() - 1));
  Bytes cut(msg.begin(), msg.begin() + static_cast<std::ptrdiff_t>(msg.size() / 2));
  EXPECT_THROW(c->decode_into(cut, {{"id", "grib"}}, out.data(), want.size()), Error);
}

// A 179-byte message declaring 30000 x 30000 points: ecCodes would allocate its values whole
// (7 GB of doubles, and abort when malloc fails); refused from the keys first, naming the key.
TEST(GribCodec, RefusesGridsOverThePointsBudget) {
  codes_handle* h = codes_grib_handle_new_from_samples(nullptr, "GRIB2");
  ASSERT_NE(h, nullptr);
  for (const char* k : {"Ni", "Nj"}) codes_set_long(h, k, 30000);
  for (const char* k : {"numberOfDataPoints", "numberOfValues"}) codes_set_long(h, k, 900000000);
  const void* msg = nullptr;
  size_t size = 0;
  codes_get_message(h, &msg, &size);
  const Bytes big(static_cast<const uint8_t*>(msg), static_cast<const uint8_t*>(msg) + size);
  codes_handle_delete(h);
  try {
    find_codec("grib")->decode(big, {{"id", "grib"}}, 0);
    ADD_FAILURE() << "decoded a 900M-point grid";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Source);
    EXPECT_NE(std::string(e.what()).find("key numberOf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zp
