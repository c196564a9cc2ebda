#include "source/netcdf_source.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

#include "core/error.hpp"
#include "source/dataset_json.hpp"
#include "source/format.hpp"
#include "source/join.hpp"
#include "source/scan_cache.hpp"
#include "source/scan_child.hpp"
#include "source/scan_children.hpp"
#include "store/file_reader.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace {

constexpr const char* kJoinedMarker = "#joined";  // scan-parts --join: the joined dataset follows

// A local file described here, in the format its first bytes show (format.hpp).
ScanPart open_one(const std::string& path, const std::string& group) {
  FileReader reader;
  const ObjectInfo info = reader.info(path);
  if (!info.exists) throw Error::source_missing(path, "no such file");
  const Bytes head = head_of(reader, path, info.size);
  return file_format_of(head, path).describe(reader, path, info.size, group);
}

// Whether a format described in this process (NetCDF-3: our own parser, fuzzed) has the file.
bool described_here(const std::string& path) {
  FileReader reader;
  const ObjectInfo info = reader.info(path);
  if (!info.exists) return false;
  const Bytes head = head_of(reader, path, info.size);
  for (const auto& f : file_formats())
    if (!f.in_child && f.recognises(head, path)) return true;
  return false;
}

// One file described where a libhdf5 crash or hang cannot end this process: HDF5 files in a child
// (scan_child.hpp); netCDF-3 files here, and everything here when no child can run (the library
// without the command beside it). The part goes into `cache`.
ScanPart describe_isolated(const std::string& path, const std::string& group, PartCache& cache) {
  if (scan_executable().empty() || described_here(path)) {
    const auto before = file_state(path);
    ScanPart part = open_one(path, group);
    cache.put(path, part, before);
    return part;
  }
  if (!cache.put_lines(describe_in_child(path, group)))
    throw Error::internal(path + ": the scanner's description is malformed");
  auto part = cache.get(path);
  if (!part) throw Error::source(path, "the file changed while it was being described");
  return std::move(*part);
}

// Files not in the cache, scanned by children (HDF5 and netCDF-C are not thread-safe) whose parts
// go into the cache; a file a child could not scan is left to describe_isolated, which names it.
void scan_in_children(const std::vector<std::string>& todo, const std::string& group,
                      PartCache& cache) {
  if (scan_executable().empty() || todo.size() < 2) return;  // one file is described alone
  // A few files (or ZP_PARALLEL_SCAN=0): one child for all, one process start instead of one each.
  std::size_t k = 1;
  if (parallel_scan_on() && todo.size() >= kParallelScanMin)
    k = std::max<std::size_t>(1, scan_children_for(todo.size()));
  std::vector<std::vector<std::string>> runs(k);
  for (std::size_t i = 0; i < todo.size(); ++i) runs[i % k].push_back(todo[i]);
  for (const auto& o : run_scan_children(runs, group, false, ""))
    cache.put_lines(o.out.substr(0, complete_parts(o.out)));
}

// The dimension a join without concat_dim takes: the (last) unlimited one, as resolve_concat_dim.
std::string unlimited_dim(const Dataset& ds) {
  std::string name;
  for (const auto& d : ds.dims)
    if (d.unlimited) name = d.name;
  return name;
}

