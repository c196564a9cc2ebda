// zp-bench-codecs: the codec choices issue 14 asks to measure, on a saved plan's real chunks.
//  - unshuffle of the source chunks (after inflate): the old scalar loop, ours (the codec table's
//    shuffle_decode), and c-blosc's own SIMD unshuffle, isolated as blosc_decompress of
//    incompressible data stored shuffled minus the same without shuffle (blosc's unshuffle is not
//    exported; stored raw, decompression is a copy plus the unshuffle);
//  - the output compressor (blosc) at its automatic block size and at fixed ones: encode and decode
//    seconds and bytes.
// Single thread; each figure the best of --repeat passes. Prints JSON.
#include <blosc.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <random>
#include <set>

#include "codec/codec.hpp"
#include "plan/plan_json.hpp"
#include "store/file_reader.hpp"
#include "write/job_runner.hpp"

using namespace zp;
using Clock = std::chrono::steady_clock;

namespace {

double best_of(int repeat, const std::function<void()>& f) {
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

Bytes unshuffle_scalar(const Bytes& in, std::size_t es) {  // the engine's loop before this issue
  const std::size_t n = in.size() / es;
  Bytes out(in.size());
  for (std::size_t b = 0; b < es; ++b)
    for (std::size_t i = 0; i < n; ++i) out[i * es + b] = in[b * n + i];
  return out;
}

Bytes blosc_raw(const Bytes& data, int shuffle, int typesize, std::size_t blocksize) {
  Bytes out(2 * data.size() + BLOSC_MAX_OVERHEAD);  // room to store blocks raw, not memcpyed whole
  const int n = blosc_compress_ctx(5, shuffle, static_cast<std::size_t>(typesize), data.size(),
                                   data.data(), out.data(), out.size(), "lz4", blocksize, 1);
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zp-bench-codecs: unshuffle and blosc block sizes on a saved plan's chunks"};
  std::string plan_path;
  int repeat = 3;
  std::size_t max_chunks = 2000;
  app.add_option("PLAN", plan_path, "plan JSON (zarr-parallel plan --json)")->required();
  app.add_option("--repeat", repeat, "passes per figure (the best counts)");
  app.add_option("--max-chunks", max_chunks, "source chunks sampled");
  CLI11_PARSE(app, argc, argv);
  const Plan plan = load_plan(plan_path);
  const Dataset files = files_of(plan);
  const ArrayPlan* a = nullptr;
  for (const auto& x : plan.arrays)
    if (!x.coordinate) a = &x;
  if (!a) return 1;

  // Source chunks, inflated but still shuffled: the input the unshuffle step sees.
  std::vector<CodecSpec> before_shuffle;
  int es = 0;
  for (const auto& c : a->source.codecs) {
    if (c.id == "shuffle") es = c.config.value("elementsize", 0);
    else if (es == 0) before_shuffle.push_back(c);
  }
  std::set<int64_t> needed;
  for (const auto& j : plan.jobs) needed.insert(j.source_chunks.begin(), j.source_chunks.end());
  FileReader reader;
  std::vector<Bytes> shuffled;
  std::size_t total = 0;
  for (int64_t idx : needed) {
    if (shuffled.size() >= max_chunks) break;
    const ChunkRef& r = a->source.chunks[static_cast<std::size_t>(idx)];
    if (r.kind != ChunkRef::Kind::Range) continue;
    Bytes raw = reader.read(files.files[r.file], r.offset, r.length);
    // Compressor only (the codecs after shuffle in the chain's encode order).
    std::vector<CodecSpec> outer;
    bool after = false;
    for (const auto& c : a->source.codecs) {
      if (after) outer.push_back(c);
      if (c.id == "shuffle") after = true;
    }
    shuffled.push_back(decode_chain(outer, std::move(raw), a->source.chunk_bytes(), "bench"));
    total += shuffled.back().size();
  }
  nlohmann::json out = {{"source_chunks", shuffled.size()}, {"source_bytes", total},
                        {"elementsize", es}};
  if (es > 1) {
    const nlohmann::json cfg = {{"elementsize", es}};
    out["unshuffle_scalar_s"] = best_of(repeat, [&] {
      for (const auto& c : shuffled) unshuffle_scalar(c, static_cast<std::size_t>(es));
    });
    out["unshuffle_ours_s"] = best_of(repeat, [&] {
      for (const auto& c : shuffled) shuffle_decode(c, cfg, 0);
    });
    Bytes into(shuffled.front().size() * 2);  // as blosc's figure: no allocation
    out["unshuffle_ours_into_s"] = best_of(repeat, [&] {
      for (const auto& c : shuffled)
        unshuffle_bytes(c.data(), into.data(), c.size(), static_cast<std::size_t>(es));
    });
    // blosc: random bytes of the same chunk sizes, so every block is stored raw.
    std::mt19937_64 rng(1);
    std::vector<Bytes> with, without;
    for (const auto& c : shuffled) {
      Bytes r(c.size());
      for (auto& b : r) b = static_cast<unsigned char>(rng());
      with.push_back(blosc_raw(r, BLOSC_SHUFFLE, es, 0));
      without.push_back(blosc_raw(r, BLOSC_NOSHUFFLE, es, 0));
    }
    Bytes dst(shuffled.front().size() * 2);
    auto decompress_all = [&](const std::vector<Bytes>& v) {
      return best_of(repeat, [&] {
        for (const auto& c : v) blosc_decompress_ctx(c.data(), dst.data(), dst.size(), 1);
      });
    };
    const double t_with = decompress_all(with), t_without = decompress_all(without);
    out["blosc_decompress_raw_shuffled_s"] = t_with;
    out["blosc_decompress_raw_s"] = t_without;
    out["unshuffle_blosc_s"] = t_with - t_without;
  }

  // Output chunks of real data: decoded source chunks laid end to end.
  Bytes data;
  {
    const nlohmann::json cfg = {{"elementsize", es}};
    for (const auto& c : shuffled) {
      Bytes d = es > 1 ? shuffle_decode(c, cfg, 0) : c;
      data.insert(data.end(), d.begin(), d.end());
    }
  }
  const std::size_t chunk = a->chunk_bytes();
  const int itemsize = a->conversion.out.size;
  std::vector<Bytes> chunks;
  for (std::size_t off = 0; off + chunk <= data.size(); off += chunk)
    chunks.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(off),
                        data.begin() + static_cast<std::ptrdiff_t>(off + chunk));
  if (chunks.empty()) chunks.push_back(data);
  nlohmann::json compressor = a->codecs.empty() ? nlohmann::json() : a->codecs.back().config;
  out["output_chunks"] = chunks.size();
  out["output_chunk_bytes"] = chunk;
  out["compressor"] = compressor;
  if (compressor.value("id", "") == "blosc") {
    nlohmann::json rows = nlohmann::json::array();
    for (const std::size_t bs : {std::size_t{0}, std::size_t{16} << 10, std::size_t{32} << 10,
                                 std::size_t{64} << 10, std::size_t{128} << 10,
                                 std::size_t{256} << 10, std::size_t{512} << 10,
                                 std::size_t{1} << 20}) {
      nlohmann::json cfg = compressor;
      cfg["blocksize"] = bs;
      std::vector<Bytes> enc(chunks.size());
      const double te = best_of(repeat, [&] {
        for (std::size_t i = 0; i < chunks.size(); ++i) enc[i] = blosc_encode(chunks[i], cfg, itemsize);
      });
      std::size_t bytes = 0, used = 0, nb = 0, cb = 0;
      for (const auto& e : enc) bytes += e.size();
      blosc_cbuffer_sizes(enc.front().data(), &nb, &cb, &used);
      std::vector<Bytes> dec(enc.size());
      const double td = best_of(repeat, [&] {
        for (std::size_t i = 0; i < enc.size(); ++i) dec[i] = blosc_decode(enc[i], cfg, chunk);
      });
      if (dec != chunks) throw std::runtime_error("blosc round trip differs");
      rows.push_back({{"blocksize", bs}, {"blocksize_used", used}, {"encode_s", te},
                      {"decode_s", td}, {"bytes", bytes}});
    }
    out["blosc"] = rows;
  }
  fmt::print("{}\n", out.dump(1));
  return 0;
}
