#include "write/unit_prefetch.hpp"

#include "plan/units.hpp"

namespace zp {

namespace {

// The first batch is small, so decoding starts after a few MB; the next ones are a few units
// each, so that while one is decoded the next arrives (on a slow link, a round trip a batch is
// hidden behind the decoding); two of them are well within the bound.
constexpr uint64_t kFirstBatchBytes = kRemoteBatchBytes / 8;
constexpr uint64_t kBatchBytes = kRemoteBatchBytes / 4;

}  // namespace

UnitPrefetch::~UnitPrefetch() {
  if (next_fetch_.valid()) next_fetch_.wait();
}

UnitPrefetch::Batch UnitPrefetch::batch_from(std::size_t u, uint64_t limit) const {
  Batch b{u, 0};
  for (; b.end < units_.size(); ++b.end) {
    uint64_t unit_bytes = 0;
    for (const int64_t c : source_chunks_of(a_, units_[b.end])) {
      const ChunkRef& ref = a_.source.chunks[static_cast<std::size_t>(c)];
      unit_bytes += ref.kind == ChunkRef::Kind::Range ? ref.length : 0;
    }
    if (b.end > u && b.bytes + unit_bytes > limit) break;  // a batch holds at least one unit
    b.bytes += unit_bytes;
  }
  return b;
}

FetchedChunks UnitPrefetch::fetch(std::size_t from, std::size_t end) const {
  std::vector<int64_t> want;
  for (std::size_t k = from; k < end; ++k) {
    const auto more = source_chunks_of(a_, units_[k]);
    want.insert(want.end(), more.begin(), more.end());
  }
  auto raw = reader_.fetch_many(a_.source, want);
  FetchedChunks out;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (raw[i]) out[want[i]] = std::move(*raw[i]);
  return out;
}

void UnitPrefetch::cover(std::size_t u, FetchedChunks& fetched) {
  if (u < until_) return;
  Batch now;
  if (next_fetch_.valid()) {  // the batch from u on, started while the one before was decoded
    now = next_;
    fetched.merge(next_fetch_.get());  // rethrows what the fetch threw
  } else {
    now = batch_from(u, until_ == 0 ? kFirstBatchBytes : kBatchBytes);
    fetched.merge(fetch(u, now.end));
  }
  until_ = now.end;
  if (until_ >= units_.size()) return;
  const Batch next = batch_from(until_, kBatchBytes);
  if (now.bytes + next.bytes > kRemoteBatchBytes) return;  // fetched when its turn comes
  next_ = next;
  next_fetch_ = std::async(std::launch::async,
                           [this, from = until_, end = next.end] { return fetch(from, end); });
}

}  // namespace zp
