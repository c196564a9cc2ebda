// The paramId memo of the GRIB scan: messages that differ only in their reference date share a
// header signature; any other header difference (parameter, step, level) gives another one; bytes
// that do not parse give none; and the memo's values equal what ecCodes computes for each message.
#include "source/grib/grib_concept_memo.hpp"

#include <eccodes.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zp {
namespace {

struct Message {
  codes_handle* h = nullptr;
  std::string bytes;
  explicit Message(const char* sample, const std::vector<std::pair<std::string, long>>& keys,
                   const char* short_name = nullptr) {
    h = codes_grib_handle_new_from_samples(nullptr, sample);
    EXPECT_NE(h, nullptr);
    if (short_name) {
      size_t len = std::char_traits<char>::length(short_name);
      codes_set_string(h, "shortName", short_name, &len);
    }
    for (const auto& [k, v] : keys) EXPECT_EQ(codes_set_long(h, k.c_str(), v), 0) << k;
    const void* m = nullptr;
    size_t size = 0;
    codes_get_message(h, &m, &size);
    bytes.assign(static_cast<const char*>(m), size);
  }
  ~Message() { codes_handle_delete(h); }
  std::string signature() const {
    return grib_header_signature(reinterpret_cast<const unsigned char*>(bytes.data()),
                                 bytes.size());
  }
};

TEST(GribConceptMemo, SignatureIgnoresOnlyTheReferenceDate) {
  for (const char* sample : {"regular_ll_sfc_grib2", "regular_ll_sfc_grib1"}) {
    const Message a(sample, {{"dataDate", 20240101}, {"dataTime", 0}}, "2t");
    const Message b(sample, {{"dataDate", 19990731}, {"dataTime", 1800}}, "2t");
    const Message other_param(sample, {{"dataDate", 20240101}, {"dataTime", 0}}, "2d");
    const Message other_step(sample, {{"dataDate", 20240101}, {"endStep", 6}}, "2t");
    ASSERT_FALSE(a.signature().empty()) << sample;
    EXPECT_EQ(a.signature(), b.signature()) << sample;
    EXPECT_NE(a.signature(), other_param.signature()) << sample;
    EXPECT_NE(a.signature(), other_step.signature()) << sample;
  }
}

TEST(GribConceptMemo, NoSignatureForBytesThatDoNotParse) {
  const Message a("regular_ll_sfc_grib2", {});
  const auto* p = reinterpret_cast<const unsigned char*>(a.bytes.data());
  EXPECT_EQ(grib_header_signature(p, 20), "");  // cut inside section 1
  std::string bad = a.bytes;
  bad[16 + 4] = 9;  // section 1 numbered 9
  EXPECT_EQ(grib_header_signature(reinterpret_cast<const unsigned char*>(bad.data()), bad.size()),
            "");
  bad = a.bytes;
  bad[16] = '\xff';  // section 1 longer than the message
  EXPECT_EQ(grib_header_signature(reinterpret_cast<const unsigned char*>(bad.data()), bad.size()),
            "");
  EXPECT_EQ(grib_header_signature(nullptr, 0), "");
}

TEST(GribConceptMemo, ValuesEqualEcCodesAndAreComputedOncePerHeader) {
  GribConceptMemo memo;
  int computed = 0;
  for (int day = 1; day <= 3; ++day)
    for (const char* p : {"2t", "2d", "msl"}) {
      const Message m("regular_ll_sfc_grib2", {{"dataDate", 20240100 + day}}, p);
      long direct = 0;
      ASSERT_EQ(codes_get_long(m.h, "paramId", &direct), 0);
      const auto got = memo.get(m.h, [&] {
        ++computed;
        long v = 0;
        codes_get_long(m.h, "paramId", &v);
        return nlohmann::json(v);
      });
      EXPECT_EQ(got, nlohmann::json(direct)) << p << " day " << day;
    }
  EXPECT_EQ(computed, 3);
}

}  // namespace
}  // namespace zp
