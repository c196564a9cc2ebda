// A variable's description (scan cache, describe-url children) and a plan's source share one
// reader of their common fields (source/dataset_json.hpp): both check their integers, and their
// errors name the field the same way.
#include "source/dataset_json.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace zp {
namespace {

// Two chunks of (31, 4) along 60 steps, both stored, as a scan writes them into the cache.
Variable small_variable() {
  const auto description = nlohmann::ordered_json::parse(R"({
    "name": "t2m", "dims": ["time", "x"], "shape": [60, 4], "dtype": "<f4", "attrs": {},
    "fill_value": null, "missing_chunk_value": null, "codecs": [], "chunk_shape": [31, 4],
    "edges": [[0, 31, 60], [0, 4]], "origin": "a.nc",
    "chunks": {"range": {"index": [0, 1], "file": [0, 0], "offset": [0, 100],
                         "length": [16, 16]}, "inline": []}})");
  return variable_from(description, "test");
}

std::string error_of(const nlohmann::ordered_json& j) {
  try {
    variable_from(j, "cache.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Source);
    return e.what();
  }
  return "no error";
}

TEST(DatasetJson, VariableRoundTrips) {
  const Variable v = small_variable();
  const Variable back = variable_from(variable_json(v), "cache.json");
  EXPECT_EQ(back.name, v.name);
  EXPECT_EQ(back.shape, v.shape);
  EXPECT_EQ(back.grid.edges, v.grid.edges);
  EXPECT_EQ(back.origin, v.origin);
  EXPECT_EQ(back.chunks[1].offset, 100u);
}

// A description's integers are checked as a plan's are: a negative extent or a float was taken
// as it came (1.5 truncated to 1) before the two readers became one.
TEST(DatasetJson, DescriptionIntegersAreChecked) {
  auto forged = variable_json(small_variable());
  forged["shape"] = {60, -4};
  EXPECT_NE(error_of(forged).find("variable.shape: expected an integer >= 0, got -4"),
            std::string::npos)
      << error_of(forged);
  forged = variable_json(small_variable());
  forged["edges"][0] = {0, 31.5, 60};
  EXPECT_NE(error_of(forged).find("variable.edges[0]: expected an integer, got 31.5"),
            std::string::npos)
      << error_of(forged);
}

TEST(DatasetJson, PlanSourceFieldsNameTheirField) {
  const auto j = nlohmann::json::parse(variable_json(small_variable()).dump());
  Variable v;
  variable_fields_from(j, v, "plan.json", {ErrorKind::Config, "arrays[0].source", 1});
  EXPECT_EQ(v.grid.chunk_shape, (std::vector<int64_t>{31, 4}));
  auto forged = j;
  forged["chunk_shape"] = {0, 4};
  try {
    Variable w;
    variable_fields_from(forged, w, "plan.json", {ErrorKind::Config, "arrays[0].source", 1});
    ADD_FAILURE() << "a chunk extent of 0 was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_STREQ(e.what(),
                 "config key 'plan.json': arrays[0].source.chunk_shape: expected an integer >= 1, "
                 "got 0");
  }
}

}  // namespace
}  // namespace zp
