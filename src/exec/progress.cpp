#include "exec/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/units.hpp"

namespace zp {

void log_line(int run_level, int level, const std::string& text) {
  if (level <= run_level) fmt::print(stderr, "zarr-parallel: {}\n", text);
}

namespace {
std::atomic<bool> g_json_events{false};
std::mutex g_events_mutex;
}  // namespace

void set_json_events(bool on) { g_json_events = on; }
bool json_events() { return g_json_events; }

void emit_event(const std::string& event, nlohmann::json fields) {
  if (!g_json_events) return;
  nlohmann::json j = {{"event", event}};
  for (auto& [k, v] : fields.items()) j[k] = std::move(v);
  std::lock_guard lock(g_events_mutex);
  fmt::print(stdout, "{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  std::fflush(stdout);
}

Progress::Progress(int64_t total_jobs, int log_level)
    : total_jobs_(total_jobs),
      log_level_(log_level),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      last_event_(start_) {
  emit_event("start", {{"jobs_total", total_jobs_}});
}

Progress::~Progress() {
  if (drawn_ && tty_) fmt::print(stderr, "\n");
}

void Progress::update(int64_t jobs_done, uint64_t bytes_done, int live_workers,
                      uint64_t bytes_read) {
  jobs_ = jobs_done;
  bytes_ = bytes_done;
  read_ = bytes_read;
  workers_ = live_workers;
  most_workers_ = std::max(most_workers_, live_workers);
  draw(false);
}

void Progress::job_finished(int64_t job_id, double seconds) {
  emit_event("job_done", {{"job", job_id}, {"seconds", seconds}});
  if (!tty_ && log_level_ >= 2)
    log_line(log_level_, 2, fmt::format("job {} done in {:.2f} s", job_id, seconds));
}

void Progress::finish() {
  draw(true);
}

void Progress::draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (json_events() && (force || now - last_event_ >= std::chrono::seconds(1))) {
    last_event_ = now;
    const double elapsed = std::max(1e-6, std::chrono::duration<double>(now - start_).count());
    const double frac =
        total_jobs_ ? static_cast<double>(jobs_) / static_cast<double>(total_jobs_) : 1.0;
    nlohmann::json f = {{"jobs_done", jobs_},
                        {"jobs_total", total_jobs_},
                        {"bytes_written", bytes_},
                        {"bytes_read", read_},
                        {"bytes_per_second", static_cast<double>(bytes_) / elapsed},
                        {"elapsed_s", elapsed},
                        {"workers", force ? most_workers_ : workers_}};
    if (!force && frac > 0) f["eta_s"] = elapsed * (1 - frac) / frac;
    emit_event(force && jobs_ == total_jobs_ ? "done" : "progress", f);
  }
  if (log_level_ < 1) return;
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && since < (tty_ ? 0.2 : 5.0)) return;
  last_ = now;
  const double elapsed = std::max(1e-6, std::chrono::duration<double>(now - start_).count());
  const double rate = static_cast<double>(bytes_) / elapsed;
  const double frac =
      total_jobs_ ? static_cast<double>(jobs_) / static_cast<double>(total_jobs_) : 1.0;
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  if (force && jobs_ == total_jobs_) {  // the run's totals, on a line of its own
    if (tty_ && drawn_) fmt::print(stderr, "\n");
    drawn_ = false;
    const std::string read =
        read_ ? format_bytes(static_cast<double>(read_)) + " read, " : std::string();
    log_line(log_level_, 1,
             fmt::format("{}/{} jobs done in {:.2f} s, {}{} written, {}/s, {} worker{} at most",
                         jobs_, total_jobs_, elapsed, read, format_bytes(static_cast<double>(bytes_)),
                         format_bytes(rate), most_workers_, most_workers_ == 1 ? "" : "s"));
    return;
  }
  if (tty_) {
    const int width = 30, filled = static_cast<int>(frac * width);
    fmt::print(stderr, "\r[{}{}] {}/{} jobs  {}/s  workers {}  ETA {:.0f} s   ",
               std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(width - filled), '.'), jobs_, total_jobs_,
               format_bytes(rate), workers_, eta);
    drawn_ = true;
  } else {
    log_line(log_level_, 1,
             fmt::format("{}/{} jobs done, {} written, {}/s, {} workers, {:.1f} s elapsed", jobs_,
                         total_jobs_, format_bytes(static_cast<double>(bytes_)), format_bytes(rate),
                         workers_, elapsed));
  }
}

}  // namespace zp
