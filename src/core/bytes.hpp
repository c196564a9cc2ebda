// Bytes: the buffer every chunk travels in. Its allocator does not zero what it adds:
// `Bytes b(n)` and `b.resize(n)` leave the new bytes uninitialised, because a chunk buffer is
// about to be overwritten whole (a decoder's output, a pread, an assembled output chunk) and
// zeroing it first cost 5% of a rechunking run's CPU. Where zeros are wanted, say so:
// `Bytes b(n, 0)`, `b.resize(n, 0)`. Copies, inserts and assigns behave as for any vector.
#pragma once

#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace zp {

template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() noexcept = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no zeroing for bytes
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T, class U>
bool operator==(const DefaultInitAllocator<T>&, const DefaultInitAllocator<U>&) noexcept {
  return true;
}

using Bytes = std::vector<unsigned char, DefaultInitAllocator<unsigned char>>;

}  // namespace zp
