// Every config error message, word for word, for the keys of the key table (config_keys.hpp):
// the table drives parsing, and the messages are what users and tests read.
#include <gtest/gtest.h>

#include <iostream>

#include "config/config.hpp"
#include "core/error.hpp"

namespace zp {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "/b");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

struct Case {
  const char* yaml;
  const char* message;
};

const Case kCases[] = {
    {"data_uri: x.nc\ncache_store: o.zarr\ncolour: red\n",
     "config key 'colour': unknown key (see the README for the keys)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nengine: h5netcdf\n",
     "config key 'engine': 'h5netcdf' is not one of: auto, netcdf, kerchunk, zarr, grib, cfgrib"},
    {"data_uri: x.nc\ncache_store: o.zarr\nengine: 5\n",
     "config key 'engine': '5' is not one of: auto, netcdf, kerchunk, zarr, grib, cfgrib"},
    {"data_uri: x.nc\ncache_store: o.zarr\nstorage_options: 5\n",
     "config key 'storage_options': must be a map of options"},
    {"data_uri: x.nc\ncache_store: o.zarr\nremote_options: [1]\n",
     "config key 'remote_options': must be a map of options"},
    {"data_uri: x.nc\ncache_store: o.zarr\nremote_protocol: ftp\n",
     "config key 'remote_protocol': 'ftp' is not supported (file, http, https, s3)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nremote_protocol: \"s3://\"\n", "no error"},
    {"data_uri: x.nc\ncache_store: o.zarr\nallow_local_references: 1\n",
     "config key 'allow_local_references': expected true or false, got 1"},
    {"data_uri: x.nc\ncache_store: o.zarr\nconcat_dim: [a]\n",
     "config key 'concat_dim': expected a string, got [\"a\"]"},
    {"data_uri: x.nc\ncache_store: o.zarr\ngroup: {a: 1}\n",
     "config key 'group': expected a string, got {\"a\":1}"},
    {"data_uri: x.nc\ncache_store: o.zarr\npreprocessors: {type: sel}\n",
     "config key 'preprocessors': expected a list of {type: ...} entries"},
    {"data_uri: x.nc\ncache_store: o.zarr\npreprocessors: [{time: [1, 2]}]\n",
     "config key 'preprocessors[0]': expected an object with a 'type' (sel, subset, isel, "
     "reverse_axis, rename)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nvariables: 5\n",
     "config key 'variables': expected a map {name: [transforms]} or a list of names"},
    {"data_uri: x.nc\ncache_store: o.zarr\nvariables: [1]\n",
     "config key 'variables': expected variable names, got 1"},
    {"data_uri: x.nc\ncache_store: o.zarr\nvariables: {t2m: 5}\n",
     "config key 'variables.t2m': expected a list of transforms, got 5"},
    {"data_uri: x.nc\ncache_store: o.zarr\nvariables: {t2m: [5]}\n",
     "config key 'variables.t2m': each transform needs a 'type' (rename, attrs)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nchunks: 5\n",
     "config key 'chunks': expected 'auto' or a map {dim: size}"},
    {"data_uri: x.nc\ncache_store: o.zarr\nchunks: {time: 0}\n",
     "config key 'chunks.time': expected a positive integer, -1 (whole) or 'auto', got 0"},
    {"data_uri: x.nc\ncache_store: o.zarr\nadd_attrs: [1]\n",
     "config key 'add_attrs': expected a map of attributes"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncache_label: [x]\n",
     "config key 'cache_label': expected a string, got [\"x\"]"},
    {"data_uri: x.nc\ncache_store: o.zarr\nzarr_format: 1\n", "config key 'zarr_format': 2 or 3"},
    {"data_uri: x.nc\ncache_store: o.zarr\nzarr_format: 4\n",
     "config key 'zarr_format': expected an integer from 1 to 3, got 4"},
    {"data_uri: x.nc\ncache_store: o.zarr\nzarr_format: \"3\"\n",
     "config key 'zarr_format': expected an integer from 1 to 3, got \"3\""},
    {"data_uri: x.nc\ncache_store: o.zarr\nshards: {time: 2}\n",
     "config key 'shards': sharding is a Zarr v3 feature: set zarr_format: 3"},
    {"data_uri: x.nc\ncache_store: o.zarr\nshards: 5\n",
     "config key 'shards': expected a map {dim: size}"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncompressor: 5\n",
     "config key 'compressor': expected {id: blosc|zlib|gzip|zstd|lz4, ...} or none"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncompressor: {id: brotli}\n",
     "config key 'compressor.id': unsupported compressor 'brotli' (blosc, zlib, gzip, zstd, lz4, "
     "none)"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncompressor: {id: blosc, cname: snappy}\n",
     "config key 'compressor.cname': unsupported blosc cname 'snappy' (one of: lz4, lz4hc, "
     "blosclz, zstd, zlib)"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncompressor: {id: zstd, level: 99}\n",
     "config key 'compressor': zstd level level: expected an integer >= -131072, got 99"},
    {"data_uri: x.nc\ncache_store: o.zarr\nencoding: raw\n",
     "config key 'encoding': 'raw' is not one of: source, decoded"},
    {"data_uri: x.nc\ncache_store: o.zarr\ndeploy_mode: cloud\n",
     "config key 'deploy_mode': 'cloud' is not one of: series, local, slurm, mpi, "
     "dask_distributed"},
    {"data_uri: x.nc\ncache_store: o.zarr\nnum_jobs: -1\n",
     "config key 'num_jobs': expected an integer from 1 to 100000000, got -1"},
    {"data_uri: x.nc\ncache_store: o.zarr\nnum_jobs: auto\n", "no error"},
    {"data_uri: x.nc\ncache_store: o.zarr\nnum_jobs: 1.5\n",
     "config key 'num_jobs': expected an integer from 1 to 100000000, got 1.5"},
    {"data_uri: x.nc\ncache_store: o.zarr\nsimultaneous_worker_limit: auto\n",
     "config key 'simultaneous_worker_limit': expected an integer from 1 to 100000, got \"auto\""},
    {"data_uri: x.nc\ncache_store: o.zarr\nsimultaneous_worker_limit: 0\n",
     "config key 'simultaneous_worker_limit': expected an integer from 1 to 100000, got 0"},
    {"data_uri: x.nc\ncache_store: o.zarr\nsimultaneous_worker_limit: 100001\n",
     "config key 'simultaneous_worker_limit': expected an integer from 1 to 100000, got 100001"},
    {"data_uri: x.nc\ncache_store: o.zarr\nmemory_limit: 2 parsecs\n",
     "config key 'memory_limit': unknown memory unit 'parsecs' in '2 parsecs' (use B, kB, MB, GB, "
     "TB, KiB, MiB, GiB, TiB, or SLURM's K, M, G)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nmemory_limit: \"20000000000GB\"\n",
     "config key 'memory_limit': '20000000000GB' is out of range (1 B to 1 PiB)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nworker_timeout: \"99999999999999999999:00\"\n",
     "config key 'worker_timeout': '99999999999999999999:00' is out of range (1 second to 366 "
     "days)"},
    {"data_uri: \"x.nc\\0/y\"\ncache_store: o.zarr\n",
     "config key 'data_uri': contains a NUL character; text and paths cannot hold one"},
    {"{\"data_uri\": \"x.nc\", \"cache_store\": \"o.zarr\", \"preprocessors\": [{\"type\": "
     "\"sel\", "
     "\"time\": [\"a\\u0000\", \"b\"]}]}\n",
     "config key 'preprocessors[0].time[0]': contains a NUL character; text and paths cannot hold "
     "one"},
    {"data_uri: x.nc\ncache_store: o.zarr\nworker_timeout: soon\n",
     "config key 'worker_timeout': 'soon' is not a duration (MM, MM:SS, HH:MM:SS, D-HH:MM:SS)"},
    {"data_uri: x.nc\ncache_store: o.zarr\noverwrite: maybe\n",
     "config key 'overwrite': expected true or false, got \"maybe\""},
    {"data_uri: x.nc\ncache_store: o.zarr\nresume: 1\n",
     "config key 'resume': expected true or false, got 1"},
    {"data_uri: x.nc\ncache_store: o.zarr\non_source_change: ignore\n",
     "config key 'on_source_change': 'ignore' is not one of: append, rebuild, error"},
    {"data_uri: x.nc\ncache_store: o.zarr\nrecommend_changes: null\n", "no error"},
    {"data_uri: x.nc\ncache_store: o.zarr\nawait_completion: \"true\"\n",
     "config key 'await_completion': expected true or false, got \"true\""},
    {"data_uri: x.nc\ncache_store: o.zarr\ngenerate_stats: 0\n",
     "config key 'generate_stats': expected true or false, got 0"},
    {"data_uri: x.nc\ncache_store: o.zarr\nlog_level: 3\n",
     "config key 'log_level': expected 0, 1 or 2, got 3"},
    {"data_uri: x.nc\ncache_store: o.zarr\nlog_level: \"1\"\n",
     "config key 'log_level': expected 0, 1 or 2, got \"1\""},
    {"data_uri: x.nc\ncache_store: o.zarr\nthreads_per_worker: 0\n",
     "config key 'threads_per_worker': expected an integer from 1 to 4096, got 0"},
    {"data_uri: x.nc\ncache_store: o.zarr\nthreads_per_worker: auto\n", "no error"},
    {"data_uri: x.nc\ncache_store: o.zarr\nthreads_per_worker: 5000\n",
     "config key 'threads_per_worker': expected an integer from 1 to 4096, got 5000"},
    {"data_uri: x.nc\ncache_store: o.zarr\nslurm: 5\n",
     "config key 'slurm': expected {partition, account, qos, extra: [...], scratch}"},
    {"data_uri: x.nc\ncache_store: o.zarr\nslurm: {partition: [a]}\n",
     "config key 'slurm.partition': expected a string, got [\"a\"]"},
    {"data_uri: x.nc\ncache_store: o.zarr\nslurm: {colour: red}\n",
     "config key 'slurm.colour': unknown key (partition, account, qos, extra, scratch)"},
    {"data_uri: x.nc\ncache_store: o.zarr\nslurm: {extra: [\"a\\x01\"]}\n",
     "config key 'slurm.extra': control characters are not allowed"},
    {"data_uri: x.nc\ncache_store: o.zarr\nslurm: {extra: 5}\n",
     "config key 'slurm.extra': unknown key (partition, account, qos, extra, scratch)"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncache_dir: d\n",
     "config key 'cache_store': give cache_store or cache_dir, not both"},
    {"data_uri: x.nc\ncache_dir: \"gs://b/x\"\n",
     "config key 'cache_dir': the cache is written to a file system path or to S3 "
     "(s3://bucket/prefix); other URLs are sources only"},
    {"data_uri: x.nc\ncache_store: \"http://x/y.zarr\"\n",
     "config key 'cache_store': the cache is written to a file system path or to S3 "
     "(s3://bucket/prefix); other URLs are sources only"},
    {"data_uri: x.nc\ncache_store: o.zarr\nengine: h5netcdf\nzarr_format: 9\n",
     "config key 'engine': 'h5netcdf' is not one of: auto, netcdf, kerchunk, zarr, grib, cfgrib"},
    {"data_uri: x.nc\ncache_store: o.zarr\noverwrite: maybe\nengine: h5netcdf\n",
     "config key 'engine': 'h5netcdf' is not one of: auto, netcdf, kerchunk, zarr, grib, cfgrib"},
    {"cache_store: o.zarr\n",
     "config key 'data_uri': required: a file glob, kerchunk .json or .zarr store"},
    {"data_uri: x.nc\n",
     "config key 'cache_store': required: cache_store (a .zarr path) or cache_dir"},
    {"data_uri: x.nc\ncache_store: o.zarr\ncache_dir: c\n",
     "config key 'cache_store': give cache_store or cache_dir, not both"},
};

