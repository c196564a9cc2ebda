// Internal subcommands, run by this program's own children: `scan-parts` (the parallel scan of
// a large NetCDF glob), `describe-url` (a NetCDF-4 file by URL; options and secrets on stdin) and
// `scan-grib` (GRIB files, where an ecCodes abort names the message, core/crash_note.hpp).
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "source/grib/grib_source.hpp"
#include "source/netcdf_source.hpp"

namespace zp {

namespace {

struct ScanArgs {
  std::vector<std::string> files;
  std::string group, list, concat_dim;
  bool join = false;
};

void read_list(const std::string& list, std::vector<std::string>& files) {
  if (list.empty()) return;
  std::ifstream in(list, std::ios::binary);
  for (std::string name; std::getline(in, name, '\0');)
    if (!name.empty()) files.push_back(name);
}

int run_scan_parts(ScanArgs a) {
  read_list(a.list, a.files);
  if (a.join) {
    scan_and_join(a.files, a.group, a.concat_dim, std::cout);
    return 0;
  }
  for (const auto& f : a.files) std::cout << scan_part_text(f, a.group) << std::flush;
  return 0;
}

struct DescribeUrlArgs {
  std::string url, group;
};

int run_describe_url(const DescribeUrlArgs& a) {
  const std::string options((std::istreambuf_iterator<char>(std::cin)), {});
  std::cout << describe_url_text(a.url, a.group, options) << std::flush;
  return 0;
}

struct ScanGribArgs {
  std::string uri, filter = "null", list;
  bool url = false;
};

int run_scan_grib(const ScanGribArgs& a) {
  const auto filter = nlohmann::json::parse(a.filter, nullptr, false);
  if (filter.is_discarded()) throw Error::config("filter_by_keys", "not JSON: " + a.filter);
  if (a.url) {
    const std::string options((std::istreambuf_iterator<char>(std::cin)), {});
    std::cout << grib_url_scan_text(a.uri, filter, options) << std::flush;
    return 0;
  }
  std::vector<std::string> files;
  read_list(a.list, files);
  std::cout << grib_scan_text(files, a.uri, filter, std::cerr) << std::flush;
  return 0;
}

}  // namespace

CommandRun setup_scan_grib(CLI::App& cmd) {
  auto a = std::make_shared<ScanGribArgs>();
  cmd.add_option("--filter", a->filter, "filter_by_keys as JSON");
  cmd.add_option("--files-from", a->list, "file of NUL-separated file names");
  cmd.add_flag("--url", a->url, "URI is one object by URL; access options on stdin");
  cmd.add_option("URI", a->uri, "the data_uri, for messages")->required();
  return [a] { return run_scan_grib(*a); };
}

CommandRun setup_scan_parts(CLI::App& cmd) {
  auto a = std::make_shared<ScanArgs>();
  cmd.add_option("--group", a->group, "group");
  cmd.add_option("FILES", a->files, "files");
  cmd.add_option("--files-from", a->list, "file of NUL-separated file names");
  cmd.add_flag("--join", a->join, "also print the files joined");
  cmd.add_option("--concat-dim", a->concat_dim, "dimension to join along");
  return [a] { return run_scan_parts(*a); };
}

CommandRun setup_describe_url(CLI::App& cmd) {
  auto a = std::make_shared<DescribeUrlArgs>();
  cmd.add_option("--group", a->group, "group");
  cmd.add_option("URL", a->url, "url")->required();
  return [a] { return run_describe_url(*a); };
}

}  // namespace zp
