// Config: the YAML file of a cache run (keys are the original package's keyword arguments) as a
// validated struct. Unknown keys, wrong types and bad values are Error(Config) naming the key.
// Relative paths (data_uri, cache_store, cache_dir) resolve against the config file's folder.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/storage_options.hpp"

namespace zp {

struct VariableSpec {
  std::string name;
  std::vector<nlohmann::json> transforms;  // per-variable transforms, each {type: ...}
};

struct SlurmOptions {
  std::string partition, account, qos;
  std::vector<std::string> extra;  // further sbatch options, e.g. "--constraint=intel"
  // A store on S3: the folder (on a file system the nodes share) for the job scripts, task lists
  // and logs; "" a zarr-parallel-slurm folder in the current directory.
  std::string scratch;
};

struct Config {
  std::string data_uri;
  std::string engine = "auto";
  std::string concat_dim;
  AccessOptions access;  // storage_options, remote_protocol, remote_options
  std::string group;     // NetCDF-4 group / Zarr subgroup path; "" = the root
  // GRIB: cfgrib's filter_by_keys ({key: value}, every key equal); empty: every message.
  nlohmann::json filter_by_keys = nlohmann::json::object();
  std::vector<nlohmann::json> preprocessors;
  std::vector<VariableSpec> variables;  // empty: every data variable
  bool chunks_auto = true;
  std::vector<std::pair<std::string, int64_t>> chunks;  // dim -> size (-1: whole dimension)
  nlohmann::ordered_json add_attrs = nlohmann::ordered_json::object();
  std::string cache_label;
  std::string cache_store;  // resolved: the store path, or an s3://bucket/prefix URL
  // cache_storage_options: how the cache store is reached when it is on S3 (fsspec's spelling, as
  // storage_options); when not given, storage_options serve both.
  StorageOptions cache_options;
  int zarr_format = 2;
  std::vector<std::pair<std::string, int64_t>> shards;  // v3: dim -> shard size (whole chunks)
  nlohmann::json compressor;                            // null: no compression
  std::string encoding = "source";
  std::string deploy_mode = "local";
  int64_t num_jobs = 0;  // 0: auto
  int simultaneous_worker_limit = 4;
  int64_t memory_limit = 2000000000;
  int64_t worker_timeout = 1800;
  bool overwrite = true;
  bool resume = false;
  // A complete store of this config whose source changed (a file new, gone or modified):
  // "append" (files after the end along concat_dim extend it; anything else rebuilds), "rebuild"
  // it beside the old one, or stop with an "error" (exit 4) and leave it as it is.
  // Not in the config hash.
  std::string on_source_change = "append";
  // A remote source object whose server sends neither ETag nor Last-Modified still counts as
  // unchanged when its size is (a cache hit, a continued run). Not in the config hash.
  bool assume_unchanged = false;
  bool recommend_changes = true;
  bool await_completion = true;
  bool generate_stats = false;
  int log_level = 1;
  int threads_per_worker = 0;  // 0: the cores divided among the workers
  SlurmOptions slurm;

  // The keys that decide the cache's content, canonical JSON; its SHA-256 is the config hash.
  nlohmann::json content_json() const;
  std::string content_hash() const;
};

// Parses YAML text; `overrides` are "key=value" strings (value in YAML syntax, key may be dotted).
Config parse_config(const std::string& yaml_text, const std::string& base_dir,
                    const std::vector<std::string>& overrides = {});
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// zarr-python's default compressor: Blosc(cname='lz4', clevel=5, shuffle=SHUFFLE, blocksize=0).
nlohmann::json default_compressor();

}  // namespace zp