// Keys left out take the defaults of Config; "auto" counts keep theirs.
TEST(ConfigMessages, DefaultsAndAuto) {
  const Config c = parse_config(
      "data_uri: x.nc\ncache_dir: /c\nnum_jobs: auto\nthreads_per_worker: auto\n"
      "remote_protocol: \"s3://\"\nrecommend_changes: null\n",
      "/b");
  const Config d;
  EXPECT_EQ(c.cache_store, "/c/x.zarr");
  EXPECT_EQ(c.access.remote_protocol, "s3");
  EXPECT_EQ(c.num_jobs, d.num_jobs);
  EXPECT_EQ(c.threads_per_worker, d.threads_per_worker);
  EXPECT_EQ(c.recommend_changes, d.recommend_changes);
  EXPECT_EQ(c.engine, d.engine);
  EXPECT_EQ(c.deploy_mode, d.deploy_mode);
  EXPECT_EQ(c.simultaneous_worker_limit, d.simultaneous_worker_limit);
  EXPECT_EQ(c.memory_limit, d.memory_limit);
  EXPECT_EQ(c.worker_timeout, d.worker_timeout);
  EXPECT_EQ(c.overwrite, d.overwrite);
  EXPECT_EQ(c.on_source_change, d.on_source_change);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.zarr_format, d.zarr_format);
  EXPECT_FALSE(c.access.allow_local_references);
}

TEST(ConfigMessages, WordForWord) {
  for (const auto& c : kCases) {
    const std::string got = error_of(c.yaml);
    EXPECT_EQ(got, c.message) << c.yaml;
  }
}

}  // namespace
}  // namespace zp
