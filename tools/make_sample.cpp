// zp-make-sample: writes ERA5-like NetCDF files with netCDF-C, for the quick start, the tests and
// the benchmark. Each file holds `steps` hours of one day: time (int32 hours since 1900-01-01,
// unlimited), latitude (descending), longitude, d2m (int16 packed: scale_factor, add_offset,
// _FillValue, missing_value; deflate + shuffle) and t2m (float32, _FillValue NaN). Fields are
// smooth with deterministic noise, so they compress like real data rather than like zeros.
#include <fmt/format.h>
#include <netcdf.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace {

void check(int status, const std::string& what) {
  if (status != NC_NOERR) throw std::runtime_error(what + ": " + nc_strerror(status));
}

struct Options {
  std::string out = "sample";
  std::string prefix = "era5_sample";
  int files = 4;
  int steps = 24;
  int nlat = 73;
  int nlon = 144;
  std::vector<size_t> chunks = {24, 19, 36};
  int deflate = 4;
  bool classic = false;
  bool missing = true;
  int first_day = 0;  // days after 2000-01-01
  bool t2m = true;
};

// Deterministic noise in [-1, 1).
double noise(uint64_t i) {
  i ^= i >> 33;
  i *= 0xff51afd7ed558ccdULL;
  i ^= i >> 33;
  i *= 0xc4ceb9fe1a85ec53ULL;
  i ^= i >> 33;
  return static_cast<double>(i >> 11) / static_cast<double>(1ULL << 52) - 1.0;
}

std::string date_of(int day) {
  // Civil date of 2000-01-01 + day (proleptic Gregorian).
  int64_t z = 10957 + day + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9,
                y = yoe + era * 400 + (m <= 2);
  return fmt::format("{:04d}{:02d}{:02d}", y, m, d);
}

