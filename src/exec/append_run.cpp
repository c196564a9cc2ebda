#include "exec/append_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/json_nonfinite.hpp"
#include "exec/progress.hpp"
#include "plan/append_plan.hpp"
#include "plan/plan_json.hpp"
#include "store/file_store.hpp"
#include "write/output_format.hpp"
#include "write/store_inventory.hpp"
#include "write/store_ownership.hpp"
#include "write/store_state.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

// A transform whose result depends on the whole length along `dim` ("" none): appended chunks
// would not be what a rebuild writes.
std::string length_dependent(const Config& cfg, const std::string& dim) {
  for (std::size_t i = 0; i < cfg.preprocessors.size(); ++i) {
    const auto& p = cfg.preprocessors[i];
    const std::string type = p.value("type", "");
    const std::string where = fmt::format("preprocessors[{}] ({})", i, type);
    const std::string along = p.value("dim", "");
    if (type == "tiled") return where + ": its tiles depend on the whole length";
    if ((type == "roll" || type == "reverse_axis") && (along == dim || along == cfg.concat_dim))
      return where + " along " + along + " depends on the whole length";
    if (type == "isel" && (p.contains(dim) || p.contains(cfg.concat_dim)))
      return where + " along " + dim + ": index ranges may count from the end";
  }
  return "";
}

// An interrupted append's record ({dim, old_length}) replaces what the store's metadata says:
// its arrays' documents may already be the new ones.
void apply_record(const StoreState& state, const Plan& fresh, AppendShape& shape) {
  const auto rec = state.append_record();
  if (!rec) return;
  const auto bad = [&shape] { shape.why = "its record of an interrupted append is damaged"; };
  if (!rec->is_object() || !rec->contains("dim") || !(*rec)["dim"].is_string() ||
      !rec->contains("old_length") || !(*rec)["old_length"].is_object())
    return bad();
  AppendShape out{"", (*rec)["dim"].get<std::string>(), {}, 0, 0};
  for (const ArrayPlan& a : fresh.arrays) {
    const auto d = std::find(a.dims.begin(), a.dims.end(), out.dim);
    if (d == a.dims.end()) continue;
    const int64_t now = a.shape[static_cast<std::size_t>(d - a.dims.begin())];
    const json& v = (*rec)["old_length"].value(a.name, json());
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > now) return bad();
    out.old_length[a.name] = v.get<int64_t>();
    out.from = std::max(out.from, v.get<int64_t>());
    out.to = std::max(out.to, now);
  }
  if (shape.why.empty()) shape = out;
}

// The stored plan's arrays map their first old_length positions to the same source positions as
// the grown plan's (the old data is a prefix of the new): "" when they do.
std::string prefix_problem(const StoreState& state, const Plan& fresh, const AppendShape& shape) {
  Plan old;
  try {
    old = load_store_plan(state.plan_path());
  } catch (const Error& e) {
    return std::string("its saved plan cannot be read: ") + e.what();
  }
  if (old.files.size() > fresh.files.size() ||
      !std::equal(old.files.begin(), old.files.end(), fresh.files.begin()))
    return "the files it was made from are not the first files of the source now";
  for (const ArrayPlan& a : fresh.arrays) {
    const auto was = std::find_if(old.arrays.begin(), old.arrays.end(),
                                  [&](const ArrayPlan& o) { return o.name == a.name; });
    if (was == old.arrays.end() || was->dims != a.dims) return a.name + " is not in its plan";
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      const auto len = shape.old_length.find(a.name);
      const bool grown = a.dims[d] == shape.dim && len != shape.old_length.end();
      const int64_t n = grown ? len->second : a.shape[d];
      if (was->shape[d] < n || was->index[d].sliced(0, n) != a.index[d].sliced(0, n))
        return a.name + " along " + a.dims[d] + " would not keep its values where they are";
    }
  }
  return "";
}

}  // namespace

