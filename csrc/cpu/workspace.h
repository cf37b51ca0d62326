// Scratch memory of a pass. A pass lays its buffers out twice with the same code: once with a
// null base to measure (Carver::bytes), once on a thread-local arena that is kept between calls,
// so a repeated pass neither allocates nor page-faults.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

class Carver {
 public:
  explicit Carver(char* base) : base_(base) {}
  template <class U>
  U* take(i64 n) {
    off_ = (off_ + kAlign - 1) / kAlign * kAlign;
    U* p = base_ ? reinterpret_cast<U*>(base_ + off_) : nullptr;
    off_ += static_cast<size_t>(n) * sizeof(U);
    return p;
  }
  size_t bytes() const { return off_ + kAlign; }

 private:
  static constexpr size_t kAlign = 64;
  char* base_;
  size_t off_ = 0;
};

// One growing, 64-byte-aligned block per thread.
class Arena {
 public:
  ~Arena() { std::free(ptr_); }
  char* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      size_t rounded = (bytes + 4095) / 4096 * 4096;
      ptr_ = static_cast<char*>(std::aligned_alloc(4096, rounded));
      if (!ptr_) throw std::bad_alloc();
      cap_ = rounded;
    }
    return ptr_;
  }
  void release() {
    std::free(ptr_);
    ptr_ = nullptr;
    cap_ = 0;
  }
  size_t capacity() const { return cap_; }

 private:
  char* ptr_ = nullptr;
  size_t cap_ = 0;
};

Arena& thread_arena();  // the scratch of the passes this thread runs
Arena& sum_arena();     // the per-shard parameter gradients of the passes this thread starts

}  // namespace cpu
}  // namespace pyquirk
