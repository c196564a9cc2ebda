// _zarr_parallel: the binding under the `zarr_parallel` package. Configs cross as JSON text (JSON
// is YAML), results as JSON text; errors become Python exceptions with the CLI's messages. The GIL
// is released while the engine works.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "exec/cache_run.hpp"
#include "exec/executor.hpp"
#include "exec/inspect_source.hpp"
#include "exec/make_refs.hpp"
#include "exec/object_store_cache.hpp"
#include "exec/termination.hpp"
#include "plan/plan_json.hpp"
#include "plan/plan_svg.hpp"
#include "preview.hpp"
#include "source/scan_cache.hpp"
#include "store/secrets_channel.hpp"
#include "store/url_scope.hpp"
#include "write/remote_plan.hpp"
#include "write/store_inventory.hpp"
#include "write/store_ownership.hpp"

namespace py = pybind11;
using namespace zp;

namespace {

Config config_of(const std::string& text, const std::string& base_dir) {
  return parse_config(text, base_dir);
}

// Raises a Python exception of class `type` with our message.
// Bytes that are not UTF-8 (a file name, a corrupt attribute) are replaced, so the message still
// reaches Python instead of an empty exception.
[[noreturn]] void raise(PyObject* type, const std::string& msg) {
  PyObject* text = PyUnicode_DecodeUTF8(msg.data(), static_cast<Py_ssize_t>(msg.size()), "replace");
  if (text) {
    PyErr_SetObject(type, text);
    Py_DECREF(text);
  } else {
    PyErr_SetString(type, "zarr-parallel error (message not decodable)");
  }
  throw py::error_already_set();
}

// Raises what Python's signal handler raised; a bare KeyboardInterrupt gets the engine's message
// (workers stopped, how to resume).
[[noreturn]] void raise_interrupt(PyObject* type, PyObject* value, PyObject* trace,
                                  std::exception_ptr failure) {
  std::string msg;
  try {
    if (failure) std::rethrow_exception(failure);
  } catch (const Error& e) {
    msg = redact_urls_in(e.what());
  } catch (...) {
  }
  if (PyErr_GivenExceptionMatches(type, PyExc_KeyboardInterrupt) && !msg.empty()) {
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(trace);
    raise(PyExc_KeyboardInterrupt, msg);
  }
  PyErr_Restore(type, value, trace);
  throw py::error_already_set();
}

// Runs `f` without the GIL and turns our errors into the Python exceptions the original raised:
// ValueError for bad arguments, FileNotFoundError for missing sources, OSError for I/O.
template <typename F>
auto engine_call(F&& f) {
  try {
    py::gil_scoped_release release;
    return f();
  } catch (const Error& e) {
    const std::string msg = redact_urls_in(e.what());  // a message never shows a secret
    switch (e.kind()) {
      case ErrorKind::Config:
      case ErrorKind::Recommendations:
        raise(PyExc_ValueError, msg);
      case ErrorKind::Source:
        raise(e.missing() ? PyExc_FileNotFoundError : PyExc_OSError, msg);
      case ErrorKind::Store:
        raise(PyExc_OSError, msg);
      case ErrorKind::Transient:  // a remote source kept failing: running again may succeed
        raise(PyExc_ConnectionError, msg);
      case ErrorKind::Interrupted:  // stopped by a signal: workers stopped, store resumable
        raise(PyExc_KeyboardInterrupt, msg);
      default:
        raise(PyExc_RuntimeError, msg);
    }
  }
}

// Calls the engine's thread asks Python's main thread to make: dask's client runs there, as in
// any script, and Ctrl-C reaches it there.
class MainThreadCalls {
 public:
  // From the engine's thread: runs `f` on the main thread; returns when it has, or throws.
  void call(const std::function<void()>& f) {
    std::unique_lock lock(mutex_);
    pending_ = &f;
    done_ = false;
    cv_.wait(lock, [&] { return done_; });
    if (failure_) std::rethrow_exception(failure_);
  }