Decision confirm_append(const Config& cfg, CacheSession& session, const Decision& tentative,
                        AppendShape& shape) {
  FileStore store(session.target);
  StoreState state(store);
  Plan plan = session.plan;  // a rebuild writes the plan as made, not with the store's chunks
  adopt_store_chunks(plan, store);
  shape = append_shape(plan, store);
  apply_record(state, plan, shape);
  std::string why = shape.why;
  // A whole-length transform is the reason first (a tiled store's shapes also differ in kind).
  if (!why.empty() || !shape.dim.empty())
    if (auto l = length_dependent(cfg, shape.dim.empty() ? cfg.concat_dim : shape.dim); !l.empty())
      why = l;
  if (why.empty() && !shape.dim.empty()) why = prefix_problem(state, plan, shape);
  if (!why.empty())
    return {Decision::Kind::Rebuild, "",
            tentative.reason + "; it cannot be appended: " + why +
                "; building a replacement beside it"};
  session.plan = std::move(plan);
  if (shape.dim.empty())
    return {Decision::Kind::Hit, session.target,
            tentative.reason +
                ", which adds nothing to the selection: the store is current (its sources record "
                "is updated)"};
  return {Decision::Kind::Append, session.target,
          fmt::format("{}, after its end along {}: extending it from {} to {} (old chunks kept)",
                      tentative.reason, shape.dim, shape.from, shape.to)};
}

void start_append(const Config& cfg, const AppendShape& shape, CacheSession& session) {
  Plan& plan = session.plan;
  restrict_to_tail(plan, shape.dim, shape.old_length);
  session.build_root = session.target;
  plan.store = session.target;
  plan.store_id = store_id_of(session.target).value_or("");
  FileStore store(session.target);
  StoreState state(store);
  const std::string plan_text = plan_to_json(plan).dump();
  const std::string digest = sha256_hex(plan_text);
  session.plan_sha256 = digest;  // what this run's workers must load
  const json record = {{"dim", shape.dim}, {"old_length", shape.old_length}};
  const auto started = state.started();
  // The same append interrupted: its done jobs wrote what this plan's would (same plan, same
  // bytes).
  const bool same = state.append_record() == record && started && started->is_object() &&
                    started->value("plan_sha256", "") == digest;
  if (!same) {
    state.write_append(record);  // first: from here the store is an append in progress
    state.clear_done();
  }
  remove_stale_temporaries(session.target, plan);
  state.write_plan(plan_text);
  state.write_started(cfg.content_hash(), digest);
  state.sync();
  if (same) log_line(cfg.log_level, 1, "resuming the interrupted append of " + session.target);
}

Decision preview_decision(const Config& cfg, Plan& plan) {
  CacheSession s;
  s.target = canonical_path(cfg.cache_store);
  Decision d;
  try {
    d = decide(s.target, staging_path_for(s.target), cfg);
  } catch (const Error& e) {
    return {Decision::Kind::Rebuild, "", std::string("a cache run would stop: ") + e.what()};
  }
  if (d.kind != Decision::Kind::Append) return d;
  s.plan = plan;
  AppendShape shape;
  d = confirm_append(cfg, s, d, shape);
  if (d.kind != Decision::Kind::Append) return d;
  restrict_to_tail(s.plan, shape.dim, shape.old_length);
  plan = std::move(s.plan);
  return d;
}

void record_sources(const CacheSession& session) {
  FileStore store(session.target);
  StoreState state(store);
  state.write_sources(fingerprints_json(session.plan.sources));
  state.sync();
}

void finish_append(const Config& cfg, const Plan& plan, const std::string& target) {
  FileStore store(target);
  StoreState state(store);
  // The grown arrays' shapes; the documents of arrays kept whole are unchanged.
  std::set<std::string> grown, folders;
  for (const auto& a : plan.arrays)
    if (!kept_whole(plan, a)) grown.insert(a.name);
  for (const auto& [key, doc] : output_format(plan.zarr_format).metadata(plan)) {
    const std::string folder = folder_of(key);
    const bool array_doc = key.ends_with("/.zarray") || key.ends_with("/zarr.json");
    if (!array_doc || !grown.count(folder)) continue;
    store.put(key, dump_python_json(doc, 4));
    folders.insert(folder);
  }
  store.sync_folders(folders);
  write_consolidated(plan, store);  // what readers open: from here they see the grown dataset
  state.write_sources(fingerprints_json(plan.sources));
  state.mark_complete(cfg.content_hash());
  state.remove_append();
}

}  // namespace zp
