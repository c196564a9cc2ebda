// Parsing of user-facing quantities: memory sizes ("2GB", "1500MiB") and durations ("30:00").
#pragma once

#include <cstdint>
#include <string>

namespace zp {

// Bytes in a memory size: decimal (kB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB) units, plain
// numbers are bytes; 1 B to 1 PiB. Throws Error(Config) naming `key`.
int64_t parse_memory(const std::string& text, const std::string& key);

// Seconds in a SLURM-style duration: "MM", "MM:SS", "HH:MM:SS", "D-HH[:MM[:SS]]"; 1 second to 366
// days.
int64_t parse_duration(const std::string& text, const std::string& key);

std::string format_bytes(double bytes);

}  // namespace zp
