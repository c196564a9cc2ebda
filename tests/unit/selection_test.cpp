// Selection semantics: what xarray's sel/isel/reverse/rename give, as an index map.
#include "transform/selection.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "test_dataset.hpp"

namespace zp {
namespace {

using nlohmann::json;
using testing::index_coordinates;
using testing::make_dataset;

Coordinates latitude_coords() {  // 90, 87.5, ..., -90 like ERA5 at 2.5 degrees
  Coordinates c;
  CoordinateValues v;
  for (int i = 0; i < 73; ++i) v.values.push_back(90.0 - 2.5 * i);
  c["d0"] = v;
  return c;
}

TEST(Selection, SelOnDescendingCoordinateAcceptsEitherOrder) {
  const Dataset ds = make_dataset({73}, {19});
  for (const json& range : {json::array({60, -30}), json::array({-30, 60})}) {
    const Selection s =
        apply_preprocessors(ds, latitude_coords(), {{{"type", "sel"}, {"d0", range}}});
    EXPECT_EQ(s.dims[0].source_index(0), 12);  // 60 degrees
    EXPECT_EQ(s.dims[0].count, 37);            // 60 .. -30 inclusive
    EXPECT_EQ(s.dims[0].segments[0].step, 1);
  }
}

TEST(Selection, SelBetweenCoordinateValuesIsInclusiveOfWhatLiesInside) {
  const Dataset ds = make_dataset({73}, {19});
  const Selection s =
      apply_preprocessors(ds, latitude_coords(), {{{"type", "subset"}, {"d0", {61, -31}}}});
  EXPECT_EQ(s.dims[0].source_index(0), 12);
  EXPECT_EQ(s.dims[0].count, 37);
}

TEST(Selection, ReverseThenSelComposes) {
  const Dataset ds = make_dataset({10, 6}, {5, 6});
  const auto coords = index_coordinates(ds);
  const Selection s = apply_preprocessors(ds, coords,
                                          {{{"type", "reverse_axis"}, {"dim", "d0"}},
                                           {{"type", "sel"}, {"d0", {2, 6}}},
                                           {{"type", "isel"}, {"d1", {1, -1}}}});
  EXPECT_EQ(s.dims[0].source_index(0), 6);
  EXPECT_EQ(s.dims[0].source_index(4), 2);
  EXPECT_EQ(s.dims[0].count, 5);
  EXPECT_EQ(s.dims[1].source_index(0), 1);
  EXPECT_EQ(s.dims[1].count, 4);
  int64_t lo, hi;
  s.dims[0].source_hull(1, 3, &lo, &hi);
  EXPECT_EQ(lo, 4);
  EXPECT_EQ(hi, 6);
}

TEST(Selection, RenameOfDimensionAndVariable) {
  Dataset ds = make_dataset({4}, {4});
  ds.variables.push_back(testing::make_variable("d0", {"d0"}, {4}, {4}));
  const auto coords = index_coordinates(ds);
  const Selection s =
      apply_preprocessors(ds, coords,
                          {{{"type", "rename"}, {"var_id", "d0"}, {"new_name", "lat"}},
                           {{"type", "rename"}, {"var_id", "x"}, {"new_name", "y"}},
                           {{"type", "isel"}, {"lat", {0, 2}}}});
  EXPECT_EQ(s.dims[0].name, "lat");
  EXPECT_EQ(s.dims[0].count, 2);
  EXPECT_EQ(s.output_name_of_var("x"), "y");
  EXPECT_EQ(s.output_name_of_var("d0"), "lat");
}

TEST(Selection, ErrorsNameTheKey) {
  const Dataset ds = make_dataset({10}, {5});
  const auto coords = index_coordinates(ds);
  auto message = [&](const json& p) {
    try {
      apply_preprocessors(ds, coords, {p});
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"type", "sel"}, {"d0", {20, 30}}}).find("selects nothing"),
            std::string::npos);
  EXPECT_NE(message({{"type", "sel"}, {"zz", {1, 2}}}).find("preprocessors[0].zz"),
            std::string::npos);
  EXPECT_NE(message({{"type", "sel"}, {"d0", 3}}).find("range"), std::string::npos);
  EXPECT_NE(message({{"type", "isel"}, {"d0", {5, 2}}}).find("selects nothing"), std::string::npos);
  EXPECT_NE(message({{"type", "warp"}}).find("unknown preprocessor 'warp'"), std::string::npos);
  EXPECT_NE(message({{"type", "reverse_axis"}}).find("preprocessors[0].dim"), std::string::npos);
}

TEST(Selection, TimeLabelsUseTheCoordinatesCalendar) {
  const Dataset ds = make_dataset({120}, {10});
  Coordinates c;
  CoordinateValues v;
  v.time = parse_time_units("days since 2001-01-01", "noleap", "t");
  for (int i = 0; i < 120; ++i) {
    v.values.push_back(i);
    v.time_us.push_back(value_to_us(i, *v.time));
  }
  c["d0"] = v;
  const Selection s =
      apply_preprocessors(ds, c, {{{"type", "sel"}, {"d0", {"2001-03", "2001-02-01"}}}});
  EXPECT_EQ(s.dims[0].source_index(0), 31);
  EXPECT_EQ(s.dims[0].count, 28 + 31);  // February (noleap) and all of March
}

}  // namespace
}  // namespace zp

namespace zp {
namespace {

TEST(IndexMap, RollSliceAndReverseComposeAsXarray) {
  // xarray: np.roll(range(10), 3) = [7 8 9 0 1 2 3 4 5 6]
  const DimMap m = DimMap::identity("x", 10).rolled(3);
  ASSERT_EQ(m.segments.size(), 2u);
  std::vector<int64_t> got;
  for (int64_t i = 0; i < 10; ++i) got.push_back(m.source_index(i));
  EXPECT_EQ(got, (std::vector<int64_t>{7, 8, 9, 0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(DimMap::identity("x", 10).rolled(-7), m);
  EXPECT_EQ(DimMap::identity("x", 10).rolled(13), m);
  EXPECT_TRUE(DimMap::identity("x", 10).rolled(10).linear());
  // A slice across the seam, then reversed: [9 0 1] -> [1 0 9]
  const DimMap r = m.sliced(2, 5).reversed();
  got.clear();
  for (int64_t i = 0; i < r.count; ++i) got.push_back(r.source_index(i));
  EXPECT_EQ(got, (std::vector<int64_t>{1, 0, 9}));
  int64_t lo, hi;
  r.source_hull(0, 3, &lo, &hi);
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 10);
  // Rolling back undoes a roll; the pieces are merged into one segment.
  EXPECT_TRUE(m.rolled(-3).linear());
  EXPECT_EQ(m.rolled(-3).source_index(4), 4);
}

}  // namespace
}  // namespace zp
