#include "plan/simulate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <limits>
#include <queue>
#include <set>

#include "core/error.hpp"
#include "plan/copy_rule.hpp"

namespace zp {

namespace {

constexpr int kMaxWorkers = 1'000'000;
constexpr double kMaxFailPercent = 50;  // beyond, retries dominate and the model says nothing
constexpr double kMaxSlowFactor = 1000;

Error spec_error(const std::string& text, const std::string& what) {
  return Error::config("--simulate",
                       fmt::format("'{}': {} (expected WORKERS[,slow=P%xF][,fail=Q%], e.g. "
                                   "100,slow=5%x3,fail=1%)",
                                   text, what));
}

// A number in [lo, hi], the whole of `s`.
double number_in(const std::string& text, std::string_view s, double lo, double hi,
                 const char* what) {
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !(v >= lo && v <= hi))
    throw spec_error(text, fmt::format("{} '{}' is not a number from {} to {}", what, s, lo, hi));
  return v;
}

// "5%" or "5": a percentage in [0, hi] as a fraction.
double percent(const std::string& text, std::string_view s, double hi, const char* what) {
  if (!s.empty() && s.back() == '%') s.remove_suffix(1);
  return number_in(text, s, 0, hi, what) / 100.0;
}

void parse_option(const std::string& text, std::string_view opt, SimulateSpec& spec) {
  if (opt.rfind("slow=", 0) == 0) {
    const std::string_view v = opt.substr(5);
    const auto x = v.find('x');
    if (x == std::string_view::npos) throw spec_error(text, "slow= needs P%xF, e.g. slow=5%x3");
    spec.slow_fraction = percent(text, v.substr(0, x), 100, "the slow share");
    spec.slow_factor = number_in(text, v.substr(x + 1), 1, kMaxSlowFactor, "the slow factor");
  } else if (opt.rfind("fail=", 0) == 0) {
    spec.fail_fraction = percent(text, opt.substr(5), kMaxFailPercent, "the failing share");
  } else {
    throw spec_error(text, fmt::format("unknown part '{}'", opt));
  }
}

// splitmix64: small, seeded, the same numbers on every platform.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// The lower-or-upper median (v[n/2] of the sorted values, as the local executor takes it) of a
// growing set: two heaps.
class RunningMedian {
 public:
  void add(double x) {
    if (hi_.empty() || x >= hi_.top())
      hi_.push(x);
    else
      lo_.push(x);
    if (hi_.size() > lo_.size() + 1) {
      lo_.push(hi_.top());
      hi_.pop();
    } else if (lo_.size() > hi_.size()) {
      hi_.push(lo_.top());
      lo_.pop();
    }
  }
  double get() const { return hi_.empty() ? 0.0 : hi_.top(); }

 private:
  std::priority_queue<double> lo_;
  std::priority_queue<double, std::vector<double>, std::greater<>> hi_;
};

struct Attempt {
  std::size_t job = 0;
  int worker = 0;
  double start = 0, end = 0;
  double full_end = 0;  // when it would end if it did not fail (what its rate predicts)
  bool fails = false, live = true, copy = false;
};

// The event loop of one simulated run (see simulate_makespan).
class Simulation {
 public:
  Simulation(const std::vector<double>& jobs, const std::vector<double>& factors, double fail,
             bool copies, const SimulationModel& m, const std::function<double()>& uniform)
      : jobs_(jobs),
        factors_(factors),
        fail_(fail),
        copies_(copies),
        m_(m),
        uniform_(uniform),
        live_(jobs.size()),
        copied_(jobs.size(), 0),
        done_(jobs.size(), 0) {
    for (std::size_t j = 0; j < jobs.size(); ++j) pending_.push_back(j);
    for (int w = 0; w < static_cast<int>(factors.size()); ++w) idle_.insert(w);
  }

  double run() {
    dispatch(0);
    while (!events_.empty()) {
      const auto [t, a] = events_.top();
      events_.pop();
      if (attempts_[a].live) end_attempt(a, t);
      dispatch(t);
    }
    return makespan_;
  }