// The runs of `files` that K children scan: contiguous, in order; `first_file` gets where each
// starts.
std::vector<std::vector<std::string>> contiguous_runs(const std::vector<std::string>& files,
                                                      std::size_t k,
                                                      std::vector<std::size_t>& first_file) {
  std::vector<std::vector<std::string>> runs(k);
  const std::size_t n = files.size();
  for (std::size_t c = 0, at = 0; c < k; ++c) {
    const std::size_t len = n / k + (c < n % k ? 1 : 0);
    first_file.push_back(at);
    runs[c].assign(files.begin() + static_cast<std::ptrdiff_t>(at),
                   files.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
  }
  return runs;
}

// The joined dataset a child printed after its parts; nullopt when it printed none or it does not
// parse. `cache` gets its per-file parts.
std::optional<ScanPart> joined_part(const ChildOutput& o, const std::string& first_file,
                                    PartCache& cache) {
  const std::string& out = o.out;
  const auto marker = out.find(std::string("\n") + kJoinedMarker + '\n');
  cache.put_lines(out.substr(0, marker == std::string::npos ? complete_parts(out) : marker + 1));
  if (marker == std::string::npos || !o.ok) return std::nullopt;
  try {
    ScanPart part;
    part.ds = dataset_from_text(out.substr(marker + std::strlen(kJoinedMarker) + 2), first_file);
    // The join check compares each run's first file's coordinates with the first file's.
    if (auto head = cache.get_coords(first_file)) part.coord_digests = std::move(*head);
    return part;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// A cold scan of many files: K children each scan a contiguous run of them and join it (so this
// process parses K joined descriptions, not one per file); their per-file parts go to the cache
// unparsed. Without concat_dim each child joins along its first file's unlimited dimension, and
// every run must agree with the first run's (no serial scan of the first file before the others
// start). nullopt when this does not apply or a child failed: then the per-file path runs and
// names the file that fails.
std::optional<Dataset> join_in_children(const std::vector<std::string>& files,
                                        const std::string& group, const std::string& concat_dim_in,
                                        const std::string& uri, PartCache& cache) {
  if (!parallel_scan_on() || files.size() < kParallelScanMin) return std::nullopt;
  for (const auto& f : files)
    if (cache.has(f)) return std::nullopt;  // a warm cache: the per-file path reads it
  const std::size_t k = scan_children_for(files.size());
  if (k < 2) return std::nullopt;
  std::vector<std::size_t> first_file;
  const auto runs = contiguous_runs(files, k, first_file);
  const auto outputs = run_scan_children(runs, group, true, concat_dim_in);
  if (outputs.size() != runs.size()) return std::nullopt;
  std::vector<ScanPart> parts;
  for (std::size_t c = 0; c < outputs.size(); ++c)
    if (auto part = joined_part(outputs[c], runs[c][0], cache)) parts.push_back(std::move(*part));
  if (parts.size() != runs.size()) return std::nullopt;
  const std::string concat_dim = resolve_concat_dim(parts[0].ds, concat_dim_in, files, uri);
  for (const auto& p : parts)  // each run joined along the dimension the whole join takes
    if (concat_dim_in.empty() && unlimited_dim(p.ds) != concat_dim) return std::nullopt;
  return join_parts(std::move(parts), files, first_file, concat_dim, uri);
}

// Every file's part: from the manifest cache when there and current, else from child scanners or
// scanned here, in the order of `files`.
std::vector<ScanPart> scan_all(const std::vector<std::string>& files, const std::string& group,
                               PartCache& cache) {
  std::vector<std::optional<ScanPart>> got(files.size());
  std::vector<std::string> todo;
  for (std::size_t i = 0; i < files.size(); ++i) {
    got[i] = cache.get(files[i]);
    if (!got[i]) todo.push_back(files[i]);
  }
  if (!todo.empty()) {
    scan_in_children(todo, group, cache);
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (got[i]) continue;
      got[i] = cache.get(files[i]);
      if (!got[i]) got[i] = describe_isolated(files[i], group, cache);
    }
  }
  std::vector<ScanPart> out;
  out.reserve(files.size());
  for (auto& g : got) out.push_back(std::move(*g));
  return out;
}

}  // namespace

std::string scan_part_text(const std::string& path, const std::string& group) {
  const auto before = file_state(path);
  return part_lines(path, open_one(path, group), before);
}

void scan_and_join(const std::vector<std::string>& files, const std::string& group,
                   const std::string& concat_dim, std::ostream& out) {
  std::vector<ScanPart> parts;
  std::vector<std::size_t> first_file;
  // Without a manifest cache (ZP_CACHE_DIR=off) only the first file's part is read (the join
  // check takes its coordinates): printing the others was an eighth of a cold `refs`. Still one
  // part at least every quarter of the scan time limit (at most a second apart), so that the
  // parent sees this child alive.
  const bool cached = !scan_cache_dir().empty();
  using Clock = std::chrono::steady_clock;
  const auto every = std::min<std::chrono::milliseconds>(
      std::chrono::seconds(1), std::chrono::milliseconds(250) * scan_timeout_seconds());
  auto printed = Clock::now();
  for (const auto& f : files) {
    const auto before = file_state(f);
    parts.push_back(open_one(f, group));
    first_file.push_back(first_file.size());
    if (cached || parts.size() == 1) {
      out << part_lines(f, parts.back(), before);
    } else if (Clock::now() - printed >= every) {
      out << part_lines(f, parts.back(), before) << std::flush;
      printed = Clock::now();
    }
  }
  const Dataset joined = join_parts(std::move(parts), files, first_file, concat_dim, "");
  out << kJoinedMarker << '\n' << dataset_text(joined) << '\n' << std::flush;
}

Dataset open_netcdf(const std::vector<std::string>& files, const std::string& concat_dim,
                    const std::string& uri, const std::string& group) {
  if (files.empty()) throw Error::source(uri, "no files match");
  const std::string key = files.size() > 1 ? join_key(uri, files, group, concat_dim) : "";
  if (auto joined = cached_join(key, files)) {
    joined->uri = uri;
    return std::move(*joined);
  }
  PartCache cache(uri, group);
  if (auto joined = join_in_children(files, group, concat_dim, uri, cache)) {
    cache.save(files);
    store_join(key, uri, files, group, concat_dim, *joined);
    return std::move(*joined);
  }
  std::vector<ScanPart> parts = scan_all(files, group, cache);
  cache.save(files);
  std::vector<std::size_t> first_file(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) first_file[i] = i;
  Dataset ds = join_parts(std::move(parts), files, first_file, concat_dim, uri);
  store_join(key, uri, files, group, concat_dim, ds);
  return ds;
}

namespace {

// The object at `url` described here, through the store interface (the child of
// open_netcdf_url).
Dataset describe_url_here(const std::string& url, const std::string& group, SourceAccess& access) {
  Readable& reader = access.reader(url, AccessRole::Target);
  const ObjectInfo info = reader.info(url);
  if (!info.exists) throw Error::source_missing(url, "no such object");
  const Bytes head = head_of(reader, url, info.size);
  return file_format_of(head, url).describe(reader, url, info.size, group).ds;
}

}  // namespace

Dataset open_netcdf_url(const std::string& url, const std::string& group, SourceAccess& access) {
  if (url.substr(0, url.find('?')).find_first_of("*[") != std::string::npos)  // '?': a query
    throw Error::source(url,
                        "globs are not expanded in URLs: give one file, or write a reference "
                        "set of the files (zarr-parallel refs) and give its URL");
  Readable& reader = access.reader(url, AccessRole::Target);
  const ObjectInfo info = reader.info(url);
  if (!info.exists) throw Error::source_missing(url, "no such object");
  const FileFormat& format = file_format_of(head_of(reader, url, info.size), url);
  // libhdf5 reads what the server sent: in a child, where its crash or hang names the file.
  const bool in_child = format.in_child && !scan_executable().empty();
  Dataset ds = in_child
                   ? dataset_from_text(
                         describe_url_in_child(url, group, access.options().transfer_text()), url)
                   : format.describe(reader, url, info.size, group).ds;
  ds.uri = url;
  ds.access = access.options();
  ds.access.chunks_remote_role = false;
  return ds;
}

std::string describe_url_text(const std::string& url, const std::string& group,
                              const std::string& access_text) {
  const AccessOptions options = AccessOptions::from_transfer_text(access_text);
  guard_secrets(options);
  SourceAccess access(options);
  return dataset_text(describe_url_here(url, group, access));
}

}  // namespace zp
