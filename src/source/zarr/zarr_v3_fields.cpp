#include "source/zarr/zarr_v3_fields.hpp"

#include <array>
#include <span>
#include <string_view>

#include "core/error.hpp"

namespace zp {

namespace {

// The array metadata fields the v3 core spec defines.
constexpr std::array<std::string_view, 11> kArrayFields = {
    "zarr_format",        "node_type",  "shape",  "data_type",  "chunk_grid",
    "chunk_key_encoding", "fill_value", "codecs", "attributes", "storage_transformers",
    "dimension_names"};
// A group's: the core spec's, and zarr-python's consolidated metadata, which the Zarr-over-HTTP
// listing reads (zarr-python 3 writes it as null when the group is not consolidated).
constexpr std::array<std::string_view, 5> kGroupFields = {
    "zarr_format", "node_type", "attributes", "storage_transformers", "consolidated_metadata"};

bool is_one_of(const std::string& key, std::span<const std::string_view> fields) {
  for (const auto f : fields)
    if (key == f) return true;
  return false;
}

void refuse_fields(const nlohmann::json& meta, const std::string& where,
                   std::span<const std::string_view> known, const char* node) {
  if (!meta.is_object()) return;
  if (meta.contains("storage_transformers")) {
    const auto& st = meta["storage_transformers"];
    if (!st.is_array()) throw Error::source(where, "storage_transformers must be a list");
    if (!st.empty()) {
      const auto& t = st[0];
      const std::string name = t.is_object() && t.contains("name") && t["name"].is_string()
                                   ? t["name"].dump().substr(0, 80)
                                   : t.dump().substr(0, 80);
      throw Error::source(where, "storage transformer " + name +
                                     " is not supported (Zarr v3 says the " + node +
                                     " must not be read without it)");
    }
  }
  for (const auto& [key, value] : meta.items()) {
    if (is_one_of(key, known)) continue;
    const bool optional =
        value.is_object() && value.contains("must_understand") && value["must_understand"] == false;
    if (!optional)
      throw Error::source(where,
                          "field " +
                              nlohmann::json(key.substr(0, 80))
                                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                              " is not understood (Zarr v3: a field without "
                              "\"must_understand\": false must be, or the " +
                              node + " refused)");
  }
}

}  // namespace

void refuse_v3_fields_not_understood(const nlohmann::json& meta, const std::string& where) {
  refuse_fields(meta, where, kArrayFields, "array");
}

void refuse_v3_group_fields_not_understood(const nlohmann::json& meta, const std::string& where) {
  refuse_fields(meta, where, kGroupFields, "group");
}

}  // namespace zp
