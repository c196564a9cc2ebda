// HeartbeatMirror: the local workers of a run on S3 keep their heartbeats in a private scratch
// folder (object_store_workers.hpp); the coordinator copies them into the store's side folder
// (`.zarr-parallel/heartbeats/WORKER.json`) at most once every `every` seconds, only those that
// changed, so `zarr-parallel status s3://...` shows the live workers as it does for a folder
// store. The copies it made are deleted when the run ends (a killed coordinator leaves them:
// status then shows those workers dead). A failed copy is not the run's failure: the next tick
// tries again.
#pragma once

#include <map>
#include <string>

#include "store/writable.hpp"
#include "write/store_state.hpp"

namespace zp {

class HeartbeatMirror {
 public:
  HeartbeatMirror(const StoreState& scratch, const Writable& store, double every = 3.0)
      : scratch_(scratch), store_(store), every_(every) {}
  ~HeartbeatMirror();  // deletes the copies (best effort)
  HeartbeatMirror(const HeartbeatMirror&) = delete;
  HeartbeatMirror& operator=(const HeartbeatMirror&) = delete;

  // Copies the changed heartbeats when `every` seconds have passed since the last copy.
  void tick(double now);

 private:
  const StoreState& scratch_;
  const Writable& store_;
  double every_;
  double last_ = 0;
  std::map<std::string, std::string> sent_;  // worker -> the text last put
};

}  // namespace zp
