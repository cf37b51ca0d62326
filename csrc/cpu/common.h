// Shared definitions of the CPU drivers: index type, accumulator type, when to go parallel.
#pragma once

#include <cstdint>

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

// Threads a pass may use: OpenMP's count (OMP_NUM_THREADS), else the hardware's.
int max_threads();  // threads.cpp

}  // namespace cpu
}  // namespace pyquirk
