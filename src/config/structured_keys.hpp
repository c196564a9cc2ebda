// Readers of the config keys with rules of their own (maps, lists, keys that depend on keys read
// before them): the `Structured` rows of the key table (config_keys.cpp), each reading its key
// from the whole document into the Config, errors naming the key (or its entry: "chunks.time").
#pragma once

#include <string>

#include "config/config.hpp"
#include "config/key_values.hpp"

namespace zp {

void read_data_uri(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_storage_options(const KeyDocument& doc, Config& c, const std::string& base_dir);
// Also scopes the secrets of both options to the data_uri (read before).
void read_remote_options(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_remote_protocol(const KeyDocument& doc, Config& c, const std::string& base_dir);
// GRIB (engine grib, cfgrib or auto): cfgrib's filter_by_keys, a map of keys to a string or number.
void read_filter_by_keys(const KeyDocument& doc, Config& c, const std::string& base_dir);
// cfgrib's indexpath: accepted, not used (our manifest takes the place of its index file).
void read_indexpath(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_preprocessors(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_variables(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_chunks(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_add_attrs(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_zarr_format(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_shards(const KeyDocument& doc, Config& c,
                 const std::string& base_dir);  // after zarr_format
void read_compressor(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_log_level(const KeyDocument& doc, Config& c, const std::string& base_dir);
void read_slurm(const KeyDocument& doc, Config& c, const std::string& base_dir);
// cache_store or cache_dir (with cache_label, read before): the store's path.
void read_cache_store(const KeyDocument& doc, Config& c, const std::string& base_dir);
// The rows of cache_dir and cache_storage_options: read_cache_store reads them.
void read_with_cache_store(const KeyDocument& doc, Config& c, const std::string& base_dir);

}  // namespace zp
