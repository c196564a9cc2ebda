#include "exec/job_queue.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace {

constexpr uint64_t kClaimBytes = 4096;  // a claim is a one-line JSON object

std::string key(const std::string& name) {
  return std::string(JobQueue::kFolder) + "/" + name;
}

// A job id below `limit` written as we write it (std::to_string), or nullopt: "01", "-0" or "+1"
// would read as a job whose claim or marker has another name, that release() never removes.
std::optional<int64_t> job_id(std::string_view text, std::size_t limit) {
  int64_t id = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 0 ||
      static_cast<uint64_t>(id) >= limit || text != std::to_string(id))
    return std::nullopt;
  return id;
}

}  // namespace

bool valid_task_name(const std::string& task) {
  if (task.empty() || task.size() > 128 || task.front() == '.') return false;
  for (const char c : task)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return false;
  return true;
}

JobQueue::JobQueue(const std::string& root, std::size_t plan_jobs)
    : store_(root), plan_jobs_(plan_jobs) {}

std::string JobQueue::path_of(const std::string& name) const {
  return store_.path_of(key(name));
}

void JobQueue::write_order(const std::vector<int64_t>& jobs) const {
  store_.make_folder(key("claims"));
  std::string text;
  for (const int64_t j : jobs) text += std::to_string(j) + "\n";
  store_.put(key("order.txt"), text);
}

std::vector<int64_t> JobQueue::order() const {
  const std::string path = path_of("order.txt");
  // At most 20 digits and a newline a job.
  const auto text = store_.get_at_most(key("order.txt"), 21 * static_cast<uint64_t>(plan_jobs_));
  if (!text) throw Error::store(path, "missing, or larger than the plan's jobs can make it");
  std::vector<int64_t> out;
  std::set<int64_t> seen;
  for (std::size_t at = 0; at < text->size();) {
    const std::size_t eol = std::min(text->find('\n', at), text->size());
    const std::string_view line(text->data() + at, eol - at);
    const auto id = job_id(line, plan_jobs_);
    if (!id || !seen.insert(*id).second)
      throw Error::store(path, fmt::format("'{}' is not a job of the plan, or twice there",
                                           std::string(line.substr(0, 40))));
    out.push_back(*id);
    at = eol + 1;
  }
  return out;
}

bool JobQueue::claim(int64_t job, bool copy, const std::string& task, double started) const {
  const nlohmann::json c = {{"task", task}, {"started", started}};
  return store_.put_if_absent(key(fmt::format("claims/{}{}", job, copy ? ".copy" : "")),
                              c.dump() + "\n");
}

// A claim's task and start, checked; an unreadable claim still holds its job (Claim{}).
std::optional<Claim> JobQueue::read_claim(const std::string& name) const {
  std::optional<std::string> text;
  try {
    text = store_.get_at_most(key("claims/" + name), kClaimBytes);
    // Released meanwhile: none; too large: held, unnamed.
    if (!text) return store_.exists(key("claims/" + name)) ? std::optional(Claim{}) : std::nullopt;
  } catch (const Error&) {
    return Claim{};  // a planted link or device: held, never followed
  }
  Claim c;
  if (json_too_deep(*text)) return c;
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return c;
  const auto task = j.find("task"), started = j.find("started");
  if (task != j.end() && task->is_string() && valid_task_name(task->get<std::string>()))
    c.task = task->get<std::string>();
  if (started != j.end() && started->is_number() && std::isfinite(started->get<double>()) &&
      started->get<double>() > 0)
    c.started = started->get<double>();
  return c;
}

JobQueue::Claims JobQueue::claims(const std::set<int64_t>& skip) const {
  Claims out;
  for (const auto& name : store_.list_at_most(key("claims"), 2 * plan_jobs_ + 4096)) {
    const bool copy = name.ends_with(".copy");
    const auto id =
        job_id(copy ? std::string_view(name).substr(0, name.size() - 5) : name, plan_jobs_);
    if (!id || skip.count(*id)) continue;  // a temporary of a claim being made, not ours, done
    if (const auto c = read_claim(name)) (copy ? out.copies : out.first)[*id] = *c;
  }
  return out;
}

void JobQueue::release(int64_t job, bool copy) const {
  store_.remove(key(fmt::format("claims/{}{}", job, copy ? ".copy" : "")));
}

std::set<int64_t> done_jobs_listed(const StoreState& state, std::size_t plan_jobs) {
  std::set<int64_t> done;
  for (const auto& name : state.list_at_most("jobs", plan_jobs + 4096))
    if (name.ends_with(".done"))
      if (const auto id = job_id(std::string_view(name).substr(0, name.size() - 5), plan_jobs))
        done.insert(*id);
  return done;
}

}  // namespace zp
