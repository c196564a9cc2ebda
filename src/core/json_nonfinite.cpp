#include "core/json_nonfinite.hpp"

#include <cmath>
#include <cstring>

namespace zp {

namespace {

// Markers start with a NUL byte: no attribute text of a real file does.
const std::string kNaN = std::string(1, '\0') + "NaN";
const std::string kInf = std::string(1, '\0') + "Infinity";
const std::string kNegInf = std::string(1, '\0') + "-Infinity";

template <typename J>
void to_numbers(J& j) {
  if (j.is_string()) {
    const auto& s = j.template get_ref<const std::string&>();
    if (s.empty() || s[0] != '\0') return;
    if (s == kNaN)
      j = std::nan("");
    else if (s == kInf)
      j = HUGE_VAL;
    else if (s == kNegInf)
      j = -HUGE_VAL;
    return;
  }
  if (j.is_structured())
    for (auto& x : j) to_numbers(x);
}

// A copy of `j` as JSON type Out, non-finite doubles replaced by their markers.
template <typename Out>
Out to_markers(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::number_float: {
      const double d = j.get<double>();
      if (std::isnan(d)) return kNaN;
      if (std::isinf(d)) return d > 0 ? kInf : kNegInf;
      return d;
    }
    case nlohmann::ordered_json::value_t::array: {
      Out out = Out::array();
      for (const auto& x : j) out.push_back(to_markers<Out>(x));
      return out;
    }
    case nlohmann::ordered_json::value_t::object: {
      Out out = Out::object();
      for (const auto& [k, v] : j.items()) out[k] = to_markers<Out>(v);
      return out;
    }
    case nlohmann::ordered_json::value_t::string:
      return j.get<std::string>();
    case nlohmann::ordered_json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::ordered_json::value_t::number_integer:
      return j.get<int64_t>();
    case nlohmann::ordered_json::value_t::number_unsigned:
      return j.get<uint64_t>();
    default:
      return nullptr;
  }
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

std::string nonfinite_tokens_to_markers(const std::string& s) {
  // Most texts have neither token: one scan then, no copy.
  if (s.find("NaN") == std::string::npos && s.find("Infinity") == std::string::npos) return s;
  // Copies the text between replacements in spans: a plan holds "NaN" strings (fill values), and
  // a character-at-a-time copy of its 0.5 MB was a quarter of a worker's start.
  std::string out;
  std::size_t copied = 0;
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const char c = s[i];
    if (c == '"') {
      for (++i; i < n && s[i] != '"'; ++i)
        if (s[i] == '\\') ++i;
      ++i;
      continue;
    }
    if (c == '-' || c == 'I' || c == 'N') {
      bool replaced = false;
      for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
        const std::size_t len = std::strlen(tok);
        if (s.compare(i, len, tok) == 0) {
          if (out.empty()) out.reserve(n + 64);
          out.append(s, copied, i - copied);
          out += std::string("\"\\u0000") + tok + "\"";
          i += len;
          copied = i;
          replaced = true;
          break;
        }
      }
      if (replaced) continue;
    }
    ++i;
  }
  if (copied == 0) return s;
  out.append(s, copied, std::string::npos);
  return out;
}

void nonfinite_markers_to_numbers(nlohmann::json& j) {
  to_numbers(j);
}
void nonfinite_markers_to_numbers(nlohmann::ordered_json& j) {
  to_numbers(j);
}

nlohmann::json nonfinite_numbers_to_markers(const nlohmann::ordered_json& j) {
  return to_markers<nlohmann::json>(j);
}

std::string nonfinite_markers_to_tokens(std::string text) {
  for (const char* tok : {"-Infinity", "Infinity", "NaN"})
    replace_all(text, std::string("\"\\u0000") + tok + "\"", tok);
  return text;
}

namespace {

bool has_nonfinite(const nlohmann::ordered_json& j) {
  if (j.is_number_float()) return !std::isfinite(j.get<double>());
  if (j.is_structured())
    for (const auto& x : j)
      if (has_nonfinite(x)) return true;
  return false;
}

}  // namespace

std::string dump_python_json(const nlohmann::ordered_json& j, int indent) {
  // Most documents have no NaN or infinity: then no marked copy and no token pass.
  // ensure_ascii: zarr-python 2 decodes metadata as ASCII, so "°C" must be written "\u00b0C".
  if (!has_nonfinite(j)) return j.dump(indent, ' ', true);
  return nonfinite_markers_to_tokens(to_markers<nlohmann::ordered_json>(j).dump(indent, ' ', true));
}

nlohmann::json zarr_fill_value(const nlohmann::json& v) {
  nlohmann::json x = v;
  to_numbers(x);
  if (x.is_number_float()) {
    const double d = x.get<double>();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  }
  return x;
}

}  // namespace zp
