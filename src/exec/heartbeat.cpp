#include "exec/heartbeat.hpp"

#include <unistd.h>

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

}  // namespace zp
