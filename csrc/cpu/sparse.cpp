#include "cpu/sparse.h"

#include <algorithm>
#include <vector>

namespace pyquirk {
namespace cpu {

namespace {

// One output row over nb samples: y = b + Σ_t w[t]·X[idx[t], 0:nb] (X with leading dimension ldx).
// Four entries per pass over y: the same left-to-right sum as one at a time, with fewer loads of y.
template <class T>
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && defined(__ELF__)
__attribute__((target_clones("avx2", "default")))
#endif
void row_block(const std::int32_t* idx, const T* w, i64 len, const T* X, i64 ldx, T b, T* y, i64 nb) {
  if (nb < 4) {  // a few samples: a gathered dot product per sample, four partial sums (t mod 4)
    for (i64 i = 0; i < nb; ++i) {
      T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      i64 t = 0;
      for (; t + 4 <= len; t += 4) {
        s0 = s0 + w[t] * X[static_cast<i64>(idx[t]) * ldx + i];
        s1 = s1 + w[t + 1] * X[static_cast<i64>(idx[t + 1]) * ldx + i];
        s2 = s2 + w[t + 2] * X[static_cast<i64>(idx[t + 2]) * ldx + i];
        s3 = s3 + w[t + 3] * X[static_cast<i64>(idx[t + 3]) * ldx + i];
      }
      for (; t < len; ++t) s0 = s0 + w[t] * X[static_cast<i64>(idx[t]) * ldx + i];
      y[i] = b + ((s0 + s1) + (s2 + s3));
    }
    return;
  }
  for (i64 i = 0; i < nb; ++i) y[i] = b;
  i64 t = 0;
  for (; t + 4 <= len; t += 4) {
    const T w0 = w[t], w1 = w[t + 1], w2 = w[t + 2], w3 = w[t + 3];
    const T* x0 = X + static_cast<i64>(idx[t]) * ldx;
    const T* x1 = X + static_cast<i64>(idx[t + 1]) * ldx;
    const T* x2 = X + static_cast<i64>(idx[t + 2]) * ldx;
    const T* x3 = X + static_cast<i64>(idx[t + 3]) * ldx;
    for (i64 i = 0; i < nb; ++i) y[i] = y[i] + w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i];
  }
  for (; t < len; ++t) {
    const T wt = w[t];
    const T* x = X + static_cast<i64>(idx[t]) * ldx;
    for (i64 i = 0; i < nb; ++i) y[i] = y[i] + wt * x[i];
  }
}

// Fork only for enough work (a fork/join costs tens of microseconds on a quiet machine, and a whole
// scheduler slice when the cores are shared), and never from inside another parallel region.
bool parallel_ok(i64 work) {
#if defined(_OPENMP)
  return work > kSparseParallelWork && !omp_in_parallel();
#else
  (void)work;
  return false;
#endif
}

template <class T>
i64 block_columns(i64 in) {
  i64 nb = kSparseBlockBytes / (std::max<i64>(in, 1) * static_cast<i64>(sizeof(T)));
  nb = std::min(kSparseBlockMax, std::max(kSparseBlockMin, nb));
  return nb - nb % kSparseBlockMin;
}

}  // namespace

template <class T>
void csr_matmul(i64 out, i64 in, i64 N, const std::int64_t* indptr, const std::int32_t* indices, const T* data,
                const T* bias, const T* X, bool x_rows, T* Yt, bool relu) {
  const i64 nbmax = block_columns<T>(in);
  const i64 nblocks = (N + nbmax - 1) / nbmax;
  const bool pack = nblocks > 1 || x_rows;          // one feature-major block is contiguous already
  std::vector<T> buf(pack ? static_cast<size_t>(in * N) : 0);   // block b at buf + b·in·nbmax, [in, nb_b]
  constexpr i64 kTile = 32;                         // features per packing task
  const i64 tiles = (in + kTile - 1) / kTile;
  [[maybe_unused]] const i64 work = (indptr[out] + out) * N;
#pragma omp parallel if (parallel_ok(work))
  {
    if (pack) {
#pragma omp for schedule(static)
      for (i64 task = 0; task < nblocks * tiles; ++task) {
        const i64 n0 = (task / tiles) * nbmax, j0 = (task % tiles) * kTile;
        const i64 nb = std::min(nbmax, N - n0), j1 = std::min(in, j0 + kTile);
        T* dst = buf.data() + n0 * in;
        if (x_rows) {                               // X [N, in]: transpose a tile
          for (i64 i = 0; i < nb; ++i)
            for (i64 j = j0; j < j1; ++j) dst[j * nb + i] = X[(n0 + i) * in + j];
        } else {                                    // X [in, N]: copy row pieces
          for (i64 j = j0; j < j1; ++j) std::copy(X + j * N + n0, X + j * N + n0 + nb, dst + j * nb);
        }
      }
    }  // the implicit barrier publishes the blocked copy
    for (i64 n0 = 0; n0 < N; n0 += nbmax) {
      const i64 nb = std::min(nbmax, N - n0);
      const T* Xb = pack ? buf.data() + n0 * in : X;
      const i64 ldx = pack ? nb : N;
      // nowait: a thread that is done with this block's rows starts on the next block's
#pragma omp for schedule(dynamic, 16) nowait
      for (i64 o = 0; o < out; ++o) {
        T* y = Yt + o * N + n0;
        const i64 a = indptr[o];
        row_block<T>(indices + a, data + a, indptr[o + 1] - a, Xb, ldx, bias ? bias[o] : T(0), y, nb);
        if (relu)
          for (i64 i = 0; i < nb; ++i) y[i] = y[i] < T(0) ? T(0) : y[i];  // NaN passes, as np.maximum
      }
    }
  }
}

template void csr_matmul<float>(i64, i64, i64, const std::int64_t*, const std::int32_t*, const float*, const float*,
                                const float*, bool, float*, bool);
template void csr_matmul<double>(i64, i64, i64, const std::int64_t*, const std::int32_t*, const double*,
                                 const double*, const double*, bool, double*, bool);

}  // namespace cpu
}  // namespace pyquirk
