#include "exec/orphan_uploads.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "exec/progress.hpp"
#include "write/store_inventory.hpp"

namespace zp {

int abort_orphan_uploads(const S3Writer& store, const Plan& plan, int log_level) {
  std::optional<std::vector<std::pair<std::string, std::string>>> uploads;
  try {
    uploads = store.uploads_in_progress();
  } catch (const Error& e) {  // a clean-up: the run's data is not at stake
    log_line(log_level, 1,
             std::string("note: cannot list the multipart uploads in progress, so none is "
                         "aborted: ") +
                 e.what());
    return 0;
  }
  if (!uploads) {
    log_line(log_level, 2,
             "note: " + store.root() +
                 ": the server does not list multipart uploads, so one a killed worker left is "
                 "for the bucket's lifecycle rule to abort");
    return 0;
  }
  if (uploads->empty()) return 0;
  const auto ours = keys_written_by(plan);
  int aborted = 0, refused = 0;
  for (const auto& [key, id] : *uploads) {
    if (!ours.count(key)) continue;  // not a key of this run's: someone else's upload
    if (store.abort_upload(key, id))
      ++aborted;
    else
      ++refused;
  }
  if (aborted > 0)
    log_line(log_level, 1,
             fmt::format("{}: aborted {} a killed worker left", store.root(),
                         counted(aborted, "multipart upload")));
  if (refused > 0)
    log_line(log_level, 1,
             fmt::format("note: {}: the server refused to abort {}: the bucket's lifecycle rule "
                         "must",
                         store.root(), counted(refused, "multipart upload")));
  return aborted;
}

}  // namespace zp
