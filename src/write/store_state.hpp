// StoreState: the side folder `.zarr-parallel/` inside a cache store, where runs keep their
// bookkeeping: the plan, per-job done markers, worker heartbeats and logs, stats, and the
// completion marker that is written last of all. Zarr readers ignore the folder (it holds no
// .zarray/.zgroup). Each marker is one atomic file, so several processes may use it at once.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/writable.hpp"

namespace zp {

// The output-format version: raise it whenever the bytes or metadata written for the same config
// and source could change (a codec default, a chunk layout, an attribute). A store written with
// another version is never a cache hit, nor continued: it is rebuilt.
constexpr int kOutputFormatVersion = 1;

class StoreState {
 public:
  explicit StoreState(const Writable& store) : store_(store) {}

  static constexpr const char* kFolder = ".zarr-parallel";

  std::string plan_path() const;
  std::string log_path(int64_t job_id) const;
  // The job's log opened to append to it (inside the store, no link followed); caller closes it.
  int open_log(int64_t job_id) const;
  // The writes below that take a `batch` put their file into it (durable at its finish(), with the
  // others: one wait on the device for all) instead of flushing it on its own.
  void write_plan(const std::string& plan_json, WriteBatch* batch = nullptr) const;
  // `plan_sha256`: SHA-256 of the plan.json text, checked by load_plan.
  void write_started(const std::string& config_hash, const std::string& plan_sha256,
                     WriteBatch* batch = nullptr) const;
  // {config_hash, plan_sha256, started, tool_version, format_version}
  std::optional<nlohmann::json> started() const;

  void mark_done(int64_t job_id, const nlohmann::json& stats) const;
  bool is_done(int64_t job_id) const;
  // A job's done record: an object of at most kDoneRecordBytes, its known fields only (numbers,
  // and the worker's name), as a store someone else wrote may hold anything there.
  std::optional<nlohmann::json> done_info(int64_t job_id) const;
  // The done records of jobs 0 .. jobs-1 (a plan's): the work is the plan's size, whatever else
  // the jobs folder holds (a store may hold a million forged records).
  std::vector<nlohmann::json> done_records(std::size_t jobs) const;
  // The done markers ("N.done") among the first `max` names of the jobs folder (`cut`: it has
  // more): a count for messages that have no plan to go by.
  std::size_t done_markers_listed(std::size_t max, bool& cut) const;
  static constexpr uint64_t kDoneRecordBytes = 64 << 10;

  // Names in the side folder's `sub` folder ("jobs", "heartbeats"), at most `max` of them: what
  // reads a store it does not trust (status) bounds its work.
  std::vector<std::string> list_at_most(const std::string& sub, std::size_t max) const;

  void write_heartbeat(const std::string& worker, const nlohmann::json& beat) const;
  // A worker's last beat: a few hundred bytes; one over kHeartbeatBytes reads as absent (status
  // reads up to 10,000 of them from a store it does not trust).
  std::optional<nlohmann::json> heartbeat(const std::string& worker) const;
  static constexpr uint64_t kHeartbeatBytes = 64 << 10;

  // The source fingerprints as planned (also in the plan; kept apart so that a cache hit need not
  // read a large plan).
  void write_sources(const nlohmann::json& fingerprints, WriteBatch* batch = nullptr) const;
  std::optional<nlohmann::json> sources() const;

  // An append in progress ({dim, old_length}): written when it starts, removed when it completes.
  // Until then the store is still the old complete one (its metadata is the old one).
  void write_append(const nlohmann::json& record) const;
  std::optional<nlohmann::json> append_record() const;
  void remove_append() const;
  // Removes every done marker (an append's jobs are numbered from 0 again).
  void clear_done() const;

  void write_stats(const nlohmann::json& stats, WriteBatch* batch = nullptr) const;
  // Flushes the done markers, then writes the completion marker durably.
  void mark_complete(const std::string& config_hash) const;
  // Flushes the side folder's entries: the plan and state of a new store survive a crash.
  void sync() const;
  std::optional<std::string> completed_hash() const;  // config hash of a complete store
  // The output-format version a complete / started store was written with (nullopt: none recorded,
  // a store of a build before versions).
  std::optional<int> completed_format_version() const;
  std::optional<int> started_format_version() const;

 private:
  void put(const std::string& key, const std::string& text, WriteBatch* batch) const;
  const Writable& store_;
};

// Seconds since the Unix epoch, with fractions.
double now_seconds();

}  // namespace zp
