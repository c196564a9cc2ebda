// _zarr_parallel: the binding under the `zarr_parallel` package. Configs cross as JSON text (JSON
// is YAML), results as JSON text; errors become Python exceptions with the CLI's messages. The GIL
// is released while the engine works.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <filesystem>
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

// Runs `work` (an executor: minutes to hours) in a thread of its own while this thread waits
// without the GIL and looks at Python's signals every 50 ms, so Ctrl-C and Jupyter's "interrupt
// kernel" stop the run as they stop the CLI: SIGINT sets the executors' flag at once (the relay),
// they stop their workers and throw Error(Interrupted), and Python's own exception (its handler's
// KeyboardInterrupt) is raised with the engine's message. A run that finished before it noticed
// is complete; the exception is raised all the same.
template <typename F>
void run_interruptible(F&& work) {
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

// run() and finish() load the plan begin() wrote or read: only with its digest.
const std::string& required_digest(const std::string& plan_sha256) {
  if (plan_sha256.empty())
    throw Error::internal("run/finish need the plan_sha256 begin() returned");
  return plan_sha256;
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
                        {"plan_sha256", s.plan_sha256},  // of the text begin_cache wrote or read
                        {"pending", s.pending},
                        {"store", cfg.cache_store},
                        {"threads_per_worker", s.plan.threads_per_worker},
                        {"started", s.started},
                        {"recommendations", plan_to_json(s.plan, false)["recommendations"]}}
      .dump();
}

// The series, local and slurm executors, then the store's completion, for a session begin()
// prepared: "done", or "submitted" (slurm, await_completion: false).
// `plan_sha256`: what begin() returned; the plan file is refused when it changed since.
std::string run_session(const std::string& config, const std::string& base_dir,
                        const std::string& plan_path, const std::vector<int64_t>& pending,
                        double started, const std::string& plan_sha256) {
  const Config cfg = engine_call([&] { return config_of(config, base_dir); });
  CacheSession s;
  s.plan_path = plan_path;
  s.pending = pending;
  s.started = started;
  bool finished = false;
  run_interruptible([&] {
    s.plan = load_plan(plan_path, required_digest(plan_sha256));  // its store: the file's
    s.plan_sha256 = plan_sha256;
    s.build_root = s.plan.store;
    s.target = canonical_path(cfg.cache_store);
    // The workers' secrets for this call only: nothing stays in the Python process's
    // environment.
    finished = run_jobs(cfg, s, cfg.access);
    if (finished) finish_cache(cfg, s);
  });
  return finished ? "done" : "submitted";
}

// A whole run in one engine call, as the CLI runs it: never asks, `yes` answers for the user.
int whole_run(const std::string& config, const std::string& base_dir, bool yes,
              int (*run)(const Config&, const CacheOptions&)) {
  const Config cfg = engine_call([&] { return config_of(config, base_dir); });
  int code = 0;
  run_interruptible([&] {
    CacheOptions opt;
    opt.yes = yes;
    opt.ask = false;
    code = run(cfg, opt);
  });
  return code;
}

// deploy_mode mpi: every rank of `mpirun -n N python script.py` calls this (as the CLI's ranks).
int cache_mpi(const std::string& config, const std::string& base_dir, bool yes) {
  return whole_run(config, base_dir, yes, &run_cache_mpi);
}

// A store on S3 (deploy_mode series or local): the whole run in one call, as the CLI runs it.
int cache_object_store(const std::string& config, const std::string& base_dir, bool yes) {
  return whole_run(config, base_dir, yes, &run_object_store_cache);
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
  m.def("cache_object_store", &cache_object_store);
  m.def("finish", [](const std::string& config, const std::string& base_dir,
                     const std::string& plan_path, double started, const std::string& plan_sha256) {
    engine_call([&] {
      CacheSession s;
      s.plan = load_plan(plan_path, required_digest(plan_sha256));
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
         const std::string& worker_id, const std::string& secrets, const std::string& plan_sha256) {
        engine_call([&] {
          std::string digest;
          Plan plan = load_plan(plan_path, plan_sha256, &digest);
          plan.access.take_handed(secrets);
          run_worker_jobs(plan, jobs, threads > 0 ? threads : plan.threads_per_worker, worker_id,
                          {}, {}, "", digest);
          return 0;
        });
      },
      pybind11::arg("plan_path"), pybind11::arg("jobs"), pybind11::arg("threads"),
      pybind11::arg("worker_id"), pybind11::arg("secrets") = "", pybind11::arg("plan_sha256") = "");
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
