// Counts in messages read as English: "1 job", "2 jobs", "0 workers". Every message that says how
// many of something goes through these, so no "1 workers" slips into a log line or a report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zp {

// The noun for `n` things: `one` when n is 1, else `many` (default: `one` + "s").
std::string noun(int64_t n, std::string_view one, std::string_view many = {});

// "n noun": counted(1, "job") = "1 job", counted(3, "entry", "entries") = "3 entries".
std::string counted(int64_t n, std::string_view one, std::string_view many = {});

}  // namespace zp