 private:
  void start(std::size_t job, int worker, bool copy, double t) {
    // Bounded: with fail < 1 this many attempts means the caller's numbers make no sense.
    if (attempts_.size() > 1000 * (jobs_.size() + 10))
      throw Error::internal("simulation: too many failed attempts");
    idle_.erase(worker);
    const double time = jobs_[job] * factors_[static_cast<std::size_t>(worker)];
    const bool fails = uniform_() < fail_;
    const double end = t + (fails ? uniform_() * time : time);
    const std::size_t a = attempts_.size();
    attempts_.push_back({job, worker, t, end, t + time, fails, true, copy});
    live_[job].push_back(a);
    if (!copy && !copied_[job]) uncopied_.insert({t, a});
    events_.push({end, a});
  }

  // Attempt `a` stops: its worker is idle again.
  void stop(std::size_t a) {
    Attempt& at = attempts_[a];
    at.live = false;
    idle_.insert(at.worker);
    uncopied_.erase({at.start, a});
    auto& l = live_[at.job];
    l.erase(std::remove(l.begin(), l.end(), a), l.end());
  }

  void end_attempt(std::size_t a, double t) {
    const std::size_t job = attempts_[a].job;
    stop(a);
    if (attempts_[a].fails) {
      // Retried first, unless a copy of it still runs.
      if (live_[job].empty()) pending_.push_front(job);
      return;
    }
    done_[job] = 1;
    makespan_ = t;
    durations_.add((t - attempts_[a].start) / weight(job));
    ++finished_;
    while (!live_[job].empty()) stop(live_[job].front());  // the other copy loses
  }

  void dispatch(double t) {
    while (!idle_.empty() && !pending_.empty()) {
      const std::size_t job = pending_.front();
      pending_.pop_front();
      start(job, *idle_.begin(), false, t);
    }
    if (copies_ && pending_.empty()) copy_stragglers(t);
  }

  // A job's weight for the copy rule: its nominal seconds (job_weight's bytes, in time).
  double weight(std::size_t job) const { return std::max(jobs_[job], 1e-9); }

  // Idle workers copy the oldest running jobs that plan/copy_rule says a copy would beat. The
  // model knows each attempt's rate exactly (no heartbeat lag), and the rule's outcome changes
  // only when a job ends, so it is checked at each end only.
  void copy_stragglers(double t) {
    if (finished_ < finished_before_copies(jobs_.size())) return;
    for (auto it = uncopied_.begin(); !idle_.empty() && it != uncopied_.end();) {
      const std::size_t job = attempts_[it->second].job;
      if (!copy_pays(attempts_[it->second].start, attempts_[it->second].full_end, t,
                     durations_.get() * weight(job))) {
        ++it;
        continue;
      }
      it = uncopied_.erase(it);
      copied_[job] = 1;
      start(job, *idle_.begin(), true, t);
    }
  }

