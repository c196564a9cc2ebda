// Non-finite floats in JSON. Python's json module — and so zarr-python, xarray's to_zarr and
// kerchunk — writes float attributes NaN, Infinity and -Infinity as bare tokens, which strict JSON
// (nlohmann::json) cannot parse and dumps as null. Inside zarr-parallel such an attribute is a
// double; these functions carry it in and out: bare tokens become marker strings before parsing,
// markers become doubles after, and doubles are written back as bare tokens, as xarray writes them.
// Zarr's own fill_value keeps its spelled form ("NaN").
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace zp {

// Bare NaN/Infinity/-Infinity tokens (outside strings) → marker strings, so the text parses.
std::string nonfinite_tokens_to_markers(const std::string& text);

// Marker strings → doubles, in place, at any depth.
void nonfinite_markers_to_numbers(nlohmann::json& j);
void nonfinite_markers_to_numbers(nlohmann::ordered_json& j);

// Doubles that are not finite → marker strings (for JSON that must round-trip: the plan file).
nlohmann::json nonfinite_numbers_to_markers(const nlohmann::ordered_json& j);

// JSON text as Python's json writes it: non-finite doubles as bare tokens, text beyond ASCII as
// \u escapes.
std::string dump_python_json(const nlohmann::ordered_json& j, int indent = -1);
// The same for JSON text that already holds marker strings.
std::string nonfinite_markers_to_tokens(std::string dumped);

// A fill value as Zarr v2 spells it: non-finite numbers (or their markers) as "NaN", "Infinity",
// "-Infinity"; anything else unchanged.
nlohmann::json zarr_fill_value(const nlohmann::json& v);

}  // namespace zp
