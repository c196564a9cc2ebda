// Our reading of NetCDF files (HDF5 chunk index + our own decoders, or netCDF-3 slabs) checked
// against netCDF-C's reading of the same files, chunk by chunk.
#include <gtest/gtest.h>
#include <netcdf.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.hpp"
#include "source/chunk_reader.hpp"
#include "source/dataset_json.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"
#include "source/netcdf4/netcdf4_reader.hpp"
#include "source/netcdf_source.hpp"
#include "source/open_source.hpp"
#include "store/file_reader.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;

void nc(int status) {
  ASSERT_EQ(status, NC_NOERR) << nc_strerror(status);
}

// Compares every chunk of every variable of `ds` with nc_get_vara on the chunk's cell.
void expect_same_as_netcdf_c(const Dataset& ds) {
  ChunkReader reader(ds);
  for (const auto& v : ds.variables) {
    if (ds.files.size() > 1 && v.ndim() == 1 && v.dims[0] == "time") {
      // The join coordinate is held inline, one chunk of every file's values in file order.
      ASSERT_EQ(v.chunks.size(), 1u);
      ASSERT_EQ(v.chunks[0].kind, ChunkRef::Kind::Inline);
      const Bytes chunk = reader.read(v, 0);
      std::vector<unsigned char> expected;
      for (const auto& f : ds.files) {
        int id, varid, dim;
        std::size_t len;
        nc(nc_open(f.c_str(), NC_NOWRITE, &id));
        nc(nc_inq_varid(id, v.name.c_str(), &varid));
        nc(nc_inq_vardimid(id, varid, &dim));
        nc(nc_inq_dimlen(id, dim, &len));
        std::vector<unsigned char> part(len * static_cast<std::size_t>(v.dtype.size));
        nc(nc_get_var(id, varid, part.data()));
        nc_close(id);
        expected.insert(expected.end(), part.begin(), part.end());
      }
      ASSERT_EQ(chunk.size(), expected.size());
      EXPECT_EQ(std::memcmp(chunk.data(), expected.data(), expected.size()), 0) << v.name;
      continue;
    }
    for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
      const Bytes chunk = reader.read(v, idx);
      const std::vector<int64_t> c = v.grid.coords(idx);
      // The cell may span several files along the first dimension's file boundaries: find its file.
      std::size_t file = v.chunks[static_cast<std::size_t>(idx)].file;
      std::vector<std::size_t> start(v.ndim()), count(v.ndim());
      for (std::size_t d = 0; d < v.ndim(); ++d) {
        start[d] = static_cast<std::size_t>(v.grid.edges[d][static_cast<std::size_t>(c[d])]);
        count[d] = static_cast<std::size_t>(v.grid.edges[d][static_cast<std::size_t>(c[d]) + 1]) -
                   start[d];
      }
      if (ds.files.size() > 1 && v.dims[0] == "time") {
        // Files hold 24 steps each in these tests.
        start[0] -= 24 * file;
      }
      int id, varid;
      nc(nc_open(ds.files[file].c_str(), NC_NOWRITE, &id));
      nc(nc_inq_varid(id, v.name.c_str(), &varid));
      std::size_t n = 1;
      for (auto k : count) n *= k;
      std::vector<unsigned char> expected(n * static_cast<std::size_t>(v.dtype.size));
      nc(nc_get_vara(id, varid, start.data(), count.data(), expected.data()));
      nc_close(id);
      // Compare the cell, a corner of the nominal chunk.
      std::vector<std::size_t> pos(v.ndim(), 0);
      for (std::size_t e = 0; e < n; ++e) {
        std::size_t offset = 0;
        for (std::size_t d = 0; d < v.ndim(); ++d)
          offset = offset * static_cast<std::size_t>(v.grid.chunk_shape[d]) + pos[d];
        ASSERT_EQ(std::memcmp(chunk.data() + offset * static_cast<std::size_t>(v.dtype.size),
                              expected.data() + e * static_cast<std::size_t>(v.dtype.size),
                              static_cast<std::size_t>(v.dtype.size)),
                  0)
            << chunk_location(ds, v, idx) << " element " << e;
        for (std::size_t d = v.ndim(); d-- > 0;) {
          if (++pos[d] < count[d]) break;
          pos[d] = 0;
        }
      }
    }
  }
}

TEST(NetcdfRead, FixturesMadeByNetcdf4Python) {
  const fs::path dir = fs::path(ZP_FIXTURES) / "era5_small";
  if (!fs::exists(dir)) GTEST_SKIP() << "fixtures not found";
  expect_same_as_netcdf_c(open_source((dir / "era5_small_*.nc").string(), "netcdf", ""));
  expect_same_as_netcdf_c(
      open_source((fs::path(ZP_FIXTURES) / "classic" / "tp_classic.nc").string(), "auto", ""));
}