  const std::vector<double>& jobs_;
  const std::vector<double>& factors_;
  const double fail_;
  const bool copies_;
  const SimulationModel& m_;
  const std::function<double()>& uniform_;
  std::vector<Attempt> attempts_;
  std::vector<std::vector<std::size_t>> live_;  // per job, its running attempts
  std::vector<char> copied_, done_;
  std::deque<std::size_t> pending_;
  std::set<int> idle_;
  std::set<std::pair<double, std::size_t>> uncopied_;  // running first attempts, oldest first
  using Event = std::pair<double, std::size_t>;        // (time, attempt)
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::size_t finished_ = 0;
  double makespan_ = 0;
  RunningMedian durations_;
};

// Per worker, its slowness: `slow` of them, chosen by the seed, take `factor` times as long.
std::vector<double> worker_factors(int workers, int slow, double factor, Rng& rng) {
  std::vector<double> f(static_cast<std::size_t>(workers), 1.0);
  std::vector<int> order(static_cast<std::size_t>(workers));
  for (int i = 0; i < workers; ++i) order[static_cast<std::size_t>(i)] = i;
  for (int i = 0; i < slow; ++i) {
    const auto k = static_cast<std::size_t>(i) + rng.next() % static_cast<uint64_t>(workers - i);
    std::swap(order[static_cast<std::size_t>(i)], order[k]);
    f[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = factor;
  }
  return f;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

SimulateSpec parse_simulate_spec(const std::string& text) {
  SimulateSpec spec;
  std::vector<std::string_view> parts;
  std::string_view rest = text;
  for (;;) {
    const auto comma = rest.find(',');
    parts.push_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  const double workers = number_in(text, parts[0], 1, kMaxWorkers, "WORKERS");
  if (workers != std::floor(workers)) throw spec_error(text, "WORKERS must be a whole number");
  spec.workers = static_cast<int>(workers);
  for (std::size_t i = 1; i < parts.size(); ++i) parse_option(text, parts[i], spec);
  return spec;
}

double simulate_makespan(const std::vector<double>& job_seconds,
                         const std::vector<double>& worker_factors, double fail_fraction,
                         bool copies, const SimulationModel& model,
                         const std::function<double()>& uniform) {
  if (worker_factors.empty()) throw Error::internal("simulation without workers");
  return Simulation(job_seconds, worker_factors, fail_fraction, copies, model, uniform).run();
}

SimulationResult simulate_plan(const Plan& plan, const SimulateSpec& spec,
                               const SimulationModel& model) {
  SimulationResult r;
  r.spec = spec;
  r.seeds = model.seeds;
  r.jobs = static_cast<int64_t>(plan.jobs.size());
  r.slow_workers = static_cast<int>(std::llround(spec.workers * spec.slow_fraction));
  // Largest first, as the local executor hands them out.
  std::vector<const Job*> order;
  for (const Job& j : plan.jobs) order.push_back(&j);
  std::stable_sort(order.begin(), order.end(), [](const Job* a, const Job* b) {
    return a->read_bytes + a->output_bytes > b->read_bytes + b->output_bytes;
  });
  std::vector<double> seconds;
  double work = 0;
  for (const Job* jp : order) {
    const Job& j = *jp;
    const double read = static_cast<double>(j.read_bytes) / model.bytes_per_second;
    work += read;
    seconds.push_back(model.startup_seconds + read);
  }
  r.ideal_seconds = work / spec.workers;
  std::vector<double> with, without;
  for (int seed = 1; seed <= model.seeds; ++seed) {
    Rng nodes{static_cast<uint64_t>(seed)};
    const auto factors = worker_factors(spec.workers, r.slow_workers, spec.slow_factor, nodes);
    for (const bool copies : {false, true}) {
      Rng attempts{static_cast<uint64_t>(seed) * 0x5851f42d4c957f2dull};
      const std::function<double()> u = [&attempts] { return attempts.uniform(); };
      (copies ? with : without)
          .push_back(simulate_makespan(seconds, factors, spec.fail_fraction, copies, model, u));
    }
  }
  r.makespan_seconds = median_of(with);
  r.makespan_without_copies = median_of(without);
  if (r.ideal_seconds > 0) {
    r.ratio = r.makespan_seconds / r.ideal_seconds;
    r.ratio_without_copies = r.makespan_without_copies / r.ideal_seconds;
  }
  return r;
}

std::string describe_simulation(const SimulationResult& r, int plan_workers) {
  const SimulateSpec& s = r.spec;
  std::string out = fmt::format(
      "simulate         {} workers ({} of them {:g}x slower), {:g}% of job attempts failing; "
      "{} jobs, {:.1f} a worker\n",
      s.workers, r.slow_workers, s.slow_factor, s.fail_fraction * 100, r.jobs,
      static_cast<double>(r.jobs) / s.workers);
  out += fmt::format(
      "                 makespan / ideal {:.2f}x with speculative copies, {:.2f}x without "
      "({:.1f} s, {:.1f} s; ideal {:.1f} s; median of {} seeds)\n",
      r.ratio, r.ratio_without_copies, r.makespan_seconds, r.makespan_without_copies,
      r.ideal_seconds, r.seeds);
  if (plan_workers != s.workers)
    out += fmt::format(
        "                 this plan was made for {} workers; --set simultaneous_worker_limit={} "
        "plans for {}\n",
        plan_workers, s.workers, s.workers);
  return out;
}

}  // namespace zp
