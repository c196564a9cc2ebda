// OutputFormat: what differs between Zarr v2 and v3 caches — the metadata documents, chunk keys,
// and how one write chunk becomes stored bytes (for a sharded v3 array, the shard: inner chunks
// plus their index). Chosen from a two-row table by the plan's zarr_format; the planner, job
// runner, coordinator and verify use only this interface.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "plan/plan.hpp"
#include "store/writable.hpp"

namespace zp {

using MetadataDocuments = std::vector<std::pair<std::string, nlohmann::ordered_json>>;

class OutputFormat {
 public:
  virtual ~OutputFormat() = default;
  virtual int zarr_format() const = 0;
  // Every metadata key but the consolidated one, with its document, in write order.
  virtual MetadataDocuments metadata(const Plan& plan) const = 0;
  // The consolidated document (what xarray / zarr-python read first), written after the chunks.
  virtual std::pair<std::string, nlohmann::ordered_json> consolidated(const Plan& plan) const = 0;
  // The key of stored chunk `chunk` (write-chunk coordinates in the stored layout).
  virtual std::string chunk_key(const std::string& array,
                                const std::vector<int64_t>& chunk) const = 0;
  // One decoded write chunk (C order, the write chunk's full shape) as stored bytes; nullopt when
  // nothing is to be stored (a shard of fill values only).
  virtual std::optional<Bytes> encode(const ArrayPlan& a, Bytes chunk) const = 0;
  // Stored bytes back to the decoded write chunk (verify). `stored` nullopt: the key is absent,
  // which is the fill chunk where encode() may leave it out, else an error naming `where`.
  virtual Bytes decode(const ArrayPlan& a, const std::optional<Bytes>& stored,
                       const std::string& where) const = 0;
};

const OutputFormat& output_format(int zarr_format);

// The map of documents inside a consolidated document: v2's "metadata", v3's
// consolidated_metadata.metadata; null when there is none.
const nlohmann::json* consolidated_documents(const nlohmann::json& doc);

// Writes every document of metadata() / consolidated() (JSON text as zarr-python writes it),
// durably: they are in place and flushed when these return.
void write_metadata(const Plan& plan, const Writable& store);
void write_consolidated(const Plan& plan, const Writable& store);
// The same into `batch` (durable at its finish()).
void write_consolidated(const Plan& plan, WriteBatch& batch);

// Shared by the formats: the fill value in the output dtype's JSON form (integers for integer
// arrays; null when none fits), and the decoded fill chunk of a write chunk.
nlohmann::json typed_fill(const ArrayPlan& a);
Bytes fill_chunk(const ArrayPlan& a);

}  // namespace zp
