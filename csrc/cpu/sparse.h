// Sparse inference for pruned Dense layers: CSR weight × feature-major activations.
//
// A pruned Dense weight W [out, in] is stored in CSR: indptr [out + 1] (int64), indices [nnz] (int32
// column ids, ascending within a row), data [nnz]. Activations are kept feature-major, Xt [in, N]
// (one row per input feature, the N samples contiguous), so one output row is a sum of contiguous
// rows of Xt scaled by the row's weights:
//
//   Yt[o, :] = act( b[o] + Σ_{t = indptr[o]}^{indptr[o+1]−1} data[t] · Xt[indices[t], :] )
//
// accumulated in T, entry by entry in the row's order (for fewer than 4 samples, in four partial
// sums over t mod 4, added at the end); the NumPy twin, pyquirk/compression/_reference.py csr_matmul,
// sums the same terms in its own order, so the two agree to rounding (tests/_tol.py "fast"). The output Yt [out, N] is the next layer's Xt, so
// an MLP transposes only its input and its logits.
//
// Blocking: the samples are cut into blocks of nb columns so that the block of Xt every output row
// reads (in × nb values, about kSparseBlockBytes) stays in cache. When N > nb, Xt is first copied
// block by block into a contiguous buffer: read in place, a block is `in` short pieces at a stride
// of N values, which with N a power of two map to few cache sets. Threads (OpenMP) split that copy
// (one barrier), then take output rows of each block in dynamic chunks without a barrier between
// blocks, so a thread delayed by a busy machine holds the others up once at most, at the end.
#pragma once

#include <cstdint>

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

// Bytes of Xt one sample block should occupy (in × nb × sizeof(T)), and the block's bounds.
constexpr i64 kSparseBlockBytes = 256 * 1024;   // half an L2 of the 2-core EPYC it was tuned on
constexpr i64 kSparseBlockMin = 16, kSparseBlockMax = 256;
// Multiply-adds below which the product runs on the calling thread alone (about 0.3 ms of work):
// waking a second thread costs microseconds on a quiet machine but up to a scheduler tick (4 ms)
// when the cores are shared, which a small product cannot win back.
constexpr i64 kSparseParallelWork = 1 << 22;

// Yt [out, N] = act(W Xt + b); act = ReLU when relu, else identity; bias may be null. The input X is
// Xt [in, N] (feature-major), or with x_rows the sample-major X [N, in], transposed while it is
// copied into blocks (so a network's first layer needs no separate transpose).
// Preconditions (checked by the binding): indptr[0] = 0, non-decreasing, indptr[out] = nnz,
// 0 <= indices[t] < in.
template <class T>
void csr_matmul(i64 out, i64 in, i64 N, const std::int64_t* indptr, const std::int32_t* indices, const T* data,
                const T* bias, const T* X, bool x_rows, T* Yt, bool relu);

}  // namespace cpu
}  // namespace pyquirk
