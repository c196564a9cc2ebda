#include "exec/progress_line.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/plural.hpp"
#include "core/units.hpp"

namespace zp {

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 90) return fmt::format("{} s", s);
  if (s < 5400) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, (s % 3600) / 60);
}

int terminal_columns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS")) {
    const long n = std::strtol(env, nullptr, 10);
    if (n > 0 && n < 10000) return static_cast<int>(n);
  }
  return 80;
}

namespace {

std::string bar(double fraction, int width) {
  const int filled = std::clamp(static_cast<int>(fraction * width), 0, width);
  return "[" + std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(width - filled), '.') + "]";
}

}  // namespace

std::string progress_line(const ProgressView& v, int columns) {
  const int room = std::max(columns - 1, 1);
  const std::string pct =
      fmt::format("{:.0f}%", std::floor(100 * std::clamp(v.fraction, 0.0, 1.0)));
  const std::string jobs =
      fmt::format("{}/{} {}", v.jobs_done, v.jobs_total, noun(v.jobs_total, "job"));
  const std::string eta = "ETA " + (v.eta_s ? format_duration(*v.eta_s) : std::string("?"));
  const std::string rate = format_bytes(v.bytes_per_second) + "/s";
  const std::string workers = fmt::format("{} worker{}", v.workers, v.workers == 1 ? "" : "s");
  // The longest text that fits, then a bar in what is left (10 to 30 characters, or none).
  const std::vector<std::string> texts = {
      fmt::format("{} {}  {}  {}  {}", pct, jobs, rate, workers, eta),
      fmt::format("{} {}  {}", pct, jobs, eta), fmt::format("{} {}", pct, eta), pct};
  for (const auto& text : texts) {
    const int left = room - static_cast<int>(text.size()) - 1;
    if (left >= 12) return bar(v.fraction, std::min(left, 32) - 2) + " " + text;
    if (left >= -1) return text;
  }
  return pct.substr(0, static_cast<std::size_t>(room));
}

}  // namespace zp
