// Heartbeat: a thread that writes this worker's progress (job, chunks, bytes, time) into the
// store's side folder every couple of seconds, so a coordinator can tell a slow worker from a lost
// one. set() and update() are thread-safe; the file is written atomically. Progress within a job
// goes through update(): a write per chunk (temporary file + rename) cost W3 8% of its CPU.
#pragma once

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "plan/copy_rule.hpp"
#include "write/store_state.hpp"

namespace zp {

class Heartbeat {
 public:
  Heartbeat(const StoreState& state, std::string worker_id, double interval_seconds = 2.0);
  ~Heartbeat();
  void set(const nlohmann::json& fields);     // merged and written now (a job starts or ends)
  void update(const nlohmann::json& fields);  // merged into the next periodic beat

 private:
  void beat();
  const StoreState& state_;
  std::string worker_;
  double interval_;
  nlohmann::json fields_ = nlohmann::json::object();
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// A heartbeat's "time" as a coordinator may count it: a number no later than `now` plus a small
// clock skew (nodes' clocks differ a little). Anything else (missing, not a number, far in the
// future: a forged beat that would hide a hung worker forever) is 0, as if it never beat.
inline constexpr double kHeartbeatClockSkew = 60;
double beat_time(const nlohmann::json& beat, double now);

// What worker heartbeat `beat` (a store file: numbers of the right kind only) says of the progress
// of `job`, begun at p.started: sets p.reported and p.chunks_done when the beat is of that job and
// not older than its start.
void progress_from_heartbeat(const nlohmann::json& beat, int64_t job, JobProgress& p);

}  // namespace zp