  // From the main thread, holding the GIL: makes the call waiting, if any. A Python exception
  // it raised is fetched into `type`, `value`, `trace` (the engine's thread gets an Error); when
  // one is there already (Ctrl-C), the call is not made.
  void serve(PyObject*& type, PyObject*& value, PyObject*& trace) {
    const std::function<void()>* f = nullptr;
    {
      std::lock_guard lock(mutex_);
      f = pending_;
      pending_ = nullptr;
    }
    if (!f) return;
    std::exception_ptr failure;
    try {
      if (type) throw Error(ErrorKind::Interrupted, "the cache run was interrupted");
      (*f)();
    } catch (py::error_already_set& e) {
      e.restore();
      PyErr_Fetch(&type, &value, &trace);
      failure = std::make_exception_ptr(
          Error(ErrorKind::Job,
                "the jobs failed in Python (see its exception); the store is "
                "left unfinished: run again with resume=True"));
    } catch (...) {
      failure = std::current_exception();
    }
    std::lock_guard lock(mutex_);
    failure_ = failure;
    done_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  const std::function<void()>* pending_ = nullptr;
  bool done_ = false;
  std::exception_ptr failure_;
};

// Runs `work` (an executor: minutes to hours) in a thread of its own while this thread waits
// without the GIL and looks at Python's signals every 50 ms, so Ctrl-C and Jupyter's "interrupt
// kernel" stop the run as they stop the CLI: SIGINT sets the executors' flag at once (the relay),
// they stop their workers and throw Error(Interrupted), and Python's own exception (its handler's
// KeyboardInterrupt) is raised with the engine's message. A run that finished before it noticed
// is complete; the exception is raised all the same.
// `calls`: Python calls the work makes, on this thread.
template <typename F>
void run_interruptible(F&& work, MainThreadCalls* calls = nullptr) {
  const InterruptRelay relay;
  std::exception_ptr failure;
  std::atomic<bool> over{false};
  std::thread runner([&] {
    try {
      work();
    } catch (...) {
      failure = std::current_exception();
    }
    over = true;
  });
  PyObject *type = nullptr, *value = nullptr, *trace = nullptr;  // what Python's handler raised
  {
    py::gil_scoped_release release;
    while (!over) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      py::gil_scoped_acquire acquire;
      if (calls) calls->serve(type, value, trace);
      if (!type && PyErr_CheckSignals() != 0) {
        PyErr_Fetch(&type, &value, &trace);
        request_termination(SIGINT);
      }
    }
    runner.join();
  }
  if (type) raise_interrupt(type, value, trace, failure);
  if (failure)
    engine_call([&] {
      std::rethrow_exception(failure);
      return 0;
    });
}

// What begin() tells Python: whether the cache was hit, stopped by recommendations, or is ready
// to run, and the session's plan file and pending jobs.
std::string begin_session(const std::string& config, const std::string& base_dir, bool yes) {
  const Config cfg = config_of(config, base_dir);
  CacheOptions opt;
  opt.yes = yes;
  opt.ask = false;
  opt.modes = {"series", "local", "slurm", "dask_distributed"};
  const CacheSession s = begin_cache(cfg, opt);
  const char* status = s.status == CacheSession::Status::Hit       ? "hit"
                       : s.status == CacheSession::Status::Stopped ? "stopped"
                                                                   : "ready";
  return nlohmann::json{{"status", status},
                        {"decision", decision_name(s.decision.kind)},
                        {"reason", s.decision.reason},
                        {"plan_path", s.plan_path},
                        {"plan_sha256", s.plan_path.empty() ? "" : plan_file_sha256(s.plan_path)},
                        {"pending", s.pending},
                        {"store", cfg.cache_store},
                        {"threads_per_worker", s.plan.threads_per_worker},
                        {"started", s.started},
                        {"recommendations", plan_to_json(s.plan, false)["recommendations"]}}
      .dump();
}

// The series, local and slurm executors, then the store's completion, for a session begin()
// prepared: "done", or "submitted" (slurm, await_completion: false).
std::string run_session(const std::string& config, const std::string& base_dir,
                        const std::string& plan_path, const std::vector<int64_t>& pending,
                        double started) {
  const Config cfg = engine_call([&] { return config_of(config, base_dir); });
  CacheSession s;
  s.plan_path = plan_path;
  s.pending = pending;
  s.started = started;
  bool finished = false;
  run_interruptible([&] {
    s.plan = load_plan(plan_path);  // its store: where the plan file is
    s.build_root = s.plan.store;
    s.target = canonical_path(cfg.cache_store);
    // The workers' secrets for this call only: nothing stays in the Python process's
    // environment.
    finished = run_jobs(cfg, s, cfg.access);
    if (finished) finish_cache(cfg, s);
  });
  return finished ? "done" : "submitted";
}

constexpr const char* kDaskSecrets =
    "deploy_mode dask_distributed with a cache_store on S3: the dask workers take their "
    "credentials from their own environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE), as s3fs does for to_zarr; secrets in the config (key, secret, token, headers) "
    "are not sent to them: move them into the environment of the client and its workers";

// A whole run in one engine call, as the CLI runs it: never asks, `yes` answers for the user.
int whole_run(const std::string& config, const std::string& base_dir, bool yes,
              int (*run)(const Config&, const CacheOptions&)) {
  const Config cfg = engine_call([&] { return config_of(config, base_dir); });
  int code = 0;
  run_interruptible([&] {
    CacheOptions opt;
    opt.yes = yes;
    opt.ask = false;
    opt.every_rank_throws = true;  // mpi: every rank's cache() raises rank 0's error
    code = run(cfg, opt);
  });
  return code;
}

// deploy_mode mpi: every rank of `mpirun -n N python script.py` calls this (as the CLI's ranks).
int cache_mpi(const std::string& config, const std::string& base_dir, bool yes) {
  return whole_run(config, base_dir, yes, &run_cache_mpi);
}

// A store on S3: the whole run in one call, as the CLI runs it, one S3 session and lease from
// the claim to the completion marker. deploy_mode dask_distributed: `run_jobs(plan_url,
// plan_sha256, store_options, pending, threads)` runs the jobs on the cluster meanwhile, on this
// (the main) thread; its workers read the plan from the prefix and take their credentials from
// their own environment, so the config may hold none (they would have to travel in the tasks).
int cache_object_store(const std::string& config, const std::string& base_dir, bool yes,
                       const py::object& run_jobs) {
  if (run_jobs.is_none())
    return whole_run(config, base_dir, yes, [](const Config& c, const CacheOptions& o) {
      return run_object_store_cache(c, o);
    });
  const Config cfg = engine_call([&] {
    Config c = config_of(config, base_dir);
    if (c.access.has_secrets() || c.cache_options.has_secrets())
      throw Error::config("cache_storage_options", kDaskSecrets);
    return c;
  });
  MainThreadCalls calls;
  const py::handle fn = run_jobs;
  const ObjectStoreExecutor exec = [&](const ObjectStoreJobs& j) {
    const std::string options = j.plan.access.store.public_json().dump();
    calls.call(
        [&] { fn(j.plan_url, j.plan_sha256, options, j.pending, j.plan.threads_per_worker); });
  };
  int code = 0;
  run_interruptible(
      [&] {
        CacheOptions opt;
        opt.yes = yes;
        opt.ask = false;
        code = run_object_store_cache(cfg, opt, exec);
      },
      &calls);
  return code;
}

// `access`: JSON {storage_options, remote_protocol, remote_options} as the config spells them.
AccessOptions access_of(const std::string& uri, const std::string& access_json) {
  const auto j = nlohmann::json::parse(access_json.empty() ? "{}" : access_json);
  AccessOptions access;
  access.target =
      StorageOptions::from_json(j.value("storage_options", nlohmann::json()), "storage_options");
  if (j.contains("remote_options") && !j["remote_options"].is_null()) {
    access.remote = StorageOptions::from_json(j["remote_options"], "remote_options");
    access.remote_given = true;
  }
  if (j.contains("remote_protocol") && j["remote_protocol"].is_string())
    access.remote_protocol = j["remote_protocol"].get<std::string>();
  access.scope_to(uri);
  return access;
}

void bind_planning(py::module_& m) {
  bind_preview(m, [](const std::function<std::string()>& f) { return engine_call(f); });
  m.def("plan", [](const std::string& config, const std::string& base_dir) {
    return engine_call([&] {
      return nonfinite_markers_to_tokens(
          plan_to_json(prepare(config_of(config, base_dir)).plan).dump());
    });
  });
  m.def("plan_svg", [](const std::string& config, const std::string& base_dir,
                       const std::vector<std::string>& dims) {
    return engine_call([&] { return plan_svg(prepare(config_of(config, base_dir)).plan, dims); });
  });
}

void bind_cache_session(py::module_& m) {
  m.def("begin", [](const std::string& config, const std::string& base_dir, bool yes) {
    return engine_call([&] { return begin_session(config, base_dir, yes); });
  });
  m.def("run", &run_session);
  m.def("store_of", [](const std::string& config, const std::string& base_dir) {
    return engine_call([&] { return config_of(config, base_dir).cache_store; });
  });
  m.def("cache_mpi", &cache_mpi);
  m.def("cache_object_store", &cache_object_store, py::arg("config"), py::arg("base_dir"),
        py::arg("yes"), py::arg("run_jobs") = py::none());
  m.def("finish", [](const std::string& config, const std::string& base_dir,
                     const std::string& plan_path, double started) {
    engine_call([&] {
      CacheSession s;
      s.plan = load_plan(plan_path);
      s.plan_path = plan_path;
      s.started = started;
      // dask: a speculative copy that lost (issue 34) and was killed with the cluster may have
      // left temporaries in the store.
      remove_stale_temporaries(store_root_of_plan(plan_path), s.plan);
      finish_cache(config_of(config, base_dir), s);
      return 0;
    });
  });
  m.def("release", [](const std::string& config, const std::string& base_dir) {
    // After a failed run: the store lock begin() took is let go (the process lives on).
    engine_call([&] {
      release_cache_lock(canonical_path(config_of(config, base_dir).cache_store));
      return 0;
    });
  });
}

void bind_workers(py::module_& m) {
  // The secrets a dask worker is handed with its task (secrets_of), in memory only.
  m.def("secrets_of", [](const std::string& config, const std::string& base_dir) {
    return engine_call([&] { return config_of(config, base_dir).access.transfer_text(); });
  });
  m.def(
      "run_worker",
      [](const std::string& plan_path, const std::vector<int64_t>& jobs, int threads,
         const std::string& worker_id, const std::string& secrets, const std::string& plan_sha256,
         const std::string& store_options) {
        engine_call([&] {
          // A plan on S3 (a store on S3): read from the prefix; credentials from this worker's
          // environment, never the task's arguments.
          const bool remote = is_remote_plan(plan_path);
          Plan plan =
              remote ? load_remote_plan(plan_path, plan_sha256, handed_store_access(store_options))
                     : load_plan(plan_path, plan_sha256);
          if (!remote) plan.access.take_handed(secrets);
          run_worker_jobs(plan, jobs, threads > 0 ? threads : plan.threads_per_worker, worker_id);
          return 0;
        });
      },
      pybind11::arg("plan_path"), pybind11::arg("jobs"), pybind11::arg("threads"),
      pybind11::arg("worker_id"), pybind11::arg("secrets") = "", pybind11::arg("plan_sha256") = "",
      pybind11::arg("store_options") = "");
}

void bind_sources(py::module_& m) {
  m.def("refs", [](const std::vector<std::string>& sources, const std::string& out,
                   const std::string& concat_dim, int64_t inline_threshold, bool relative,
                   const std::string& group) {
    return engine_call([&] {
      const RefsRequest r{.sources = sources,
                          .out = out,
                          .concat_dim = concat_dim,
                          .group = group,
                          .inline_threshold = inline_threshold,
                          .relative = relative};
      return make_refs(r).dump();
    });
  });
  m.def(
      "inspect",
      [](const std::string& uri, const std::string& engine, const std::string& group,
         const std::string& access_json, const std::string& filter_json) {
        return engine_call([&] {
          const AccessOptions access = access_of(uri, access_json);
          const auto filter =
              filter_json.empty() ? nlohmann::json() : nlohmann::json::parse(filter_json);
          return nonfinite_markers_to_tokens(
              inspect_source(uri, engine, "", group, access, filter).dump());
        });
      },
      pybind11::arg("uri"), pybind11::arg("engine"), pybind11::arg("group"),
      pybind11::arg("access") = "", pybind11::arg("filter_by_keys") = "");
}

}  // namespace

PYBIND11_MODULE(_zarr_parallel, m) {
  m.doc() = "zarr-parallel engine (use the zarr_parallel package)";
  m.attr("__version__") = ZP_VERSION;
  set_worker_executable(std::getenv("ZP_WORKER_EXE") ? std::getenv("ZP_WORKER_EXE") : ZP_CLI_PATH);
  set_scan_executable(std::getenv("ZP_WORKER_EXE") ? std::getenv("ZP_WORKER_EXE") : ZP_CLI_PATH);
  bind_planning(m);
  bind_cache_session(m);
  bind_workers(m);
  bind_sources(m);
}
