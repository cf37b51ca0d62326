// A float32 GEMM for the small operands of MLP passes (K ≤ kSmallGemmMaxK, N ≤ kSmallGemmMaxN).
//
// OpenBLAS packs both operands on every call; on the 100×100×40 GEMMs of a population step its
// packing copies and C zeroing took a quarter of the step (perf, docs/native.md §3a). This kernel
// packs only op(B), into 24-column panels, and reads op(A) in place: a 4×24 block of C lives in
// twelve AVX2 registers while k runs from 0 to K-1 (6×16 or 6×8 for a last panel of at most 16 or
// 8 columns). A last panel of at most 4 columns, when op(A) is not transposed, goes row by row
// instead, k in vectors of 8 (narrow_rows).
//
// Every element of C is one FMA chain over k in order (in a narrow last panel: eight lane chains,
// k ≡ l mod 8, summed in a fixed order), then at most one FMA with beta·C, so its bits do not depend
// on M, on where its row sits in A, on the thread or on the other columns: stacking rows (members,
// tangents, shards) gives the same result as running them apart. Which path runs depends on (ta, N,
// K, dtype, CPU) alone, never on M or the strides, for the same reason.
#pragma once

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

constexpr i64 kSmallGemmMaxK = 1024;  // op(B)'s 16-column panel (K·64 bytes) stays within L2
constexpr i64 kSmallGemmMaxN = 256;

// True when this CPU runs the kernel (AVX2 and FMA) and PYQUIRK_SMALL_GEMM is not "0".
bool small_gemm_available();

// Whether gemm() sends a float32 product of this shape to small_sgemm.
inline bool small_gemm_shape(i64 N, i64 K) { return K <= kSmallGemmMaxK && N <= kSmallGemmMaxN; }

// Row-major C[M, N] = op(A)[M, K]·op(B)[K, N] + beta·C (beta = 0 never reads C); op(X) = Xᵀ when
// trans; lda/ldb/ldc are row strides. Requires small_gemm_available() and K ≥ 1.
void small_sgemm(bool ta, bool tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B, i64 ldb,
                 float beta, float* C, i64 ldc);

}  // namespace cpu
}  // namespace pyquirk
