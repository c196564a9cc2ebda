#include "exec/heartbeat_mirror.hpp"

#include <exception>

namespace zp {

namespace {

// At most this many workers' heartbeats are copied (a run has simultaneous_worker_limit of them).
constexpr std::size_t kMaxMirrored = 1000;

std::string mirror_key(const std::string& worker) {
  return std::string(StoreState::kFolder) + "/heartbeats/" + worker + ".json";
}

}  // namespace

void HeartbeatMirror::tick(double now) {
  if (now - last_ < every_) return;
  last_ = now;
  try {
    for (const auto& name : scratch_.list_at_most("heartbeats", kMaxMirrored)) {
      if (!name.ends_with(".json") || name.size() <= 5) continue;
      const std::string worker = name.substr(0, name.size() - 5);
      const auto beat = scratch_.heartbeat(worker);
      if (!beat) continue;
      std::string text = beat->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      auto& sent = sent_[worker];
      if (text == sent) continue;
      store_.put(mirror_key(worker), text, Sync::Cached);
      sent = std::move(text);
    }
  } catch (const std::exception&) {  // unreachable for now: the lease's renewal judges the store
  }
}

HeartbeatMirror::~HeartbeatMirror() {
  for (const auto& [worker, text] : sent_) {
    try {
      store_.remove(mirror_key(worker));
    } catch (...) {  // left behind: status shows a dead worker
    }
  }
}

}  // namespace zp
