#include "source/zarr/reference_set.hpp"

#include <functional>

namespace zp {

uint32_t GeneratedReferences::path_id(const std::string& path) {
  const auto [it, added] = path_ids_.emplace(path, static_cast<uint32_t>(paths_.size()));
  if (added) paths_.push_back(path);
  return it->second;
}

std::size_t GeneratedReferences::slot_of(std::string_view key) const {
  const std::size_t mask = slots_.size() - 1;
  std::size_t s = std::hash<std::string_view>{}(key)&mask;
  while (slots_[s] != 0 && key_of(slots_[s] - 1) != key) s = (s + 1) & mask;
  return s;
}

// Twice the slots, rows placed anew (half full at most: probes stay short).
void GeneratedReferences::grow() {
  slots_.assign(slots_.empty() ? 1024 : slots_.size() * 2, 0);
  for (std::size_t i = 0; i < rows_.size(); ++i)
    if (alive_[i]) slots_[slot_of(key_of(i))] = static_cast<uint32_t>(i + 1);
}

void GeneratedReferences::set(std::string_view key, const Row& row) {
  if ((rows_.size() + 1) * 2 > slots_.size()) grow();
  const std::size_t s = slot_of(key);
  if (slots_[s] != 0) {
    rows_[slots_[s] - 1] = row;
    return;
  }
  keys_.append(key);
  key_end_.push_back(keys_.size());
  rows_.push_back(row);
  alive_.push_back(true);
  slots_[s] = static_cast<uint32_t>(rows_.size());
  ++live_;
}

const GeneratedReferences::Row* GeneratedReferences::find(std::string_view key) const {
  if (live_ == 0) return nullptr;
  const std::size_t s = slot_of(key);
  return slots_[s] ? &rows_[slots_[s] - 1] : nullptr;
}

bool GeneratedReferences::erase(std::string_view key) {
  if (live_ == 0) return false;
  const std::size_t s = slot_of(key);
  if (slots_[s] == 0) return false;
  alive_[slots_[s] - 1] = false;
  --live_;
  // The probe chain stays whole: the slots after it are placed anew.
  const std::size_t mask = slots_.size() - 1;
  slots_[s] = 0;
  for (std::size_t t = (s + 1) & mask; slots_[t] != 0; t = (t + 1) & mask) {
    const uint32_t row = slots_[t];
    slots_[t] = 0;
    slots_[slot_of(key_of(row - 1))] = row;
  }
  return true;
}

Reference GeneratedReferences::reference(const Row& row) const {
  Reference r;
  r.path = paths_[row.path];
  r.offset = row.offset;
  r.length = row.length;
  return r;
}

std::optional<Reference> ReferenceSet::get(const std::string& key) const {
  if (const auto* row = generated.find(key)) return generated.reference(*row);
  const auto it = explicit_refs.find(key);
  if (it == explicit_refs.end()) return std::nullopt;
  return it->second;
}

bool ReferenceSet::contains(const std::string& key) const {
  return explicit_refs.count(key) || generated.find(key);
}

void ReferenceSet::set(const std::string& key, Reference r) {
  generated.erase(key);
  explicit_refs[key] = std::move(r);
}

void ReferenceSet::set_generated(const std::string& key, const GeneratedReferences::Row& row) {
  const std::size_t slash = key.rfind('/');
  const std::size_t last = slash == std::string::npos ? 0 : slash + 1;
  const bool metadata = (last < key.size() && key[last] == '.') ||
                        key.compare(last, std::string::npos, "zarr.json") == 0;
  if (metadata) {  // explicit, where walks over the keys find it
    set(key, generated.reference(row));
    return;
  }
  explicit_refs.erase(key);
  generated.set(key, row);
}

ReferenceSet ReferenceSet::below(const std::string& prefix) const {
  ReferenceSet sub;
  for (const auto& [key, ref] : explicit_refs)
    if (key.rfind(prefix, 0) == 0) sub.explicit_refs[key.substr(prefix.size())] = ref;
  generated.for_each([&](std::string_view key, const GeneratedReferences::Row& row) {
    if (key.substr(0, prefix.size()) != prefix) return;
    GeneratedReferences::Row r = row;
    r.path = sub.generated.path_id(generated.path(row.path));
    sub.generated.set(key.substr(prefix.size()), r);
  });
  return sub;
}

}  // namespace zp
