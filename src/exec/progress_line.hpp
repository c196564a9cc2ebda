// The progress bar's one terminal line, fitted to the terminal's width: what to drop first when
// the line does not fit (the bar, then the rate and workers, then the job counts).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace zp {

struct ProgressView {
  int64_t jobs_done = 0, jobs_total = 0;
  double fraction = 0;          // of the output chunks written, 0..1
  double bytes_per_second = 0;  // written
  int workers = 0;
  std::optional<double> eta_s;  // none until there is something to extrapolate from
};

// The line (no "\r", no newline), at most `columns` - 1 characters: a full-width line would
// make some terminals wrap, and "\r" then redraws on a new line each time.
std::string progress_line(const ProgressView& v, int columns);

// The width of the terminal on `fd` (TIOCGWINSZ), else $COLUMNS, else 80.
int terminal_columns(int fd);

// Seconds as "55 s", "3 min 05 s", "2 h 07 min".
std::string format_duration(double seconds);

}  // namespace zp
