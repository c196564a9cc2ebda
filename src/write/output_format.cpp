#include "write/output_format.hpp"

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "store/file_store.hpp"

namespace zp {

const OutputFormat& zarr_v2_format();
const OutputFormat& zarr_v3_format();

namespace {

struct FormatRow {
  int zarr_format;
  const OutputFormat& (*get)();
};

// The output formats, by the config's zarr_format.
constexpr FormatRow kFormats[] = {{2, zarr_v2_format}, {3, zarr_v3_format}};

}  // namespace

const OutputFormat& output_format(int zarr_format) {
  for (const auto& row : kFormats)
    if (row.zarr_format == zarr_format) return row.get();
  throw Error::config("zarr_format", "unsupported: " + std::to_string(zarr_format) + " (2 or 3)");
}

void write_metadata(const Plan& plan, const Writable& store) {
  const auto docs = output_format(plan.zarr_format).metadata(plan);
  // Into a folder, the documents' write-backs start together and are awaited once (a batch): on
  // ext4 a flush per file cost W0 about 10 file and 5 folder flushes before its first job (bench/
  // README.md, "Session 16: W0's fixed cost"). Every key is durable when this returns, as before.
  if (dynamic_cast<const FileStore*>(&store)) {
    const auto batch = store.batch();
    for (const auto& [key, doc] : docs) {
      const std::string text = dump_python_json(doc, 4);
      const Bytes bytes(text.begin(), text.end());
      batch->put(key, {&bytes});
    }
    batch->finish();
    return;
  }
  std::set<std::string> folders;
  for (const auto& [key, doc] : docs) {
    store.put(key, dump_python_json(doc, 4));
    folders.insert(folder_of(key));
  }
  store.sync_folders(folders);
}

void write_consolidated(const Plan& plan, const Writable& store) {
  const auto [key, doc] = output_format(plan.zarr_format).consolidated(plan);
  store.put(key, dump_python_json(doc, 4));
  store.sync_folders({folder_of(key)});
}

void write_consolidated(const Plan& plan, WriteBatch& batch) {
  const auto [key, doc] = output_format(plan.zarr_format).consolidated(plan);
  const std::string text = dump_python_json(doc, 4);
  const Bytes bytes(text.begin(), text.end());
  batch.put(key, {&bytes});
}

const nlohmann::json* consolidated_documents(const nlohmann::json& doc) {
  if (!doc.is_object()) return nullptr;
  if (doc.contains("metadata") && doc["metadata"].is_object()) return &doc["metadata"];
  if (doc.contains("consolidated_metadata") && doc["consolidated_metadata"].is_object() &&
      doc["consolidated_metadata"].contains("metadata") &&
      doc["consolidated_metadata"]["metadata"].is_object())
    return &doc["consolidated_metadata"]["metadata"];
  return nullptr;
}

}  // namespace zp
