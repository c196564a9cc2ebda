#include "write/store_inventory.hpp"

#include <filesystem>
#include <unordered_set>

#include "core/error.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "write/job_runner.hpp"
#include "write/output_format.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace fs = std::filesystem;

namespace {

struct Written {
  std::unordered_set<std::string> files;    // keys
  std::unordered_set<std::string> folders;  // every folder on the way to a key
  void add(const std::string& key) {
    files.insert(key);
    for (auto slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1))
      folders.insert(key.substr(0, slash));
  }
};

// Every key the plan writes: metadata documents and each array's chunks (a sharded or all-fill
// chunk may be absent; absence is never a question here).
Written written_by(const Plan& plan) {
  Written w;
  const OutputFormat& format = output_format(plan.zarr_format);
  for (const auto& [key, doc] : format.metadata(plan)) w.add(key);
  w.add(format.consolidated(plan).first);
  for (const auto& a : plan.arrays) {
    if (a.num_chunks() == 0) continue;
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    for (const auto& chunk : chunks_in(all))
      for (const auto& key : chunk_keys(a, chunk, format)) w.add(key);
  }
  return w;
}

}  // namespace

std::string ForeignEntries::describe() const {
  std::string out;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    if (i)
      out += i + 1 == examples.size() && count == static_cast<int64_t>(examples.size()) ? " and "
                                                                                        : ", ";
    out += "'" + examples[i] + "'";
  }
  const int64_t more = count - static_cast<int64_t>(examples.size());
  if (more > 0) out += " and " + std::to_string(more) + " more";
  return out;
}

ForeignEntries entries_not_ours(const std::string& root, std::size_t max_examples) {
  const std::string side = StoreState::kFolder;
  Written ours;
  const fs::path plan_file = fs::path(root) / side / "plan.json";
  std::error_code ec;
  // No plan yet: the store was created and nothing but its side folder written.
  if (fs::exists(plan_file, ec)) {
    try {
      ours = written_by(load_plan(plan_file.string()));
    } catch (const Error& e) {
      throw Error::store(
          root,
          std::string("which of its files zarr-parallel wrote is not known (") + e.what() + ")");
    }
  }
  ForeignEntries out;
  auto foreign = [&](const std::string& name) {
    ++out.count;
    if (out.examples.size() < max_examples) out.examples.push_back(name);
  };
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string rel = it->path().lexically_relative(root).generic_string();
    const fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) {
      if (rel == side) {
        it.disable_recursion_pending();  // ours throughout: markers, plan, logs, stats
      } else if (!ours.folders.count(rel)) {
        foreign(rel + "/");
        it.disable_recursion_pending();  // reported as one folder
      }
      continue;
    }
    if (fs::is_regular_file(st)) {
      if (ours.files.count(rel)) continue;
      const auto key = FileStore::key_of_temporary(rel);  // a killed writer's leftover
      if (key && ours.files.count(*key)) continue;
    }
    foreign(rel);  // any other file, a symbolic link, a socket, ...
  }
  if (ec) throw Error::store(root, "cannot list it to see what is in it: " + ec.message());
  return out;
}

}  // namespace zp
