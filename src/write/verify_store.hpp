// verify: re-reads the source selection through the same assembly the writer uses and compares it
// with the store — every chunk's decoded values bit for bit, each array's .zarray/.zattrs and the
// group's attributes. Reads only; reports the first differences with their keys.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.hpp"
#include "store/writable.hpp"

namespace zp {

struct VerifyReport {
  int64_t chunks_checked = 0;
  int64_t chunks_different = 0;
  std::vector<std::string> differences;  // the first few, each naming its key
  bool identical() const { return chunks_different == 0 && differences.empty(); }
};

VerifyReport verify_store(const Plan& plan, const Writable& store, int threads,
                          std::size_t max_reported = 10);

}  // namespace zp