// A FileReader that counts reads and fails every read after `fail_after` of them, as a remote
// backend does when its retries are spent.
class FailingReader : public FileReader {
 public:
  explicit FailingReader(int fail_after) : fail_after_(fail_after) {}
  Bytes read(const std::string& path, uint64_t offset, uint64_t length) override {
    if (++reads_ > fail_after_) throw Error::transient(path, "HTTP 503 after 3 retries");
    return FileReader::read(path, offset, length);
  }
  int reads() const { return reads_; }

 private:
  int fail_after_;
  int reads_ = 0;
};

TEST(NetcdfRead, HdfDriverOverAReadableDescribesAsTheFileSystemDoes) {
  const fs::path file = fs::path(ZP_FIXTURES) / "era5_small" / "era5_small_20000101.nc";
  if (!fs::exists(file)) GTEST_SKIP() << "fixtures not found";
  const Dataset direct = open_source(file.string(), "netcdf", "");
  FailingReader reader(1 << 30);
  const hid_t id = open_hdf5_through(reader, file.string(), fs::file_size(file));
  ASSERT_GE(id, 0);
  ScanPart part = describe_netcdf4(id, file.string(), "");
  H5Fclose(id);
  part.ds.uri = direct.uri;
  EXPECT_EQ(dataset_text(part.ds), dataset_text(direct));
  // Metadata comes in pages: a handful of reads, not one per HDF5 object.
  EXPECT_LE(reader.reads(), 4);
}