void write_file(const Options& o, int file) {
  const int day = o.first_day + file * o.steps / 24;
  const std::string path =
      fmt::format("{}/{}_{}{}.nc", o.out, o.prefix, date_of(day),
                  o.steps < 24 ? fmt::format("_{:02d}", (file * o.steps) % 24) : "");
  int nc, dt, dy, dx, vt, vy, vx, vd, vtt = -1;
  check(nc_create(path.c_str(), o.classic ? NC_CLOBBER : (NC_CLOBBER | NC_NETCDF4), &nc), path);
  check(nc_def_dim(nc, "time", NC_UNLIMITED, &dt), "time");
  check(nc_def_dim(nc, "latitude", static_cast<size_t>(o.nlat), &dy), "latitude");
  check(nc_def_dim(nc, "longitude", static_cast<size_t>(o.nlon), &dx), "longitude");
  check(nc_def_var(nc, "time", NC_INT, 1, &dt, &vt), "time");
  check(nc_def_var(nc, "latitude", NC_FLOAT, 1, &dy, &vy), "latitude");
  check(nc_def_var(nc, "longitude", NC_FLOAT, 1, &dx, &vx), "longitude");
  const int dims[3] = {dt, dy, dx};
  check(nc_def_var(nc, "d2m", NC_SHORT, 3, dims, &vd), "d2m");
  if (o.t2m) check(nc_def_var(nc, "t2m", NC_FLOAT, 3, dims, &vtt), "t2m");
  auto text = [&](int var, const char* name, const std::string& value) {
    check(nc_put_att_text(nc, var, name, value.size(), value.c_str()), name);
  };
  text(vt, "units", "hours since 1900-01-01 00:00:00.0");
  text(vt, "calendar", "gregorian");
  text(vt, "long_name", "time");
  text(vy, "units", "degrees_north");
  text(vy, "long_name", "latitude");
  text(vx, "units", "degrees_east");
  text(vx, "long_name", "longitude");
  const double scale = 0.0018, offset = 260.0;
  const short fill = -32767;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  check(nc_put_att_double(nc, vd, "scale_factor", NC_DOUBLE, 1, &scale), "scale_factor");
  check(nc_put_att_double(nc, vd, "add_offset", NC_DOUBLE, 1, &offset), "add_offset");
  check(nc_put_att_short(nc, vd, "_FillValue", NC_SHORT, 1, &fill), "_FillValue");
  check(nc_put_att_short(nc, vd, "missing_value", NC_SHORT, 1, &fill), "missing_value");
  text(vd, "units", "K");
  text(vd, "long_name", "2 metre dewpoint temperature");
  if (o.t2m) {
    check(nc_put_att_float(nc, vtt, "_FillValue", NC_FLOAT, 1, &nan), "_FillValue");
    text(vtt, "units", "K");
    text(vtt, "long_name", "2 metre temperature");
  }
  text(NC_GLOBAL, "Conventions", "CF-1.6");
  text(NC_GLOBAL, "history", "made by zp-make-sample");
  if (!o.classic) {
    const size_t c[3] = {std::min<size_t>(o.chunks[0], static_cast<size_t>(o.steps)),
                         std::min<size_t>(o.chunks[1], static_cast<size_t>(o.nlat)),
                         std::min<size_t>(o.chunks[2], static_cast<size_t>(o.nlon))};
    check(nc_def_var_chunking(nc, vd, NC_CHUNKED, c), "chunking");
    if (o.t2m) check(nc_def_var_chunking(nc, vtt, NC_CHUNKED, c), "chunking");
    if (o.deflate > 0) {
      check(nc_def_var_deflate(nc, vd, 1, 1, o.deflate), "deflate");
      if (o.t2m) check(nc_def_var_deflate(nc, vtt, 1, 1, o.deflate), "deflate");
    }
  }
  check(nc_enddef(nc), "enddef");

  std::vector<int> times(static_cast<size_t>(o.steps));
  const int first_hour =
      876576 + (o.first_day * 24) + file * o.steps;  // 2000-01-01 in hours since 1900
  for (int t = 0; t < o.steps; ++t) times[static_cast<size_t>(t)] = first_hour + t;
  std::vector<float> lat(static_cast<size_t>(o.nlat)), lon(static_cast<size_t>(o.nlon));
  for (int i = 0; i < o.nlat; ++i)
    lat[static_cast<size_t>(i)] = static_cast<float>(90.0 - 180.0 * i / (o.nlat - 1));
  for (int i = 0; i < o.nlon; ++i)
    lon[static_cast<size_t>(i)] = static_cast<float>(360.0 * i / o.nlon);
  const size_t start0[1] = {0}, nt[1] = {static_cast<size_t>(o.steps)};
  check(nc_put_vara_int(nc, vt, start0, nt, times.data()), "time values");
  check(nc_put_var_float(nc, vy, lat.data()), "latitude values");
  check(nc_put_var_float(nc, vx, lon.data()), "longitude values");

  const size_t plane = static_cast<size_t>(o.nlat) * static_cast<size_t>(o.nlon);
  // Whole files are written in one call: writing step by step would cycle HDF5's chunk cache.
  const size_t steps = static_cast<size_t>(o.steps);
  std::vector<short> d2m_all(steps * plane);
  std::vector<float> t2m_all(o.t2m ? steps * plane : 0);
  // Separable smooth terms, computed once per row and per column: the generator is I/O bound.
  std::vector<double> row_term(static_cast<size_t>(o.nlat)), col_term(static_cast<size_t>(o.nlon));
  for (int y = 0; y < o.nlat; ++y)
    row_term[static_cast<size_t>(y)] =
        250 + 35 * std::cos(lat[static_cast<size_t>(y)] * M_PI / 180);
  for (int t = 0; t < o.steps; ++t) {
    const double hour = first_hour + t;
    short* d2m = d2m_all.data() + static_cast<size_t>(t) * plane;
    float* t2m = o.t2m ? t2m_all.data() + static_cast<size_t>(t) * plane : nullptr;
    for (int x = 0; x < o.nlon; ++x)
      col_term[static_cast<size_t>(x)] =
          4 * std::sin(2 * lon[static_cast<size_t>(x)] * M_PI / 180 + hour * 2 * M_PI / 24);
    for (int y = 0; y < o.nlat; ++y)
      for (int x = 0; x < o.nlon; ++x) {
        const size_t i =
            static_cast<size_t>(y) * static_cast<size_t>(o.nlon) + static_cast<size_t>(x);
        const uint64_t seed = static_cast<uint64_t>(hour) * plane + i;
        const double base = row_term[static_cast<size_t>(y)] + col_term[static_cast<size_t>(x)];
        const double dew = base - 3 + 0.4 * noise(seed);
        d2m[i] = static_cast<short>(std::lround((dew - offset) / scale));
        if (o.t2m) t2m[i] = static_cast<float>(base + 0.3 * noise(seed ^ 0x9e3779b97f4a7c15ULL));
        if (o.missing && file == 1 && t >= 3 && t <= 4 && y >= 10 && y < 20 && x >= 30 && x < 40)
          d2m[i] = fill;
        if (o.t2m && o.missing && file == 1 && t == 0 && y < 5 && x < 7) t2m[i] = nan;
      }
  }
  const size_t start[3] = {0, 0, 0};
  const size_t count[3] = {steps, static_cast<size_t>(o.nlat), static_cast<size_t>(o.nlon)};
  check(nc_put_vara_short(nc, vd, start, count, d2m_all.data()), "d2m values");
  if (o.t2m) check(nc_put_vara_float(nc, vtt, start, count, t2m_all.data()), "t2m values");
  check(nc_close(nc), path);
  fmt::print("{}\n", path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zp-make-sample: ERA5-like NetCDF files for examples, tests and benchmarks"};
  Options o;
  app.add_option("--out", o.out, "output folder");
  app.add_option("--prefix", o.prefix, "file name prefix");
  app.add_option("--files", o.files, "number of files");
  app.add_option("--steps", o.steps, "hourly steps per file (24: one file a day)");
  app.add_option("--lat", o.nlat, "latitude points (90 .. -90)");
  app.add_option("--lon", o.nlon, "longitude points (0 .. 360)");
  app.add_option("--chunks", o.chunks, "HDF5 chunks: time lat lon")->expected(3);
  app.add_option("--deflate", o.deflate, "zlib level (0: none)");
  app.add_option("--first-day", o.first_day, "days after 2000-01-01 of the first file");
  app.add_flag("--classic", o.classic, "NetCDF-3 classic files instead of NetCDF-4");
  app.add_flag("!--no-missing", o.missing, "no missing values");
  app.add_flag("!--no-t2m", o.t2m, "only d2m (benchmarks)");
  CLI11_PARSE(app, argc, argv);
  try {
    std::filesystem::create_directories(o.out);
    for (int f = 0; f < o.files; ++f) write_file(o, f);
  } catch (const std::exception& e) {
    fmt::print(stderr, "zp-make-sample: {}\n", e.what());
    return 1;
  }
  return 0;
}
