#include "core/units.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <vector>

#include "core/error.hpp"

namespace zp {

namespace {

// Larger values are typos (or wrapped numbers); within them, bytes and seconds stay far from
// int64's end in every sum and product the planner and SLURM's --mem/--time make of them.
constexpr double kMaxMemory = 1125899906842624.0;  // 1 PiB
constexpr int64_t kMaxDuration = 366 * 86400;      // 366 days

// A run of digits as a number; more than 9 digits is out of range before it can overflow.
int64_t digits_value(const std::string& piece, const std::function<Error()>& bad,
                     const std::function<Error()>& too_long) {
  if (piece.empty()) throw bad();
  for (char c : piece)
    if (!std::isdigit(static_cast<unsigned char>(c))) throw bad();
  if (piece.size() > 9) throw too_long();
  return std::stoll(piece);
}

}  // namespace

int64_t parse_memory(const std::string& text, const std::string& key) {
  std::size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (...) {
    throw Error::config(key, "'" + text + "' is not a memory size (e.g. 2GB, 1500MiB)");
  }
  std::string unit;
  for (std::size_t i = pos; i < text.size(); ++i)
    if (!std::isspace(static_cast<unsigned char>(text[i]))) unit += text[i];
  struct U {
    const char* name;
    double factor;
  };
  static const U units[] = {{"", 1},
                            {"B", 1},
                            {"kB", 1e3},
                            {"KB", 1e3},
                            {"MB", 1e6},
                            {"GB", 1e9},
                            {"TB", 1e12},
                            {"KiB", 1024.0},
                            {"MiB", 1048576.0},
                            {"GiB", 1073741824.0},
                            {"TiB", 1099511627776.0},
                            {"K", 1024.0},
                            {"M", 1048576.0},
                            {"G", 1073741824.0}};
  // dask's spelling ("2gb", "512 mib") too: units of two or more letters in any case. Single
  // letters keep SLURM's binary meaning, so only their upper case is taken.
  auto same = [&](const std::string& name) {
    if (unit == name) return true;
    if (unit.size() < 2 || unit.size() != name.size()) return false;
    for (std::size_t i = 0; i < unit.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(unit[i])) !=
          std::tolower(static_cast<unsigned char>(name[i])))
        return false;
    return true;
  };
  for (const auto& u : units)
    if (same(u.name)) {
      if (!(value > 0) || !std::isfinite(value))
        throw Error::config(key, "memory size must be positive, got '" + text + "'");
      if (!(value * u.factor >= 1) || value * u.factor > kMaxMemory)
        throw Error::config(key, "'" + text + "' is out of range (1 B to 1 PiB)");
      return static_cast<int64_t>(value * u.factor);
    }
  throw Error::config(key, "unknown memory unit '" + unit + "' in '" + text +
                               "' (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, or SLURM's K, M, G)");
}

int64_t parse_duration(const std::string& text, const std::string& key) {
  const std::function<Error()> bad = [&] {
    return Error::config(key, "'" + text + "' is not a duration (MM, MM:SS, HH:MM:SS, D-HH:MM:SS)");
  };
  const std::function<Error()> too_long = [&] {
    return Error::config(key, "'" + text + "' is out of range (1 second to 366 days)");
  };
  std::string rest = text;
  int64_t days = 0;
  const auto dash = rest.find('-');
  if (dash != std::string::npos) {
    days = digits_value(rest.substr(0, dash), bad, too_long);
    rest = rest.substr(dash + 1);
  }
  std::vector<int64_t> parts;
  std::size_t start = 0;
  while (true) {
    const auto colon = rest.find(':', start);
    const auto piece =
        rest.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    parts.push_back(digits_value(piece, bad, too_long));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  int64_t seconds = 0;
  if (dash != std::string::npos) {  // D-HH, D-HH:MM, D-HH:MM:SS
    if (parts.size() > 3) throw bad();
    const int64_t mult[] = {3600, 60, 1};
    for (std::size_t i = 0; i < parts.size(); ++i) seconds += parts[i] * mult[i];
  } else if (parts.size() == 1) {
    seconds = parts[0] * 60;
  } else if (parts.size() == 2) {
    seconds = parts[0] * 60 + parts[1];
  } else if (parts.size() == 3) {
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2];
  } else {
    throw bad();
  }
  seconds += days * 86400;  // each part < 10^9: no overflow
  if (seconds <= 0) throw bad();
  if (seconds > kMaxDuration) throw too_long();
  return seconds;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

}  // namespace zp
