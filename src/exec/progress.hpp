// Progress: a one-line bar on a terminal (jobs, MB/s, ETA; as wide as the terminal), plain log
// lines otherwise (at most one every few seconds, plus one per finished job). Counted in output
// chunks when the jobs' chunk counts are known, with running jobs' partial progress (their
// heartbeats), so bytes and the ETA move within a job, not only when one ends. Called from the
// coordinator's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace zp {

class Progress {
 public:
  Progress(int64_t total_jobs, int log_level);
  ~Progress();
  // The output chunks of each job of this run: progress is then the fraction of chunks written.
  void set_job_chunks(std::map<int64_t, int64_t> chunks_of_job);
  // Finished jobs' totals. `bytes_done`: encoded bytes written; `bytes_read`: stored source bytes
  // read (0: not known).
  void update(int64_t jobs_done, uint64_t bytes_done, int live_workers, uint64_t bytes_read = 0);
  // A running job's progress so far (its worker's heartbeat); dropped when the job finishes.
  void job_progress(int64_t job_id, int64_t chunks_done, uint64_t bytes_written,
                    uint64_t bytes_read);
  // Call before update() with the totals that include the job.
  void job_finished(int64_t job_id, double seconds);
  void finish();

 private:
  struct Partial {
    int64_t chunks = 0;
    uint64_t written = 0, read = 0;
  };
  void draw(bool force);
  void emit_json(bool force, double elapsed);
  double fraction() const;
  std::optional<double> eta(double elapsed);
  Partial running() const;
  int64_t total_jobs_;
  int log_level_;
  bool tty_;
  bool drawn_ = false;
  int64_t jobs_ = 0;
  uint64_t bytes_ = 0;
  uint64_t read_ = 0;
  int workers_ = 0;
  int most_workers_ = 0;  // the final line reports how many ran, not how many are left
  std::map<int64_t, int64_t> job_chunks_;  // empty: count jobs
  int64_t total_chunks_ = 0, chunks_done_ = 0;
  std::map<int64_t, Partial> running_;
  double eta_fraction_ = -1, eta_at_ = 0, eta_s_ = 0;  // the last estimate: at which fraction, when
  std::chrono::steady_clock::time_point start_, last_, last_event_;
  int64_t event_jobs_ = -1;  // jobs done as the last `progress` event said
};

// Log line to stderr when `level` <= the run's log level (0 quiet, 1 info, 2 debug).
void log_line(int run_level, int level, const std::string& text);

// The --json event stream: one JSON object a line on stdout ({"event": "plan" | "start" |
// "progress" | "job_done" | "done" | "cache_hit" | "complete" | "error", ...}), for notebooks and
// dashboards; the human lines stay on stderr. Off unless switched on. Thread-safe.
void set_json_events(bool on);
bool json_events();
void emit_event(const std::string& event, nlohmann::json fields = nlohmann::json::object());

}  // namespace zp