TEST(NetcdfRead, HdfDriverPassesTheReadersErrorThrough) {
  const fs::path file = fs::path(ZP_FIXTURES) / "era5_small" / "era5_small_20000101.nc";
  if (!fs::exists(file)) GTEST_SKIP() << "fixtures not found";
  for (int fail_after : {0, 1}) {
    FailingReader reader(fail_after);
    try {
      const hid_t id = open_hdf5_through(reader, file.string(), fs::file_size(file));
      ScanPart part = describe_netcdf4(id, file.string(), "");
      H5Fclose(id);
      // The whole file's metadata was in the first page: then the description needs no more.
      EXPECT_EQ(fail_after, 1);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Transient) << e.what();
      EXPECT_NE(std::string(e.what()).find("503"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  }
}

TEST(NetcdfRead, LayoutsFiltersAndByteOrdersWrittenByNetcdfC) {
  const fs::path path =
      fs::temp_directory_path() / ("zp_layouts_" + std::to_string(getpid()) + ".nc");
  int id, dt, dy, dx;
  nc(nc_create(path.c_str(), NC_CLOBBER | NC_NETCDF4, &id));
  nc(nc_def_dim(id, "time", NC_UNLIMITED, &dt));
  nc(nc_def_dim(id, "y", 13, &dy));
  nc(nc_def_dim(id, "x", 9, &dx));
  const int dims3[3] = {dt, dy, dx}, dims2[2] = {dy, dx};
  int checked, big, flat, tiny, sparse;
  nc(nc_def_var(id, "checked", NC_FLOAT, 3, dims3, &checked));
  const std::size_t ch[3] = {4, 5, 9};
  nc(nc_def_var_chunking(id, checked, NC_CHUNKED, ch));
  nc(nc_def_var_deflate(id, checked, 1, 1, 3));
  nc(nc_def_var_fletcher32(id, checked, NC_FLETCHER32));
  nc(nc_def_var(id, "big", NC_INT, 3, dims3, &big));
  nc(nc_def_var_chunking(id, big, NC_CHUNKED, ch));
  nc(nc_def_var_endian(id, big, NC_ENDIAN_BIG));
  nc(nc_def_var(id, "flat", NC_DOUBLE, 2, dims2, &flat));
  nc(nc_def_var_chunking(id, flat, NC_CONTIGUOUS, nullptr));
  nc(nc_def_var(id, "tiny", NC_SHORT, 2, dims2, &tiny));
  nc(nc_def_var_chunking(id, tiny, NC_COMPACT, nullptr));
  nc(nc_def_var(id, "sparse", NC_SHORT, 3, dims3, &sparse));  // chunks never written: fill value
  nc(nc_def_var_chunking(id, sparse, NC_CHUNKED, ch));
  nc(nc_enddef(id));
  std::mt19937 rng(3);
  std::vector<float> f(10 * 13 * 9);
  std::vector<int> i(10 * 13 * 9);
  for (auto& x : f) x = static_cast<float>(rng() % 1000) / 7.0f;
  for (auto& x : i) x = static_cast<int>(rng()) / 3;
  std::vector<double> d(13 * 9);
  std::vector<short> s(13 * 9);
  for (auto& x : d) x = static_cast<double>(rng()) / 11.0;
  for (auto& x : s) x = static_cast<short>(rng() % 30000);
  const std::size_t start[3] = {0, 0, 0}, count[3] = {10, 13, 9};
  nc(nc_put_vara_float(id, checked, start, count, f.data()));
  nc(nc_put_vara_int(id, big, start, count, i.data()));
  nc(nc_put_var_double(id, flat, d.data()));
  nc(nc_put_var_short(id, tiny, s.data()));
  const std::size_t one[3] = {9, 0, 0}, cnt1[3] = {1, 13, 9};
  nc(nc_put_vara_short(id, sparse, one, cnt1, s.data()));
  nc(nc_close(id));

  const Dataset ds = open_source(path.string(), "netcdf", "");
  EXPECT_EQ(ds.variable("big").dtype.big_endian, true);
  bool has_fletcher = false;
  for (const auto& c : ds.variable("checked").codecs) has_fletcher |= c.id == "fletcher32";
  EXPECT_TRUE(has_fletcher);
  EXPECT_EQ(ds.variable("flat").chunks[0].kind, ChunkRef::Kind::Range);
  EXPECT_EQ(ds.variable("tiny").chunks[0].kind, ChunkRef::Kind::Inline);
  EXPECT_EQ(ds.variable("sparse").chunks[0].kind, ChunkRef::Kind::Missing);
  expect_same_as_netcdf_c(ds);
  fs::remove(path);
}

TEST(NetcdfRead, FilesThatDoNotJoinAreNamed) {
  const fs::path dir = fs::temp_directory_path() / ("zp_join_" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (int k = 0; k < 2; ++k) {
    int id, dt, dy, vt, vy, vv;
    nc(nc_create((dir / ("f" + std::to_string(k) + ".nc")).c_str(), NC_CLOBBER | NC_NETCDF4, &id));
    nc(nc_def_dim(id, "time", NC_UNLIMITED, &dt));
    nc(nc_def_dim(id, "y", 3, &dy));
    nc(nc_def_var(id, "time", NC_INT, 1, &dt, &vt));
    nc(nc_def_var(id, "y", NC_FLOAT, 1, &dy, &vy));
    const int dims[2] = {dt, dy};
    nc(nc_def_var(id, "v", NC_FLOAT, 2, dims, &vv));
    nc(nc_enddef(id));
    const float y[3] = {1.0f, 2.0f, k == 0 ? 3.0f : 3.5f};
    nc(nc_put_var_float(id, vy, y));
    const std::size_t st[2] = {0, 0}, ct[2] = {2, 3};
    const float v[6] = {1, 2, 3, 4, 5, 6};
    nc(nc_put_vara_float(id, vv, st, ct, v));
    nc(nc_close(id));
  }
  try {
    open_source((dir / "f*.nc").string(), "netcdf", "");
    FAIL() << "mismatched coordinates were joined";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f1.nc"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("coordinate 'y'"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// Files chunked differently along the join (Variable::layout_runs) survive the manifest cache and
// plans; a description whose cell is larger than its file's chunk (which would make the copy read
// past the decoded chunk) is refused.
TEST(NetcdfRead, LayoutRunsRoundTripAndForgedOnesAreRefused) {
  Variable v;
  v.name = "t2m";
  v.dims = {"time", "x"};
  v.shape = {60, 4};
  v.dtype = DType::parse("<f4");
  v.attrs = Attrs::object();
  v.grid.chunk_shape = {31, 4};
  v.grid.edges = {{0, 31, 60}, {0, 4}};
  v.chunks.assign(2, ChunkRef{});
  for (uint32_t f = 0; f < 2; ++f) {
    v.chunks[f].kind = ChunkRef::Kind::Range;
    v.chunks[f].file = f;
    v.chunks[f].length = 16;
  }
  v.layout_runs = {{0, {31, 4}, {}}, {1, {29, 4}, {}}};
  EXPECT_EQ(v.layout_fault(), "");
  EXPECT_EQ(v.chunk_bytes_of(v.chunks[1]), 29u * 4 * 4);
  const Variable back = variable_from(variable_json(v), "test");
  ASSERT_EQ(back.layout_runs.size(), 2u);
  EXPECT_EQ(back.chunk_shape_of(back.chunks[1]), (std::vector<int64_t>{29, 4}));
  auto forged = variable_json(v);
  forged["layout_runs"][1]["chunk_shape"] = {28, 4};  // the second cell is 29 long
  EXPECT_THROW(variable_from(forged, "test"), Error);
  forged["layout_runs"][1]["chunk_shape"] = {32, 4};  // beyond the buffers' size
  EXPECT_THROW(variable_from(forged, "test"), Error);
}

}  // namespace
}  // namespace zp
