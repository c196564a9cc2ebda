// Internal subcommands, run by this program's own children: `scan-parts` (the parallel scan of
// a large NetCDF glob) and `describe-url` (a NetCDF-4 file by URL; options and secrets on stdin).
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "cli/commands.hpp"
#include "source/netcdf_source.hpp"

namespace zp {

namespace {

struct ScanArgs {
  std::vector<std::string> files;
  std::string group, list, concat_dim;
  bool join = false;
};

int run_scan_parts(ScanArgs a) {
  if (!a.list.empty()) {
    std::ifstream in(a.list, std::ios::binary);
    for (std::string name; std::getline(in, name, '\0');)
      if (!name.empty()) a.files.push_back(name);
  }
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

}  // namespace

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
