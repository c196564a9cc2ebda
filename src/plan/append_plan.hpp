// An append's plan: the plan of the whole grown source, cut to the output chunks the store lacks
// along the dimension that grew, plus the store's last chunk along it when that was partial
// (rewritten whole: its old positions keep their values; for a sharded v3 array the write chunk
// is the shard). Arrays without that dimension are kept as they are. Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "plan/plan.hpp"

namespace zp {

// The chunks of `a` that `plan` writes: all of them, or in an append those from `a.append_from`
// along `plan.append_dim` on (an empty region when `a` lacks that dimension).
Region written_region(const Plan& plan, const ArrayPlan& a);

// In an append, an array without the append dimension: the store's, not written again.
bool kept_whole(const Plan& plan, const ArrayPlan& a);

// Cuts `plan` to an append along `dim`. `old_length`: per array name having `dim`, its length
// along it in the store (arrays not named are kept whole). Job ids are renumbered from 0 and the
// summary counts what is left.
void restrict_to_tail(Plan& plan, const std::string& dim,
                      const std::map<std::string, int64_t>& old_length);

// Checks an append plan's own fields (a stored plan is untrusted): `append_from` within the
// array's chunks and along a dimension it has. "" when sound, else what is wrong.
std::string append_fields_problem(const Plan& plan);

}  // namespace zp
