#include "plan/value_steps.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "plan/output_array.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

// astype/scale: the variable is written decoded (even under encoding: source), then the steps run
// on the decoded values; the fill value follows the final dtype.
void finish_value_steps(ArrayPlan& a, const std::vector<ValueStep>& steps, const std::string& key) {
  if (!a.source.dtype.numeric())
    throw Error::config(key,
                        "'" + a.source.name + "' is not numeric: astype and scale do not apply");
  if (!a.conversion.decode) {
    a.conversion = cf_decoding(a.source);
    drop_decoded_encoding(a);
  }
  a.attrs.erase("_FillValue");  // an unfit integer fill kept as an attribute no longer applies
  a.conversion.decoded = a.conversion.out;
  DType t = a.conversion.decoded;
  bool may_be_nan = t.kind == 'f';
  for (const auto& s : steps) {
    const DType r = step_result(t, s);
    if (r.kind != 'f' && t.kind == 'f' && may_be_nan) {
      // NaN has no integer value: it becomes the variable's _FillValue, which must fit.
      const nlohmann::json f = fill_as_viewed(a.source, a.source.fill_value);
      double fill = 0;
      bool fits = f.is_number();
      if (fits) {
        fill = f.get<double>();
        std::vector<unsigned char> probe(static_cast<std::size_t>(r.size));
        store_from_json(probe.data(), 0, r, f);
        fits = load_as_double(probe.data(), 0, r) == fill;
      }
      if (!fits)
        throw Error::config(key, "astype " + r.str() + " of '" + a.source.name +
                                     "' needs a _FillValue that " + r.str() +
                                     " holds, for its missing (NaN) values; the source has " +
                                     (f.is_null() ? std::string("none") : f.dump()));
      a.conversion.int_fill = fill;
      a.fill_value = f;
      may_be_nan = false;
    }
    if (r.kind == 'f' && t.kind != 'f') may_be_nan = false;
    t = r;
  }
  a.conversion.steps = steps;
  a.conversion.out = t;
  if (t.kind == 'f') a.fill_value = "NaN";
}

// Attributes that state the values' range: arithmetic on the values invalidates them.
void drop_range_attrs(Attrs& attrs) {
  for (const char* k :
       {"valid_range", "valid_min", "valid_max", "actual_range", "actual_min", "actual_max"})
    attrs.erase(k);
}

// `scale` (multiply, add, units): x * multiply + add. The values change meaning, so the range
// attributes go, and `units` becomes the given one or goes (K times 1.8 is no longer K).
ValueStep scale_step(const json& t, const std::string& key, Attrs& attrs) {
  ValueStep s;
  bool any = false;
  for (const auto& [k, v] : t.items()) {
    if (k == "type" || k == "units") continue;
    if (k != "multiply" && k != "add")
      throw Error::config(key + "." + k, "unknown field of scale (multiply, add, units)");
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw Error::config(key + "." + k, "expected a number, got " + v.dump());
    (k == "multiply" ? s.multiply : s.add) = v.get<double>();
    any = true;
  }
  if (!any) throw Error::config(key, "scale needs multiply and/or add");
  s.integer_args = (!t.contains("multiply") || t["multiply"].is_number_integer()) &&
                   (!t.contains("add") || t["add"].is_number_integer());
  drop_range_attrs(attrs);
  if (!t.contains("units") || t["units"].is_null()) {
    attrs.erase("units");
  } else {
    if (!t["units"].is_string())
      throw Error::config(key + ".units",
                          "expected a string (the scaled values' units, such as "
                          "degF), got " +
                              t["units"].dump());
    attrs["units"] = t["units"];
  }
  return s;
}

}  // namespace

void apply_variable_transforms(ArrayPlan& a, const VariableSpec& spec) {
  std::vector<ValueStep> steps;
  std::string steps_key;
  for (std::size_t i = 0; i < spec.transforms.size(); ++i) {
    const json& t = spec.transforms[i];
    const std::string key = fmt::format("variables.{}[{}]", spec.name, i);
    const std::string type = t["type"].get<std::string>();
    if (type == "rename") {
      if (!t.contains("new_name") || !t["new_name"].is_string())
        throw Error::config(key + ".new_name", "required string field is missing");
      a.name = t["new_name"].get<std::string>();
    } else if (type == "attrs") {
      const json extra = t.contains("attrs") ? t["attrs"] : t;
      if (!extra.is_object()) throw Error::config(key + ".attrs", "expected a map of attributes");
      for (const auto& [k, v] : extra.items())
        if (k != "type") a.attrs[k] = v;
    } else if (type == "astype") {
      for (const auto& [k, v] : t.items())
        if (k != "type" && k != "dtype")
          throw Error::config(key + "." + k, "unknown field of astype (dtype)");
      if (!t.contains("dtype") || !t["dtype"].is_string())
        throw Error::config(key + ".dtype", "required string field is missing");
      ValueStep s;
      s.op = ValueStep::Op::AsType;
      s.to = numeric_dtype_named(t["dtype"].get<std::string>(), key + ".dtype");
      // A packed variable is unpacked for the cast: ranges in packed units no longer apply.
      if (cf_decoding(a.source).has_scale || cf_decoding(a.source).has_offset)
        drop_range_attrs(a.attrs);
      steps.push_back(s);
      if (steps_key.empty()) steps_key = key;
    } else if (type == "scale") {
      steps.push_back(scale_step(t, key, a.attrs));
      if (steps_key.empty()) steps_key = key;
    } else {
      throw Error::config(key + ".type", "unknown variable transform '" + type +
                                             "' (rename, attrs, astype, scale)");
    }
  }
  if (!steps.empty()) finish_value_steps(a, steps, steps_key);
}

}  // namespace zp
