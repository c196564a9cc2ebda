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

// What the store at `root` holds of ours, from its plan (none yet: only the side folder is ours).
Written written_in(const std::string& root) {
  const fs::path plan_file = fs::path(root) / StoreState::kFolder / "plan.json";
  std::error_code ec;
  if (!fs::exists(plan_file, ec)) return {};
  try {
    return written_by(load_plan(plan_file.string()));
  } catch (const Error& e) {
    throw Error::store(root, std::string("which of its files zarr-parallel wrote is not known (") +
                                 e.what() +
                                 "), so it deletes none: remove the store yourself to "
                                 "rebuild it");
  }
}

enum class Found { Ours, OurTemporary, Foreign };

// Calls visit(relative path, absolute path, Found) for each entry of the store, without following
// symbolic links. A foreign folder is visited once, not entered; the side folder is entered only
// when `into_side` (all of it is ours; its temporaries are visited as such).
template <class Visit>
void walk(const std::string& root, const Written& ours, bool into_side, Visit&& visit) {
  const std::string side = StoreState::kFolder;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string rel = it->path().lexically_relative(root).generic_string();
    const fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    const bool in_side = rel == side || rel.rfind(side + "/", 0) == 0;
    if (fs::is_directory(st)) {
      if (in_side) {
        if (!into_side) it.disable_recursion_pending();
      } else if (!ours.folders.count(rel)) {
        visit(rel + "/", it->path(), Found::Foreign);
        it.disable_recursion_pending();
      }
      continue;
    }
    if (fs::is_regular_file(st)) {
      const auto key = FileStore::key_of_temporary(rel);  // a killed writer's leftover
      if (in_side || ours.files.count(rel)) {
        visit(rel, it->path(), key ? Found::OurTemporary : Found::Ours);
        continue;
      }
      if (key && ours.files.count(*key)) {
        visit(rel, it->path(), Found::OurTemporary);
        continue;
      }
    }
    visit(rel, it->path(), Found::Foreign);  // any other file, a symbolic link, a socket, ...
  }
  if (ec) throw Error::store(root, "cannot list it to see what is in it: " + ec.message());
}

}  // namespace

ForeignEntries entries_not_ours(const std::string& root, std::size_t max_examples) {
  ForeignEntries out;
  walk(root, written_in(root), false, [&](const std::string& rel, const fs::path&, Found f) {
    if (f != Found::Foreign) return;
    ++out.count;
    if (out.examples.size() < max_examples) out.examples.push_back(rel);
  });
  return out;
}

void remove_stale_temporaries(const std::string& root, const Plan& plan) {
  std::vector<std::string> stale;
  walk(root, written_by(plan), true, [&](const std::string& rel, const fs::path&, Found f) {
    if (f == Found::OurTemporary) stale.push_back(rel);
  });
  // Removed as keys (no link followed on the way), not by the paths seen during the walk.
  const FileStore store(root);
  for (const auto& key : stale) store.remove(key);
}

std::unordered_set<std::string> keys_written_by(const Plan& plan) {
  return written_by(plan).files;
}

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

}  // namespace zp
