// Shared definitions of the CPU drivers: index type, accumulator type, when to go parallel.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace pyquirk {
namespace cpu {

using i64 = std::int64_t;

// Element-wise loops go parallel (OpenMP) only above this many elements: below it a fork/join
// costs more than the loop.
constexpr i64 kParallelWork = 1 << 15;

// Reductions (bias gradients) accumulate in double in both dtypes.
using acc_t = double;

bool in_item();       // threads.h
bool forked_child();  // threads.h: this process is a fork() child of one that used OpenMP

// Whether a loop of `work` elements should fork: big enough, and not already inside a parallel
// piece of work (a member or shard of a pass runs on one thread; its loops stay on that thread),
// and not in a fork() child (GNU OpenMP hangs there).
inline bool fork_ok(i64 work) {
#if defined(_OPENMP)
  return work > kParallelWork && !omp_in_parallel() && !in_item() && !forked_child();
#else
  (void)work;
  return false;
#endif
}

// body(i) for every i in [0, n): split over OpenMP threads when `fork` (a fork_ok answer), else a
// plain loop on this thread. The choice is made before any OpenMP region: entering one whose `if`
// clause is false still costs GNU OpenMP about 0.6 µs (it starts a team of one), which the passes
// paid for every loop of every member and layer (docs/native.md §3).
template <class F>
inline void parallel_for(bool fork, i64 n, F&& body) {
#if defined(_OPENMP)
  if (fork) {
#pragma omp parallel for schedule(static)
    for (i64 i = 0; i < n; ++i) body(i);
    return;
  }
#endif
  for (i64 i = 0; i < n; ++i) body(i);
}

// Whether no element is a NaN or an infinity (all exponent bits set). Counted on the bits, which
// the compiler vectorises (a float compare reduced into a bool stays a scalar loop, 3× slower).
template <class T>
inline bool all_finite(const T* p, i64 n) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U kExp = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U bad = 0;
  for (i64 i = 0; i < n; ++i) {
    U u;
    std::memcpy(&u, p + i, sizeof u);
    bad += (u & kExp) == kExp;
  }
  return bad == 0;
}

// Threads a pass may use: OpenMP's count (OMP_NUM_THREADS), else the hardware's.
int max_threads();  // threads.cpp

// Whether the files compiled twice (cpu/isa.h) run their AVX2 copy: the build has one, the CPU
// supports AVX2 and PYQUIRK_AVX2_LOOPS is not "0" (activations.cpp). Either copy gives the same bits.
bool avx2_loops();

}  // namespace cpu
}  // namespace pyquirk
