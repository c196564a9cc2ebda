// UnitPrefetch: behind a network, a job's units are fetched in batches (one round trip serves
// many units), the next batch while the current one is decoded and written, on a thread of its
// own that mostly waits on the network. A job no longer waits for all its bytes before it decodes
// its first chunk: the first batch is small. At most kRemoteBatchBytes of stored bytes are held
// at once (the current batch and the next), as the memory prediction counts; when two batches
// would hold more, the next is fetched after the current one, as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <map>
#include <vector>

#include "plan/plan.hpp"
#include "source/chunk_reader.hpp"

namespace zp {

// Stored bytes of remote source chunks fetched ahead (taken out as they are used).
using FetchedChunks = std::map<int64_t, Bytes>;

class UnitPrefetch {
 public:
  UnitPrefetch(const ArrayPlan& a, const std::vector<Region>& units, ChunkReader& reader)
      : a_(a), units_(units), reader_(reader) {}
  ~UnitPrefetch();  // waits for a fetch in flight (it uses the reader)
  UnitPrefetch(const UnitPrefetch&) = delete;
  UnitPrefetch& operator=(const UnitPrefetch&) = delete;

  // Puts the stored bytes of unit `u` (and of the units after it in its batch) into `fetched`,
  // and starts fetching the next batch. Units are asked for in order.
  void cover(std::size_t u, FetchedChunks& fetched);

 private:
  struct Batch {
    std::size_t end = 0;  // units [start, end)
    uint64_t bytes = 0;
  };
  Batch batch_from(std::size_t u, uint64_t limit) const;
  FetchedChunks fetch(std::size_t from, std::size_t end) const;

  const ArrayPlan& a_;
  const std::vector<Region>& units_;
  ChunkReader& reader_;
  std::size_t until_ = 0;  // units [0, until_) are in the caller's map (or used)
  Batch next_;             // units [until_, next_.end) in flight, when next_fetch_ is valid
  std::future<FetchedChunks> next_fetch_;
};

}  // namespace zp
