// Config parsing: keys, defaults, units, overrides, and errors that name the key.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/units.hpp"

namespace zp {
namespace {

const char* kYaml = R"(
data_uri: "data/era5_*.nc"
preprocessors:
  - {type: sel, time: ["2000-01-02 00:00", "2000-01-09 23:00"], latitude: [60, -30]}
variables: {d2m: [], t2m: [{type: rename, new_name: air_temperature}]}
chunks: {time: 24, latitude: 91, longitude: 180}
add_attrs: {preprocessor_hash: "abc123", b: 1}
cache_dir: cache/
cache_label: _v1
memory_limit: 1500MiB
worker_timeout: "1:30:00"
)";

TEST(Config, ParsesTheSpecExample) {
  const Config c = parse_config(kYaml, "/base");
  EXPECT_EQ(c.data_uri, "/base/data/era5_*.nc");
  EXPECT_EQ(c.cache_store, "/base/cache/era5_v1.zarr");
  EXPECT_EQ(c.memory_limit, 1500ll * 1024 * 1024);
  EXPECT_EQ(c.worker_timeout, 5400);
  ASSERT_EQ(c.variables.size(), 2u);
  EXPECT_EQ(c.variables[1].transforms[0]["new_name"], "air_temperature");
  EXPECT_FALSE(c.chunks_auto);
  EXPECT_EQ(c.chunks[1], (std::pair<std::string, int64_t>{"latitude", 91}));
  EXPECT_EQ(c.compressor, default_compressor());
  EXPECT_EQ(c.deploy_mode, "local");
  EXPECT_EQ(c.add_attrs.begin().key(), "preprocessor_hash");
}

TEST(Config, OverridesAndHash) {
  const Config a = parse_config(kYaml, "/base");
  const Config b = parse_config(kYaml, "/base", {"deploy_mode=series", "num_jobs=7"});
  EXPECT_EQ(b.deploy_mode, "series");
  EXPECT_EQ(b.num_jobs, 7);
  EXPECT_EQ(a.content_hash(), b.content_hash());  // how it runs does not change what it writes
  const Config c = parse_config(kYaml, "/base", {"compressor.clevel=3"});
  EXPECT_EQ(c.compressor["clevel"], 3);
  EXPECT_EQ(c.compressor["cname"], "lz4");
  EXPECT_NE(a.content_hash(), c.content_hash());
  // List entries, in the notation errors use.
  const Config d = parse_config(kYaml, "/base", {"preprocessors[0].latitude=[10, 0]"});
  EXPECT_EQ(d.preprocessors[0]["latitude"], nlohmann::json::parse("[10, 0]"));
  EXPECT_EQ(d.preprocessors[0]["type"], a.preprocessors[0]["type"]);
  EXPECT_THROW(parse_config(kYaml, "/base", {"preprocessors[9].latitude=[1, 2]"}), Error);
  EXPECT_THROW(parse_config(kYaml, "/base", {"preprocessors[x].latitude=[1, 2]"}), Error);
}

TEST(Config, ErrorsNameTheKey) {
  auto error_of = [](const std::string& yaml) {
    try {
      parse_config(yaml, "/b");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string base = "data_uri: x.nc\ncache_store: o.zarr\n";
  EXPECT_NE(error_of(base + "colour: red\n").find("'colour'"), std::string::npos);
  EXPECT_NE(error_of(base + "memory_limit: 2 parsecs\n").find("memory_limit"), std::string::npos);
  EXPECT_NE(error_of(base + "num_jobs: -1\n").find("num_jobs"), std::string::npos);
  EXPECT_NE(error_of(base + "deploy_mode: cloud\n").find("deploy_mode"), std::string::npos);
  EXPECT_NE(error_of(base + "chunks: {time: 0.5}\n").find("chunks.time"), std::string::npos);
  EXPECT_NE(error_of(base + "compressor: {id: brotli}\n").find("compressor.id"), std::string::npos);
  EXPECT_NE(error_of(base + "preprocessors: [{time: [1, 2]}]\n").find("preprocessors[0]"),
            std::string::npos);
  EXPECT_NE(error_of(base + "overwrite: maybe\n").find("overwrite"), std::string::npos);
  EXPECT_NE(error_of("cache_store: o.zarr\n").find("data_uri"), std::string::npos);
  EXPECT_NE(error_of("data_uri: x.nc\n").find("cache_store"), std::string::npos);
  EXPECT_NE(error_of("data_uri: [unclosed\n").find("YAML"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("mapping"), std::string::npos);
}

TEST(Units, MemoryAndDuration) {
  EXPECT_EQ(parse_memory("2GB", "k"), 2000000000);
  EXPECT_EQ(parse_memory("1.5 GiB", "k"), 1610612736);
  EXPECT_EQ(parse_memory("512", "k"), 512);
  // dask's spelling: any case for units of two letters or more
  EXPECT_EQ(parse_memory("2gb", "k"), 2000000000);
  EXPECT_EQ(parse_memory("512 mib", "k"), 536870912);
  EXPECT_EQ(parse_memory("3Kb", "k"), 3000);
  EXPECT_THROW(parse_memory("2g", "k"), Error);  // single letters: SLURM's upper case only
  EXPECT_THROW(parse_memory("-1GB", "k"), Error);
  EXPECT_THROW(parse_memory("GB", "k"), Error);
  EXPECT_EQ(parse_duration("30:00", "k"), 1800);
  EXPECT_EQ(parse_duration("45", "k"), 2700);
  EXPECT_EQ(parse_duration("1-02:00:00", "k"), 93600);
  EXPECT_THROW(parse_duration("soon", "k"), Error);
  EXPECT_THROW(parse_duration("1::2", "k"), Error);
  // Out of range: refused as config errors, never wrapped or escaping as std::out_of_range.
  EXPECT_THROW(parse_memory("20000000000GB", "k"), Error);
  EXPECT_THROW(parse_memory("1e300", "k"), Error);
  EXPECT_THROW(parse_memory("0.5", "k"), Error);
  EXPECT_EQ(parse_memory("1024TiB", "k"), 1125899906842624);
  EXPECT_THROW(parse_memory("1025TiB", "k"), Error);
  EXPECT_THROW(parse_duration("99999999999999999999:00", "k"), Error);
  EXPECT_THROW(parse_duration("99999999999999999999-00", "k"), Error);
  EXPECT_THROW(parse_duration("1x-00", "k"), Error);
  EXPECT_EQ(parse_duration("366-00", "k"), 366 * 86400);
  EXPECT_THROW(parse_duration("366-00:00:01", "k"), Error);
}

}  // namespace
}  // namespace zp

// `era5/*.nc` and `cmip/*.nc` were both stored as cache/_v1.zarr, the second replacing the first.
TEST(Config, AGlobOfOnlyWildcardsIsNamedByItsFolder) {
  auto store_of = [](const std::string& uri) {
    return zp::parse_config("data_uri: \"" + uri + "\"\ncache_dir: cache/\ncache_label: _v1\n",
                            "/base")
        .cache_store;
  };
  EXPECT_EQ(store_of("era5/*.nc"), "/base/cache/era5_v1.zarr");
  EXPECT_EQ(store_of("cmip/*.nc"), "/base/cache/cmip_v1.zarr");
  EXPECT_EQ(store_of("data/era5_*.nc"), "/base/cache/era5_v1.zarr");
  EXPECT_EQ(store_of("data/era5_[0-9]*_d?.nc"), "/base/cache/era5__0-9___d_v1.zarr");  // as before
  EXPECT_EQ(store_of("/*.nc"), "/base/cache/cache_v1.zarr");
}
