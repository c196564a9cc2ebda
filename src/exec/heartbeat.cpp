#include "exec/heartbeat.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace zp {

Heartbeat::Heartbeat(const StoreState& state, std::string worker_id, double interval_seconds)
    : state_(state), worker_(std::move(worker_id)), interval_(interval_seconds) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  fields_ = {{"worker", worker_}, {"pid", getpid()}, {"host", host}};
  beat();
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (
        !cv_.wait_for(lock, std::chrono::duration<double>(interval_), [this] { return stop_; })) {
      lock.unlock();
      beat();
      lock.lock();
    }
  });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Heartbeat::set(const nlohmann::json& fields) {
  update(fields);
  beat();
}

void Heartbeat::update(const nlohmann::json& fields) {
  std::lock_guard lock(mutex_);
  for (const auto& [k, v] : fields.items()) fields_[k] = v;
}

void Heartbeat::beat() {
  nlohmann::json j;
  {
    std::lock_guard lock(mutex_);
    j = fields_;
  }
  j["time"] = now_seconds();
  try {
    state_.write_heartbeat(worker_, j);
  } catch (...) {
    // A missed beat is not fatal; a store that cannot be written fails the job itself.
  }
}

double beat_time(const nlohmann::json& beat, double now) {
  const auto time = beat.find("time");
  if (time == beat.end() || !time->is_number()) return 0;
  const double t = time->get<double>();
  return std::isfinite(t) && t <= now + kHeartbeatClockSkew ? t : 0;
}

void progress_from_heartbeat(const nlohmann::json& beat, int64_t job, JobProgress& p) {
  const auto id = beat.find("job"), time = beat.find("time"), done = beat.find("chunks_done");
  if (id == beat.end() || !id->is_number_integer() || id->get<int64_t>() != job) return;
  if (time == beat.end() || !time->is_number() || done == beat.end() || !done->is_number_unsigned())
    return;
  if (time->get<double>() < p.started) return;      // a beat of an earlier run of this job
  if (beat_time(beat, now_seconds()) == 0) return;  // from the future: forged
  p.reported = time->get<double>();
  p.chunks_done = static_cast<int64_t>(std::min<uint64_t>(done->get<uint64_t>(), INT64_MAX));
}

}  // namespace zp
