// _zarr_parallel.Preview: the cache a config would write, without writing it. The plan's Zarr
// metadata (what the store's keys would hold) and each output chunk's decoded values, assembled
// from the source as a job assembles them; the Python side (zarr_parallel.preview) wraps it as
// a lazy xarray Dataset. Chunks are read on demand, one at a time.
#include "preview.hpp"

#include <pybind11/stl.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "core/thread_pool.hpp"
#include "exec/cache_run.hpp"
#include "plan/units.hpp"
#include "source/chunk_reader.hpp"
#include "write/job_runner.hpp"
#include "write/output_format.hpp"

namespace py = pybind11;

namespace zp {
namespace {

// The config as given, in Zarr v2 (the metadata xarray reads everywhere; values do not depend on
// it); a config without cache_store or cache_dir gets a cache_dir, since nothing is written.
Config preview_config(const std::string& text, const std::string& base_dir) {
  const std::vector<std::string> v2 = {"zarr_format=2"};
  try {
    return parse_config(text, base_dir, v2);
  } catch (const Error& e) {
    if (std::string(e.what()).find("required: cache_store") == std::string::npos) throw;
  }
  auto with_dir = v2;
  with_dir.push_back("cache_dir=" + std::filesystem::temp_directory_path().string());
  return parse_config(text, base_dir, with_dir);
}

class Preview {
 public:
  Preview(const std::string& config, const std::string& base_dir)
      : prepared_(prepare(preview_config(config, base_dir))), pool_(2) {
    files_ = files_of(prepared_.plan);
    files_.access = prepared_.config.access;  // with its secrets: this process reads the source
    reader_ = std::make_unique<ChunkReader>(files_);
  }

  // {key: document text} of every metadata key the store would hold, consolidated included.
  std::vector<std::pair<std::string, std::string>> metadata() const {
    const OutputFormat& format = output_format(prepared_.plan.zarr_format);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [key, doc] : format.metadata(prepared_.plan))
      out.emplace_back(key, dump_python_json(doc, 1));
    const auto [key, doc] = format.consolidated(prepared_.plan);
    out.emplace_back(key, dump_python_json(doc, 1));
    return out;
  }

  // The decoded values of stored chunk `chunk` of array `name` (its index in the store's chunk
  // grid, as .zarray has it), C order, the whole chunk shape.
  std::string chunk(const std::string& name, const std::vector<int64_t>& chunk) {
    const ArrayPlan& a = array(name);
    std::lock_guard lock(mutex_);  // one reader, one pool: dask's threads take turns
    const Region r = logical_region(a, chunk);
    std::vector<Bytes> out = assemble_unit(a, r, *reader_, pool_);
    return std::string(out.at(0).begin(), out.at(0).end());
  }

 private:
  // The logical output chunk that stored chunk `chunk` holds: the same one, or for a tiled array
  // the one whose stored keys include it (found through the writer's own key mapping).
  Region logical_region(const ArrayPlan& a, const std::vector<int64_t>& chunk) {
    const OutputFormat& format = output_format(prepared_.plan.zarr_format);
    std::vector<int64_t> logical = chunk;
    if (a.stored) {
      auto& keys = stored_keys_[a.name];
      if (keys.empty()) {
        Region all;
        all.lo.assign(a.ndim(), 0);
        for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
        for (const auto& c : chunks_in(all))
          for (const auto& key : chunk_keys(a, c, format)) keys.emplace(key, c);
      }
      const auto it = keys.find(format.chunk_key(a.name, chunk));
      if (it == keys.end())
        throw Error::config("preview", "no stored chunk at that index of array '" + a.name + "'");
      logical = it->second;
    }
    Region r;
    if (logical.size() != a.ndim())
      throw Error::config("preview", "wrong number of chunk indices for array '" + a.name + "'");
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      if (logical[d] < 0 || logical[d] >= a.chunks_along(d))
        throw Error::config("preview", "chunk index out of range for array '" + a.name + "'");
      r.lo.push_back(logical[d]);
      r.hi.push_back(logical[d] + 1);
    }
    return r;
  }

  const ArrayPlan& array(const std::string& name) const {
    for (const auto& a : prepared_.plan.arrays)
      if (a.name == name) return a;
    throw Error::config("preview", "no array '" + name + "' in the plan");
  }

  Prepared prepared_;
  ThreadPool pool_;
  Dataset files_;
  std::unique_ptr<ChunkReader> reader_;
  std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::vector<int64_t>>> stored_keys_;  // tiled arrays
};

}  // namespace

void bind_preview(py::module_& m, const EngineCall& call) {
  py::class_<Preview>(m, "Preview")
      .def(py::init([call](const std::string& config, const std::string& base_dir) {
        std::unique_ptr<Preview> p;
        call([&] {
          p = std::make_unique<Preview>(config, base_dir);
          return std::string();
        });
        return p;
      }))
      .def("metadata",
           [call](const Preview& p) {
             std::vector<std::pair<std::string, std::string>> out;
             call([&] {
               out = p.metadata();
               return std::string();
             });
             return out;
           })
      .def("chunk", [call](Preview& p, const std::string& name, const std::vector<int64_t>& chunk) {
        return py::bytes(call([&] { return p.chunk(name, chunk); }));
      });
}

}  // namespace zp
