#include "config/config_keys.hpp"

#include <type_traits>

#include "config/structured_keys.hpp"
#include "core/error.hpp"
#include "core/units.hpp"

namespace zp {

namespace {

template <auto M>
void text(Config& c, std::string v) {
  c.*M = std::move(v);
}
template <auto M>
void flag(Config& c, bool v) {
  c.*M = v;
}
template <auto M>
void number(Config& c, int64_t v) {
  c.*M = static_cast<std::remove_cvref_t<decltype(c.*M)>>(v);
}
void allow_local(Config& c, bool v) {
  c.access.allow_local(v);
}

using K = KeyType;

// The order is parse_config's: data_uri before what is scoped to it, zarr_format before shards,
// cache_label before cache_store.
// A row a key (clang-format would put a field a line).
// clang-format off
const ConfigKey kKeys[] = {
    {"data_uri", K::Structured, "required", "file glob, kerchunk .json, Zarr folder, or URL",
     &read_data_uri},
    {"engine", K::Choice, "`auto`", "how data_uri is read",
     &text<&Config::engine>, {"auto", "netcdf", "kerchunk", "zarr", "grib", "cfgrib"}},
    {"storage_options", K::Structured, "none", "how to reach a remote data_uri (fsspec's keys)",
     &read_storage_options},
    {"remote_options", K::Structured, "none", "options of a reference set's chunk URLs",
     &read_remote_options},
    {"remote_protocol", K::Structured, "none", "protocol of a reference set's chunk URLs",
     &read_remote_protocol},
    {"allow_local_references", K::Flag, "`false`",
     "a source read from a URL may name local files and local addresses", &allow_local},
    {"concat_dim", K::Text, "the unlimited dimension", "dimension several files are joined along",
     &text<&Config::concat_dim>},
    {"group", K::Text, "the root", "a NetCDF-4 group or Zarr subgroup to read",
     &text<&Config::group>},
    {"filter_by_keys", K::Structured, "none", "GRIB: cfgrib's {key: value} selecting messages",
     &read_filter_by_keys},
    {"indexpath", K::Structured, "none", "GRIB: cfgrib's index file; ignored (ours is kept)",
     &read_indexpath},
    {"preprocessors", K::Structured, "none", "a list of {type: ...}, applied in order",
     &read_preprocessors},
    {"variables", K::Structured, "every data variable", "{name: [transforms]} or a list of names",
     &read_variables},
    {"chunks", K::Structured, "`auto`", "output chunks {dim: size} (-1: whole, auto: source)",
     &read_chunks},
    {"add_attrs", K::Structured, "none", "added to the store's global attributes",
     &read_add_attrs},
    {"cache_label", K::Text, "none", "appended to the store name made in cache_dir",
     &text<&Config::cache_label>},
    {"zarr_format", K::Structured, "`2`", "2 or 3",
     &read_zarr_format},
    {"shards", K::Structured, "none", "v3 only: {dim: size}, whole multiples of chunks",
     &read_shards},
    {"compressor", K::Structured, "zarr-python's default", "blosc, zlib, gzip, zstd, lz4 or none",
     &read_compressor},
    {"encoding", K::Choice, "`source`", "keep packed values (source) or write decoded floats",
     &text<&Config::encoding>, {"source", "decoded"}},
    {"deploy_mode", K::Choice, "`local`", "where the workers run",
     &text<&Config::deploy_mode>, {"series", "local", "slurm", "mpi", "dask_distributed"}},
    {"num_jobs", K::CountOrAuto, "`auto`", "jobs of the plan (auto: as the memory limit allows)",
     &number<&Config::num_jobs>, {}, 100'000'000},
    {"simultaneous_worker_limit", K::Count, "`4`", "worker processes at once (local)",
     &number<&Config::simultaneous_worker_limit>, {}, 100'000},
    {"memory_limit", K::Size, "`2GB`", "per worker",
     &number<&Config::memory_limit>},
    {"worker_timeout", K::Duration, "`30:00`", "a worker silent this long is lost",
     &number<&Config::worker_timeout>},
    {"overwrite", K::Flag, "`true`", "replace a store of ours made from another config",
     &flag<&Config::overwrite>},
    {"resume", K::Flag, "`false`", "finish an interrupted cache of the same config",
     &flag<&Config::resume>},
    {"on_source_change", K::Choice, "`append`",
     "a complete store whose sources changed: append files after its end, else rebuild",
     &text<&Config::on_source_change>, {"append", "rebuild", "error"}},
    {"assume_unchanged", K::Flag, "`false`",
     "a remote object without ETag or Last-Modified is unchanged when its size is",
     &flag<&Config::assume_unchanged>},
    {"recommend_changes", K::Flag, "`true`", "stop on recommendations that save something",
     &flag<&Config::recommend_changes>},
    {"await_completion", K::Flag, "`true`", "slurm: wait for the array and finish the store",
     &flag<&Config::await_completion>},
    {"generate_stats", K::Flag, "`false`", "write STORE/.zarr-parallel/stats.json",
     &flag<&Config::generate_stats>},
    {"log_level", K::Structured, "`1`", "0 quiet, 1 info, 2 debug",
     &read_log_level},
    {"threads_per_worker", K::CountOrAuto, "`auto`", "decode/encode threads in each worker",
     &number<&Config::threads_per_worker>, {}, 4096},
    {"slurm", K::Structured, "none", "{partition, account, qos, extra: [...], scratch} for sbatch",
     &read_slurm},
    {"cache_store", K::Structured, "required", "the store path (or cache_dir)",
     &read_cache_store},
    {"cache_dir", K::Structured, "required", "a folder where the store is named from the source",
     &read_with_cache_store},
    {"cache_storage_options", K::Structured, "`storage_options`",
     "how to reach an s3:// cache_store (fsspec's keys)", &read_with_cache_store},
};
// clang-format on

}  // namespace

std::span<const ConfigKey> config_keys() {
  return kKeys;
}

namespace {

// A key of a plain type: read, checked against its type, set. Left out (or null): untouched.
void read_plain(const ConfigKey& k, const KeyDocument& doc, Config& c) {
  if (!given(doc, k.name)) return;
  switch (k.type) {
    case K::Text:
      return std::get<TextSetter>(k.set)(c, get_string(doc, k.name, ""));
    case K::Choice:
      return std::get<TextSetter>(k.set)(c, one_of(doc, k.name, "", k.choices));
    case K::Flag:
      return std::get<FlagSetter>(k.set)(c, get_bool(doc, k.name, false));
    case K::CountOrAuto:
      if (doc[k.name] == "auto") return;
      [[fallthrough]];
    case K::Count:
      return std::get<NumberSetter>(k.set)(c, get_positive_int(doc, k.name, 0, k.max));
    case K::Size:
      return std::get<NumberSetter>(k.set)(c, parse_memory(get_string(doc, k.name, ""), k.name));
    case K::Duration:
      return std::get<NumberSetter>(k.set)(c, parse_duration(get_string(doc, k.name, ""), k.name));
    case K::Structured:
      return;
  }
}

std::string joined(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& x : list) out += (out.empty() ? "" : ", ") + x;
  return out;
}

}  // namespace

std::string key_type_text(const ConfigKey& k) {
  switch (k.type) {
    case K::Text:
      return "text";
    case K::Flag:
      return "true or false";
    case K::Count:
      return "integer 1 to " + std::to_string(k.max);
    case K::CountOrAuto:
      return "integer 1 to " + std::to_string(k.max) + ", or auto";
    case K::Choice:
      return "one of: " + joined(k.choices);
    case K::Size:
      return "size (2GB, 1500MiB)";
    case K::Duration:
      return "duration (MM:SS, HH:MM:SS, D-HH:MM:SS)";
    case K::Structured:
      break;
  }
  return "see meaning";
}

std::string config_keys_markdown() {
  std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& k : kKeys)
    out += std::string("| `") + k.name + "` | " + key_type_text(k) + " | " + k.default_text +
           " | " + k.doc + " |\n";
  return out;
}

Config read_config_keys(const KeyDocument& doc, const std::string& base_dir) {
  for (const auto& [key, value] : doc.items()) {
    bool known = false;
    for (const auto& k : kKeys) known = known || key == k.name;
    if (!known) throw Error::config(key, "unknown key (see the README for the keys)");
  }
  Config c;
  for (const auto& k : kKeys) {
    if (k.type == K::Structured)
      std::get<KeyReader>(k.set)(doc, c, base_dir);
    else
      read_plain(k, doc, c);
  }
  return c;
}

}  // namespace zp
