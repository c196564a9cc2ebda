// zp-bench-floor: the hardware floor of a plan, measured with the codec libraries the engine uses.
// read   = time to pread every needed source chunk once (page cache warm), one thread;
// decode = single-thread time to decode every needed source chunk once;
// encode = single-thread time to encode every output chunk once with the plan's compressor.
// floor  = max(read, (decode + encode) / cores). Prints JSON.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
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
  app.add_option("--cores", cores, "cores the floor divides compute by");
  CLI11_PARSE(app, argc, argv);
  const Plan plan = load_plan(plan_path);
  const Dataset files = files_of(plan);
  double read = 0, decode = 0, encode = 0;
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
    t0 = Clock::now();
    for (int64_t k = 0; k < a.num_chunks(); ++k)
      encoded_bytes += encode_chain(chain, chunk, a.conversion.out.size).size();
    encode += since(t0);
  }
  const double floor = std::max(read, (decode + encode) / std::max(cores, 1));
  fmt::print(
      "{{\"read_s\": {:.4f}, \"decode_s\": {:.4f}, \"encode_s\": {:.4f}, \"cores\": {}, "
      "\"floor_s\": {:.4f}, "
      "\"read_bytes\": {}, \"encoded_bytes\": {}}}\n",
      read, decode, encode, cores, floor, read_bytes, encoded_bytes);
  return 0;
}
