#include "source/netcdf4/hdf5_readable_driver.hpp"

#include <H5FDpublic.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>

#include "core/error.hpp"

namespace zp {

namespace {

constexpr uint64_t kPageBytes = 128 << 10;
constexpr std::size_t kMaxPages = 512;  // 64 MiB of metadata pages at most, then dropped
constexpr uint64_t kDirectPages = 8;    // larger reads (data, not metadata) bypass the pages

thread_local std::exception_ptr last_error;

struct DriverInfo {
  Readable* reader = nullptr;
  uint64_t size = 0;
};

struct ReadableFile {
  H5FD_t pub;  // HDF5's part; must come first
  Readable* reader = nullptr;
  std::string location;
  uint64_t size = 0;
  haddr_t eoa = 0;
  std::map<uint64_t, Bytes> pages;
};

ReadableFile* self(H5FD_t* f) {
  return reinterpret_cast<ReadableFile*>(f);
}
const ReadableFile* self(const H5FD_t* f) {
  return reinterpret_cast<const ReadableFile*>(f);
}

void* info_get(H5FD_t* f) {
  auto* info = new DriverInfo{self(f)->reader, self(f)->size};
  return info;
}
void* info_copy(const void* info) {
  return new DriverInfo(*static_cast<const DriverInfo*>(info));
}
herr_t info_free(void* info) {
  delete static_cast<DriverInfo*>(info);
  return 0;
}

H5FD_t* open_file(const char* name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  (void)maxaddr;
  if ((flags & H5F_ACC_RDWR) || (flags & H5F_ACC_CREAT)) return nullptr;  // read-only driver
  const auto* info = static_cast<const DriverInfo*>(H5Pget_driver_info(fapl));
  if (!info || !info->reader) return nullptr;
  auto* f = new ReadableFile{};
  f->reader = info->reader;
  f->location = name;
  f->size = info->size;
  return &f->pub;
}

herr_t close_file(H5FD_t* f) {
  delete self(f);
  return 0;
}

int compare(const H5FD_t* a, const H5FD_t* b) {
  return self(a)->location.compare(self(b)->location);
}

herr_t query(const H5FD_t*, unsigned long* flags) {
  if (flags) *flags = H5FD_FEAT_DATA_SIEVE;
  return 0;
}

haddr_t get_eoa(const H5FD_t* f, H5FD_mem_t) {
  return self(f)->eoa;
}
herr_t set_eoa(H5FD_t* f, H5FD_mem_t, haddr_t addr) {
  self(f)->eoa = addr;
  return 0;
}
haddr_t get_eof(const H5FD_t* f, H5FD_mem_t) {
  return self(f)->size;
}

// Serves [addr, addr + size) from pages, fetching the missing ones in one batch.
void read_paged(ReadableFile& f, uint64_t addr, std::size_t size, unsigned char* out) {
  const uint64_t first = addr / kPageBytes, last = (addr + size - 1) / kPageBytes;
  std::vector<RangeRequest> missing;
  std::vector<uint64_t> missing_pages;
  for (uint64_t p = first; p <= last; ++p)
    if (!f.pages.count(p)) {
      const uint64_t off = p * kPageBytes;
      missing.push_back({f.location, off, std::min(kPageBytes, f.size - off)});
      missing_pages.push_back(p);
    }
  if (!missing.empty()) {
    if (f.pages.size() + missing.size() > kMaxPages) f.pages.clear();
    auto got = f.reader->read_many(missing);
    for (std::size_t i = 0; i < got.size(); ++i) f.pages[missing_pages[i]] = std::move(got[i]);
  }
  uint64_t at = addr;
  std::size_t done = 0;
  while (done < size) {
    const uint64_t p = at / kPageBytes, in = at % kPageBytes;
    const Bytes& page = f.pages.at(p);
    const std::size_t n = static_cast<std::size_t>(
        std::min<uint64_t>(size - done, static_cast<uint64_t>(page.size()) - in));
    std::memcpy(out + done, page.data() + in, n);
    done += n;
    at += n;
  }
}

herr_t read(H5FD_t* file, H5FD_mem_t, hid_t, haddr_t addr, size_t size, void* buf) {
  ReadableFile& f = *self(file);
  try {
    if (size == 0) return 0;
    if (addr == HADDR_UNDEF || addr + size > f.size)
      throw Error::source(f.location, "HDF5 asked for bytes past the end of the file");
    auto* out = static_cast<unsigned char*>(buf);
    if ((addr + size - 1) / kPageBytes - addr / kPageBytes >= kDirectPages) {
      Bytes got = f.reader->read(f.location, addr, size);
      std::memcpy(out, got.data(), size);
    } else {
      read_paged(f, addr, size, out);
    }
    return 0;
  } catch (...) {
    last_error = std::current_exception();
    return -1;
  }
}

herr_t write(H5FD_t*, H5FD_mem_t, hid_t, haddr_t, size_t, const void*) {
  return -1;
}

const H5FD_class_t kDriverClass = [] {
  H5FD_class_t c{};
  c.name = "zp_readable";
  c.maxaddr = (static_cast<haddr_t>(1) << 62) - 1;
  c.fc_degree = H5F_CLOSE_WEAK;
  c.fapl_size = sizeof(DriverInfo);
  c.fapl_get = info_get;
  c.fapl_copy = info_copy;
  c.fapl_free = info_free;
  c.open = open_file;
  c.close = close_file;
  c.cmp = compare;
  c.query = query;
  c.get_eoa = get_eoa;
  c.set_eoa = set_eoa;
  c.get_eof = get_eof;
  c.read = read;
  c.write = write;
  const H5FD_mem_t map[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::copy(std::begin(map), std::end(map), std::begin(c.fl_map));
  return c;
}();

hid_t driver_id() {
  static std::once_flag once;
  static hid_t id = -1;
  std::call_once(once, [] { id = H5FDregister(&kDriverClass); });
  return id;
}

}  // namespace

void rethrow_readable_error() {
  if (last_error) {
    auto e = last_error;
    last_error = nullptr;
    std::rethrow_exception(e);
  }
}

void hdf5_failed(const std::string& where, const std::string& what) {
  rethrow_readable_error();
  throw Error::source(where, what);
}

hid_t open_hdf5_through(Readable& reader, const std::string& location, uint64_t size) {
  const hid_t driver = driver_id();
  if (driver < 0) throw Error::internal("cannot register zarr-parallel's HDF5 file driver");
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  DriverInfo info{&reader, size};
  H5Pset_driver(fapl, driver, &info);
  last_error = nullptr;
  const hid_t file = H5Fopen(location.c_str(), H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (file < 0) {
    rethrow_readable_error();
    throw Error::source(location, "not an HDF5 file (NetCDF-4), or one HDF5 cannot read");
  }
  return file;
}

}  // namespace zp
