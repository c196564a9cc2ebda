// Describing a file with libhdf5 where its crash or hang is an error naming the file, not the end
// of the run: libhdf5 1.10 dereferences what a damaged or hostile file says (SIGSEGV in H5HG_read
// through DIMENSION_LIST) and can loop forever on some, as ncdump does. The coordinator never
// describes an HDF5 file itself, local or by URL: a child process running this binary's
// `scan-parts` (or `describe-url`) does, under a time limit (ZP_SCAN_TIMEOUT seconds, default 120).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace zp {

// Seconds a scan child may go without finishing a file before it is killed.
int scan_timeout_seconds();

// `scan-parts` of one file in a child: its part lines (scan_cache.hpp's format). The child's own
// error comes back as an Error of the kind its exit code names, with its message; a signal or the
// time limit is Error(Source) naming the file. Needs scan_executable().
std::string describe_in_child(const std::string& path, const std::string& group);

// `describe-url` of one NetCDF-4 file given by URL in a child: the dataset's text
// (dataset_json.hpp). `access_text` (the access options and their secrets, see
// access_for_child) goes to the child on its stdin, never its argv or environment.
std::string describe_url_in_child(const std::string& url, const std::string& group,
                                  const std::string& access_text);

// `scan-grib` of GRIB files in a child (ecCodes asserts and aborts on some malformed messages): the
// dataset's text (dataset_json.hpp) of the files indexed together, as open_grib reads them here.
// `filter_text`: filter_by_keys as JSON text. A signal names the file and message the child was
// reading (its crash note, core/crash_note.hpp); the time limit applies to each file.
std::string describe_grib_in_child(const std::vector<std::string>& files,
                                   const std::string& filter_text, const std::string& uri);

// `scan-grib --url` of one GRIB object by URL in a child; `access_text` as describe_url_in_child.
std::string describe_grib_url_in_child(const std::string& url, const std::string& filter_text,
                                       const std::string& access_text);

// A file of `files`' names, NUL-separated (175,000 paths exceed what argv may hold), numbered
// `index` among this process's lists; "" when it cannot be written. The caller removes it.
std::string write_file_list(const std::vector<std::string>& files, std::size_t index);

}  // namespace zp
