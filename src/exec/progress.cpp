#include "exec/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>

#include "core/console.hpp"
#include "core/plural.hpp"
#include "core/terminal_text.hpp"
#include "core/units.hpp"
#include "exec/progress_line.hpp"

namespace zp {

// The texts name files, URLs, variables and servers' answers: escaped for the terminal.
void log_line(int run_level, int level, const std::string& text) {
  if (level <= run_level) say(stderr, fmt::format("zarr-parallel: {}\n", terminal_safe(text)));
}

namespace {
std::atomic<bool> g_json_events{false};
std::mutex g_events_mutex;
}  // namespace

void set_json_events(bool on) {
  g_json_events = on;
}
bool json_events() {
  return g_json_events;
}

void emit_event(const std::string& event, nlohmann::json fields) {
  if (!g_json_events) return;
  nlohmann::json j = {{"event", event}};
  for (auto& [k, v] : fields.items()) j[k] = std::move(v);
  std::lock_guard lock(g_events_mutex);
  say(stdout, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
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
  if (drawn_ && tty_) say(stderr, "\n");
}

void Progress::set_job_chunks(std::map<int64_t, int64_t> chunks_of_job) {
  job_chunks_ = std::move(chunks_of_job);
  total_chunks_ = 0;
  for (const auto& [job, n] : job_chunks_) total_chunks_ += n;
  draw(false);  // the first `progress` record now, not once the first chunk is written
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

void Progress::job_progress(int64_t job_id, int64_t chunks_done, uint64_t bytes_written,
                            uint64_t bytes_read) {
  running_[job_id] = {chunks_done, bytes_written, bytes_read};
  draw(false);
}

void Progress::job_finished(int64_t job_id, double seconds) {
  running_.erase(job_id);
  if (const auto it = job_chunks_.find(job_id); it != job_chunks_.end()) chunks_done_ += it->second;
  emit_event("job_done", {{"job", job_id}, {"seconds", seconds}});
  if (!tty_ && log_level_ >= 2)
    log_line(log_level_, 2, fmt::format("job {} done in {:.2f} s", job_id, seconds));
}

void Progress::finish() {
  running_.clear();
  draw(true);
}

Progress::Partial Progress::running() const {
  Partial sum;
  for (const auto& [job, p] : running_) {
    sum.chunks += p.chunks;
    sum.written += p.written;
    sum.read += p.read;
  }
  return sum;
}

double Progress::fraction() const {
  if (total_chunks_ > 0)
    return std::min(1.0, static_cast<double>(chunks_done_ + running().chunks) /
                             static_cast<double>(total_chunks_));
  return total_jobs_ ? static_cast<double>(jobs_) / static_cast<double>(total_jobs_) : 1.0;
}

// Time left at the rate so far: the output chunks are alike, so the fraction of them written
// extrapolates (job counts alone stand still while jobs run, and the estimate climbed). Between
// two moves of the fraction the estimate counts down with the clock instead of climbing.
std::optional<double> Progress::eta(double elapsed) {
  const double frac = fraction();
  if (frac >= 1) return 0.0;
  if (frac <= 0) return std::nullopt;
  if (frac != eta_fraction_) {
    eta_fraction_ = frac;
    eta_at_ = elapsed;
    eta_s_ = elapsed * (1 - frac) / frac;
  }
  return std::max(0.0, eta_s_ - (elapsed - eta_at_));
}

void Progress::emit_json(bool force, double elapsed) {
  const Partial now = running();
  nlohmann::json f = {{"jobs_done", jobs_},
                      {"jobs_total", total_jobs_},
                      {"bytes_written", bytes_ + now.written},
                      {"bytes_read", read_ + now.read},
                      {"bytes_per_second", static_cast<double>(bytes_ + now.written) / elapsed},
                      {"elapsed_s", elapsed},
                      {"workers", force ? most_workers_ : workers_}};
  if (total_chunks_ > 0) {
    f["chunks_done"] = chunks_done_ + now.chunks;
    f["chunks_total"] = total_chunks_;
  }
  if (const auto left = eta(elapsed); !force && left) f["eta_s"] = *left;
  emit_event(force && jobs_ == total_jobs_ ? "done" : "progress", f);
}

void Progress::draw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::max(1e-6, std::chrono::duration<double>(now - start_).count());
  // The first record at once, and one as soon as a job finished (so that the stream never shows
  // a finished job's state late); between those, at most one a second.
  if (json_events() &&
      (force || jobs_ != event_jobs_ || now - last_event_ >= std::chrono::seconds(1))) {
    last_event_ = now;
    event_jobs_ = jobs_;
    emit_json(force, elapsed);
  }
  if (log_level_ < 1) return;
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && since < (tty_ ? 0.2 : 5.0)) return;
  last_ = now;
  const Partial part = running();
  const uint64_t written = bytes_ + part.written, read = read_ + part.read;
  const double rate = static_cast<double>(written) / elapsed;
  if (force && jobs_ == total_jobs_) {  // the run's totals, on a line of its own
    if (tty_ && drawn_) say(stderr, "\r\x1b[K");
    drawn_ = false;
    const std::string read_text =
        read ? format_bytes(static_cast<double>(read)) + " read, " : std::string();
    log_line(log_level_, 1,
             fmt::format("{}/{} {} done in {:.2f} s, {}{} written, {}/s, {} at most", jobs_,
                         total_jobs_, noun(total_jobs_, "job"), elapsed, read_text,
                         format_bytes(static_cast<double>(written)), format_bytes(rate),
                         counted(most_workers_, "worker")));
    return;
  }
  const double frac = fraction();
  if (tty_) {
    const ProgressView v{jobs_, total_jobs_, frac, rate, workers_, eta(elapsed)};
    // Back to the line's start, the line, then clear what a longer earlier line left.
    say(stderr, fmt::format("\r{}\x1b[K", progress_line(v, terminal_columns(STDERR_FILENO))));
    drawn_ = true;
  } else {
    log_line(log_level_, 1,
             fmt::format("{}/{} {} done ({:.0f}% of the chunks), {} written, {}/s, {}, "
                         "{:.1f} s elapsed",
                         jobs_, total_jobs_, noun(total_jobs_, "job"), 100 * frac,
                         format_bytes(static_cast<double>(written)), format_bytes(rate),
                         counted(workers_, "worker"), elapsed));
  }
}

}  // namespace zp
