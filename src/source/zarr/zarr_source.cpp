#include "source/zarr/zarr_source.hpp"

#include "core/error.hpp"
#include "source/source_json.hpp"
#include "source/zarr/zarr_v2_source.hpp"
#include "source/zarr/zarr_v3_source.hpp"

namespace zp {

namespace {

// Group paths of a reference set ("a", "a/b"): folders holding a .zgroup, below `prefix`.
std::vector<std::string> groups_below(const ReferenceSet& refs, const std::string& prefix) {
  std::vector<std::string> out;
  const std::string tail = "/.zgroup";
  for (const auto& [key, ref] : refs.explicit_refs)  // metadata keys are never generated
    if (key.size() > tail.size() + prefix.size() && key.rfind(prefix, 0) == 0 &&
        key.compare(key.size() - tail.size(), tail.size(), tail) == 0)
      out.push_back(key.substr(0, key.size() - tail.size()));
  return out;
}

}  // namespace

Dataset dataset_from_references(const ReferenceSet& refs, const std::string& uri,
                                const std::string& engine, const std::string& group_in,
                                SourceAccess* access_in) {
  SourceAccess local_only = SourceAccess::local_only();
  SourceAccess& access = access_in ? *access_in : local_only;
  AccessOptions opts = access.options();
  opts.chunks_remote_role = engine == "kerchunk";
  auto build = [&](const ReferenceSet& r) {
    if (engine == "zarr" && is_zarr_v3(r))
      return dataset_from_zarr_v3(r, uri, access, opts.data_role());
    return dataset_from_zarr_v2(r, uri, engine, access, opts.data_role());
  };
  std::string group = group_in;
  while (!group.empty() && group.back() == '/') group.pop_back();
  while (!group.empty() && group.front() == '/') group.erase(0, 1);
  if (group.empty()) {
    Dataset ds = as_source_error(uri, [&] { return build(refs); });
    ds.access = opts;
    if (ds.groups.empty()) ds.groups = groups_below(refs, "");
    return ds;
  }
  // The group's keys, as a store of their own.
  const std::string prefix = group + "/";
  const ReferenceSet sub = refs.below(prefix);
  if (!sub.contains(".zgroup") && !sub.contains("zarr.json")) {
    std::string known;
    for (const auto& g : groups_below(refs, "")) known += (known.empty() ? "" : ", ") + g;
    throw Error::config("group", "no group '" + group + "' in " + uri +
                                     (known.empty() ? " (it has none)" : " (has: " + known + ")"));
  }
  Dataset ds = as_source_error(uri, [&] {
    if (engine == "zarr" && is_zarr_v3(refs))
      refuse_v3_groups_on_path(refs, group, uri, access, opts.data_role());
    return build(sub);
  });
  ds.access = opts;
  ds.group = group;
  if (ds.groups.empty()) ds.groups = groups_below(refs, prefix);
  return ds;
}

}  // namespace zp
