// The budget table: how much untrusted metadata may make zarr-parallel hold or do, checked before
// anything is allocated or asked for. A few bytes of metadata can declare 10^12 chunks; each
// limit is far above any real archive (20 years of hourly ERA5 is 175,320 chunks a variable at
// one step a chunk) and far below what a 2 GB worker holds. The README's "Budgets" table says the
// same; a change here changes it there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace zp::budget {

// Chunks of one array's source grid (manifest entries, ~50 bytes each: 800 MB at the limit).
inline constexpr int64_t kChunksPerArray = int64_t{1} << 24;
// Elements of one array or one chunk: products of shapes stay far from 64 bits, itemsizes included.
inline constexpr int64_t kElements = int64_t{1} << 56;
// Values of one dimension coordinate, read whole (as doubles: 256 MiB at the limit).
inline constexpr int64_t kCoordinateValues = int64_t{1} << 25;
// Inner chunks of one Zarr v3 shard (its index: 16 bytes each, read whole).
inline constexpr int64_t kInnerChunksPerShard = int64_t{1} << 20;
// References a kerchunk "gen" section may expand to, in all.
inline constexpr int64_t kGeneratedReferences = 4'000'000;
// One string a kerchunk template renders (a key, a URL): templates may nest many times in one
// URL, so a few KiB of reference set could render gigabytes. S3 keys end at 1 KiB.
inline constexpr int64_t kRenderedTemplateBytes = 8192;
// The keys and URLs of one reference set, in all, as rendered (4M references of 130 bytes).
inline constexpr int64_t kReferenceTextBytes = int64_t{1} << 29;
// Chunk keys asked for one by one (HEAD) where a server cannot list (Zarr over plain HTTP).
inline constexpr int64_t kProbedChunks = 1'000'000;
// Points of one GRIB message's grid (Ni x Nj, numberOfPoints, numberOfValues...), checked before
// ecCodes is asked for any grid array: it allocates them whole and aborts when malloc fails.
// ERA5's grid is ~1M points; 2^26 doubles are 512 MiB.
inline constexpr int64_t kGribPoints = int64_t{1} << 26;
// Groups in one HDF5 file, and their nesting.
inline constexpr int64_t kGroups = 10'000;
inline constexpr int kGroupDepth = 64;

// The product of `sizes`, or Error(Source) naming `where` and `what` ("chunks in its grid") when
// it passes `limit` (overflow included) or a size is negative.
int64_t checked_product(const std::vector<int64_t>& sizes, int64_t limit, const std::string& where,
                        const std::string& what);

}  // namespace zp::budget
