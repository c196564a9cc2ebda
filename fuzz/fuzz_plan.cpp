// libFuzzer harness: plan.json as the worker, `status` and a resume read it (plan_from_text, the
// parse and the checks of load_plan / load_store_plan), then what they compute from the plan
// first: chunk counts and sizes, and each small job's source chunks through its index maps. Any
// input must end in a Plan or a zp::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "plan/plan_json.hpp"
#include "plan/units.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const zp::Plan p = zp::plan_from_text(text, "plan.json");
    std::size_t sum = 0;
    for (const auto& a : p.arrays)
      sum += static_cast<std::size_t>(a.num_chunks()) + a.chunk_bytes();
    for (std::size_t i = 0; i < p.jobs.size() && i < 64; ++i) {
      const zp::Job& job = p.jobs[i];
      if (job.region.num_chunks() <= 4096)
        sum +=
            zp::source_chunks_of(p.arrays[static_cast<std::size_t>(job.array)], job.region).size();
    }
    if (sum == 1) return 0;  // keeps the work from being optimised away
  } catch (const zp::Error&) {
  }
  return 0;
}
