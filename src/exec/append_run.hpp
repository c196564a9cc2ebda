// An append as a cache run (on_source_change: append): the tentative decision (the source is the
// old one plus files after its end) confirmed against the grown source's plan and the store's
// metadata, then the store set up to run an append plan — the plan cut to the new chunks and the
// rewritten partial last one, run by any executor like any plan. The store stays the old complete
// one until finish_cache replaces the arrays' metadata, then the consolidated metadata, then the
// sources record.
#pragma once

#include "config/config.hpp"
#include "exec/cache_decision.hpp"
#include "exec/cache_run.hpp"
#include "write/append_check.hpp"

namespace zp {

// An Append to do, a Hit (the new files add nothing to the selection), or a Rebuild saying why
// not. Adopts the store's coordinate chunks into `session.plan`; fills `shape`.
Decision confirm_append(const Config& cfg, CacheSession& session, const Decision& tentative,
                        AppendShape& shape);

// The store extended in place, under the lock: the plan cut to the tail, saved as the store's
// plan, the append recorded. An interrupted append of the same plan keeps its done jobs.
void start_append(const Config& cfg, const AppendShape& shape, CacheSession& session);

// What `plan` shows (reads only): the decision a cache run would take now, and for an append the
// append plan (only the chunks it would write) in place of `plan`. On_source_change: error is
// shown as a rebuild that would stop, not thrown.
Decision preview_decision(const Config& cfg, Plan& plan);

// A Hit found by confirm_append: the store's sources record follows the source (nothing to write).
void record_sources(const CacheSession& session);

// finish_cache's last steps for an append: the arrays' documents, the consolidated metadata, the
// sources record, then the completion marker and the append record removed.
void finish_append(const Config& cfg, const Plan& plan, const std::string& target);

}  // namespace zp
