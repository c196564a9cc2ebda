// A Dataset (description and manifest) as JSON and back, exactly: what a per-file scan part holds
// in the manifest cache, and what plan files use for chunk references.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "source/dataset.hpp"

namespace zp {

// A manifest's references, packed (all of them, or those `only` names); and back into
// `chunks` (sized to the grid; references outside it are an error of `kind` naming `where`).
nlohmann::json chunk_refs_json(const std::vector<ChunkRef>& chunks,
                               const std::vector<int64_t>* only = nullptr);
void chunk_refs_from(const nlohmann::json& j, std::vector<ChunkRef>& chunks,
                     const std::string& where, ErrorKind kind = ErrorKind::Source);

// A variable's layout runs (Variable::LayoutRun) and back (appended to v.layout_runs; checked by
// the caller with Variable::layout_fault once the manifest is in).
nlohmann::json layout_runs_json(const std::vector<Variable::LayoutRun>& runs);
void layout_runs_from(const nlohmann::json& j, Variable& v, const std::string& where);

// How the fields a variable's description and a plan's source share are read: errors of
// `kind` naming the field under `field` ("arrays[0].source.shape"); chunk extents from
// `min_chunk_extent` (a plan's are whole chunks, a description's may be 0 for an empty variable).
struct FieldRules {
  ErrorKind kind;
  std::string field;
  int64_t min_chunk_extent;
};
// Those fields: name, dims, shape, dtype, codecs, the chunk grid, missing_chunk_value, origin.
// Integers are checked (shape >= 0, edges whole numbers); the caller reads the rest.
void variable_fields_from(const nlohmann::json& j, Variable& v, const std::string& where,
                          const FieldRules& rules);

// Ordered, attributes as they are (non-finite doubles included): write with dump_python_json.
nlohmann::ordered_json variable_json(const Variable& v);
Variable variable_from(const nlohmann::ordered_json& j, const std::string& where);

// Everything but the access options (remote sources are not cached), as JSON text and back;
// attribute order and non-finite attribute values survive.
nlohmann::ordered_json dataset_json(const Dataset& ds);
std::string dataset_text(const Dataset& ds);
Dataset dataset_from(const nlohmann::ordered_json& j, const std::string& where);
Dataset dataset_from_text(const std::string& text, const std::string& where);

}  // namespace zp
