// zp-bench-floor: the hardware floor of a plan, measured with the codec libraries the engine uses.
// read   = time to pread every needed source chunk once (page cache warm), one thread;
// decode = single-thread time to decode every needed source chunk once;
// encode = single-thread time to encode every output chunk once with the plan's compressor.
// floor  = max(read, (decode + encode) / cores): reads and writes overlap the codecs, as DMA does.
// With --write-dir DIR, also
// write  = single-thread time to write every encoded output chunk once, a file each, into a
//          directory this program makes in DIR (and removes with its files after);
// floor_mem = (read + decode + encode + write) / cores: the floor when sources and store are in
//          memory (page cache, tmpfs), where reading and writing are CPU copies on the same cores
//          as the codecs. Prints JSON.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <set>
#include <thread>

#include "codec/codec.hpp"
#include "plan/plan_json.hpp"
#include "plan/units.hpp"
#include "source/chunk_reader.hpp"
#include "store/file_reader.hpp"
#include "write/job_runner.hpp"

using namespace zp;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int main(int argc, char** argv) {
  CLI::App app{"zp-bench-floor: read/decode/encode floor of a saved plan"};
  std::string plan_path;
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  app.add_option("PLAN", plan_path, "plan JSON (zarr-parallel plan --json)")->required();
  std::string write_parent;
  app.add_option("--cores", cores, "cores the floor divides compute by");
  app.add_option("--write-dir", write_parent,
                 "also time writing the output chunks, in a new directory made inside this one");
  CLI11_PARSE(app, argc, argv);
  const Plan plan = load_plan(plan_path);
  const Dataset files = files_of(plan);
  double read = 0, decode = 0, encode = 0, write = 0;
  uint64_t read_bytes = 0, encoded_bytes = 0;
  for (const auto& a : plan.arrays) {
    if (a.coordinate) continue;
    std::set<int64_t> needed;
    for (const auto& j : plan.jobs)
      if (&plan.arrays[static_cast<std::size_t>(j.array)] == &a)
        needed.insert(j.source_chunks.begin(), j.source_chunks.end());
    FileReader reader;
    std::vector<Bytes> raw;
    auto t0 = Clock::now();
    for (int64_t idx : needed) {
      const ChunkRef& r = a.source.chunks[static_cast<std::size_t>(idx)];
      if (r.kind != ChunkRef::Kind::Range) continue;
      raw.push_back(reader.read(files.files[r.file], r.offset, r.length));
      read_bytes += r.length;
    }
    read += since(t0);
    // Decoded source chunks, kept until there is an output chunk's worth: an output chunk built
    // from one source chunk repeated (W3: a (1, 91, 180) chunk 24 times) compresses far better
    // and faster than real data, which made the floor too low.
    Bytes sample;
    t0 = Clock::now();
    for (auto& b : raw) {
      Bytes d = decode_chain(a.source.codecs, std::move(b), a.source.chunk_bytes(), "floor");
      if (sample.size() < a.chunk_bytes()) sample.insert(sample.end(), d.begin(), d.end());
    }
    decode += since(t0);
    // Encode one output chunk's worth of real data per output chunk.
    const std::vector<CodecSpec>& chain = a.codecs;
    Bytes chunk(a.chunk_bytes());
    for (std::size_t i = 0; i < chunk.size(); ++i)
      chunk[i] = sample.empty() ? 0 : sample[i % sample.size()];
    Bytes encoded;
    t0 = Clock::now();
    for (int64_t k = 0; k < a.num_chunks(); ++k) {
      encoded = encode_chain(chain, chunk, a.conversion.out.size);
      encoded_bytes += encoded.size();
    }
    encode += since(t0);
    if (write_parent.empty()) continue;
    // A directory of our own (mkdtemp), so nothing that was there is touched.
    std::string dir = write_parent + "/zp-floor-XXXXXX";
    if (!mkdtemp(dir.data())) {
      fmt::print(stderr, "cannot make a directory in {}\n", write_parent);
      return 1;
    }
    std::vector<std::string> made;
    t0 = Clock::now();
    for (int64_t k = 0; k < a.num_chunks(); ++k) {
      made.push_back(fmt::format("{}/{}", dir, k));
      const int fd = ::open(made.back().c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0 ||
          ::write(fd, encoded.data(), encoded.size()) != static_cast<ssize_t>(encoded.size())) {
        fmt::print(stderr, "cannot write {}\n", made.back());
        return 1;
      }
      ::close(fd);
    }
    write += since(t0);
    for (const auto& f : made) ::unlink(f.c_str());
    ::rmdir(dir.c_str());
  }
  const int n = std::max(cores, 1);
  const double floor = std::max(read, (decode + encode) / n);
  fmt::print(
      "{{\"read_s\": {:.4f}, \"decode_s\": {:.4f}, \"encode_s\": {:.4f}, \"cores\": {}, "
      "\"floor_s\": {:.4f}, \"read_bytes\": {}, \"encoded_bytes\": {}",
      read, decode, encode, cores, floor, read_bytes, encoded_bytes);
  if (!write_parent.empty())
    fmt::print(", \"write_s\": {:.4f}, \"floor_mem_s\": {:.4f}", write,
               (read + decode + encode + write) / n);
  fmt::print("}}\n");
  return 0;
}
