#include <utility>

#include "store/writable.hpp"

namespace zp {

namespace {

// The pieces kept and put together at commit().
class HeldPieces : public PieceWriter {
 public:
  HeldPieces(WriteBatch& batch, std::string key) : batch_(batch), key_(std::move(key)) {}
  void append(const Bytes& piece) override { pieces_.push_back(piece); }
  void commit() override {
    std::vector<const Bytes*> parts;
    for (const auto& p : pieces_) parts.push_back(&p);
    batch_.put(key_, parts);
    pieces_.clear();
  }

 private:
  WriteBatch& batch_;
  std::string key_;
  std::vector<Bytes> pieces_;
};

}  // namespace

std::unique_ptr<PieceWriter> WriteBatch::open(const std::string& key) {
  return std::make_unique<HeldPieces>(*this, key);
}

}  // namespace zp
