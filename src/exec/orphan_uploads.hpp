// Multipart uploads a run left behind: a worker killed in the middle of one (a large shard) never
// completes or aborts it, and S3 keeps (and bills) its parts until it is aborted. The coordinator,
// holding the lease and with no worker of its own running, lists the uploads in progress under the
// store's prefix and aborts those of keys its plan writes; an upload of any other key is not ours
// and stays. A server that cannot list uploads (s3rver) leaves them to the bucket's lifecycle rule
// (a note at log_level 2); one that fails to list them is a note too: the run goes on.
#pragma once

#include "plan/plan.hpp"
#include "store/s3_writer.hpp"

namespace zp {

// Returns how many uploads were aborted.
int abort_orphan_uploads(const S3Writer& store, const Plan& plan, int log_level);

}  // namespace zp
