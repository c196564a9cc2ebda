// _zarr_parallel.Preview: the cache a config would write, without writing it. The plan's Zarr
// metadata (what the store's keys would hold) and each output chunk's decoded values, assembled
// from the source as a job assembles them; the Python side (zarr_parallel.preview) wraps it as
// a lazy xarray Dataset. Chunks are read on demand, one at a time.
#include "preview.hpp"

#include <pybind11/stl.h>

#include <filesystem>
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

  // The decoded values of output chunk `chunk` of array `name`, C order, the whole chunk shape.
  std::string chunk(const std::string& name, const std::vector<int64_t>& chunk) {
    const ArrayPlan& a = array(name);
    if (a.stored)
      throw Error::config("preview",
                          "array '" + name + "' is tiled: preview the untiled selection");
    if (chunk.size() != a.ndim())
      throw Error::config("preview", "chunk of " + std::to_string(chunk.size()) +
                                         " dimensions for array '" + name + "'");
    Region r;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      if (chunk[d] < 0 || chunk[d] >= a.chunks_along(d))
        throw Error::config("preview", "chunk index out of range for array '" + name + "'");
      r.lo.push_back(chunk[d]);
      r.hi.push_back(chunk[d] + 1);
    }
    std::lock_guard lock(mutex_);  // one reader, one pool: dask's threads take turns
    std::vector<Bytes> out = assemble_unit(a, r, *reader_, pool_);
    return std::string(out.at(0).begin(), out.at(0).end());
  }

 private:
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
