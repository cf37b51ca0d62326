#include "cpu/small_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define PYQUIRK_SMALL_GEMM_X86 1
#endif

namespace pyquirk {
namespace cpu {

#ifdef PYQUIRK_SMALL_GEMM_X86
namespace {

constexpr i64 kNR = 24;           // columns of a panel of op(B)
constexpr i64 kMR24 = 4, kMR = 6; // rows of a 4×24 block of C, and of the 6×16 and 6×8 blocks
constexpr i64 kMC = 48;           // rows of op(A) swept over all panels before the next rows
constexpr i64 kNarrow = 4;        // a last panel this narrow goes row by row (narrow_rows), if it can

#define PYQUIRK_AVX2 __attribute__((target("avx2,fma")))

// C[0:MR, 0:nv] = op(A)[0:MR, :]·panel (+ beta·C); op(A)[r, k] = A[r·ars + k·aks]. NV = 24 columns
// in three registers per row (4 rows: twelve accumulators, three loads of B and four broadcasts of A
// per k), or, for a last panel with at most 16 or 8 real columns, 16 in two or 8 in one (6 rows).
template <int MR, int NV>
PYQUIRK_AVX2 void block(i64 K, const float* A, i64 ars, i64 aks, const float* panel, float* C, i64 ldc, i64 nv,
                        float beta) {
  constexpr int V = NV / 8;  // registers per row
  __m256 acc[MR][V];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (i64 k = 0; k < K; ++k) {
    __m256 b[V];
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) b[v] = _mm256_load_ps(panel + kNR * k + 8 * v);
    const float* a = A + k * aks;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * ars);
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(x, b[v], acc[r][v]);
    }
  }
  if (nv == NV) {  // a whole block: straight from the registers
    const __m256 bt = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) {
        float* c = C + r * ldc + 8 * v;
        _mm256_storeu_ps(c, beta == 0.f ? acc[r][v] : _mm256_fmadd_ps(bt, _mm256_loadu_ps(c), acc[r][v]));
      }
    return;
  }
  // (through memory, with constant indices above, so the accumulators stay in registers)
  alignas(32) float t[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) _mm256_store_ps(t[r] + 8 * v, acc[r][v]);
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    if (beta == 0.f) {
      std::memcpy(c, t[r], sizeof(float) * static_cast<size_t>(nv));
    } else {
      for (i64 j = 0; j < nv; ++j) c[j] = std::fma(beta, c[j], t[r][j]);
    }
  }
}

using BlockFn = void (*)(i64, const float*, i64, i64, const float*, float*, i64, i64, float);
constexpr BlockFn kBlocks16[kMR + 1] = {nullptr,        block<1, 16>, block<2, 16>, block<3, 16>,
                                        block<4, 16>,   block<5, 16>, block<6, 16>};
constexpr BlockFn kBlocks24[kMR24 + 1] = {nullptr, block<1, 24>, block<2, 24>, block<3, 24>, block<4, 24>};
constexpr BlockFn kBlocks8[kMR + 1] = {nullptr, block<1, 8>, block<2, 8>, block<3, 8>, block<4, 8>, block<5, 8>,
                                       block<6, 8>};

// dst[i·ldd + j] = src[j·ld + i] for an 8×8 block (the usual unpack / shuffle / lane-permute steps).
PYQUIRK_AVX2 inline void transpose8(const float* src, i64 ld, float* dst, i64 ldd) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_store_ps(dst + i * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_store_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

// n floats, 32-byte aligned, in `store` (grown as needed and kept between calls).
float* aligned_scratch(std::vector<float>& store, i64 n) {
  const size_t need = static_cast<size_t>(n + 8);
  if (store.size() < need) store.resize(need);
  return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(store.data()) + 31) & ~std::uintptr_t(31));
}

// op(B) as panels of kNR columns, [panel][k][kNR], zero past column N; 32-byte aligned.
PYQUIRK_AVX2 const float* pack_b(bool tb, i64 N, i64 K, const float* B, i64 ldb) {
  static thread_local std::vector<float> store;
  const i64 panels = (N + kNR - 1) / kNR;
  float* out = aligned_scratch(store, panels * K * kNR);
  for (i64 p = 0; p < panels; ++p) {
    float* P = out + p * K * kNR;
    const i64 j0 = p * kNR, nv = std::min(kNR, N - j0);
    if (!tb) {
      for (i64 k = 0; k < K; ++k) {
        const float* b = B + k * ldb + j0;
        float* d = P + kNR * k;
        if (nv == kNR) {
          for (i64 g = 0; g < kNR; g += 8) _mm256_store_ps(d + g, _mm256_loadu_ps(b + g));
        } else {
          for (i64 j = 0; j < kNR; ++j) d[j] = j < nv ? b[j] : 0.f;
        }
      }
    } else {  // op(B)[k, j] = B[j, k]: each column of the panel is a row of B
      const i64 k8 = nv == kNR ? K - K % 8 : 0;  // whole panels go by 8×8 transposes
      for (i64 k = 0; k < k8; k += 8)
        for (i64 g = 0; g < kNR; g += 8) transpose8(B + (j0 + g) * ldb + k, ldb, P + kNR * k + g, kNR);
      for (i64 j = 0; j < kNR; ++j) {
        const float* b = B + (j0 + j) * ldb;
        for (i64 k = k8; k < K; ++k) P[kNR * k + j] = j < nv ? b[k] : 0.f;
      }
    }
  }
  return out;
}

// Columns j0 .. j0 + nv − 1 (nv ≤ kNarrow) of op(B) as kNarrow rows of Kp floats (Kp = K rounded up
// to 8), zero past K and past nv; 32-byte aligned.
const float* pack_tail(bool tb, i64 K, i64 j0, i64 nv, const float* B, i64 ldb, i64 Kp) {
  static thread_local std::vector<float> store;
  float* out = aligned_scratch(store, kNarrow * Kp);
  for (i64 c = 0; c < kNarrow; ++c)
    for (i64 k = 0; k < Kp; ++k)
      out[c * Kp + k] = c < nv && k < K ? (tb ? B[(j0 + c) * ldb + k] : B[k * ldb + j0 + c]) : 0.f;
  return out;
}

// The eight lanes' sum in a fixed order: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
PYQUIRK_AVX2 inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

// C[i, 0:nv] = op(A)[i, :]·Bt[0:nv, :]ᵀ (+ beta·C) for R rows whose k runs contiguously, k in
// vectors of 8: each element is eight lane chains of FMAs (lane l takes k ≡ l mod 8, in order),
// summed by lane_sum, then at most one FMA with beta·C. A row's bits depend on nothing else.
template <int R>
PYQUIRK_AVX2 void narrow_rows(i64 K, const float* A, i64 lda, const float* Bt, i64 Kp, float* C, i64 ldc, i64 nv,
                              float beta) {
  const i64 K8 = K / 8 * 8;
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(K - K8)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[R][kNarrow];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kNarrow; ++c) acc[r][c] = _mm256_setzero_ps();
  for (i64 k = 0; k < Kp; k += 8) {
    __m256 a[R];
    for (int r = 0; r < R; ++r)  // the last vector reads only the K − K8 real lanes of A
      a[r] = k < K8 ? _mm256_loadu_ps(A + r * lda + k) : _mm256_maskload_ps(A + r * lda + k, mask);
    for (int c = 0; c < kNarrow; ++c) {
      const __m256 b = _mm256_load_ps(Bt + c * Kp + k);
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(a[r], b, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (i64 c = 0; c < nv; ++c) {
      const float s = lane_sum(acc[r][c]);
      float& out = C[r * ldc + c];
      out = beta == 0.f ? s : std::fma(beta, out, s);
    }
}

bool detect() {
  const char* env = std::getenv("PYQUIRK_SMALL_GEMM");
  if (env && std::strcmp(env, "0") == 0) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

}  // namespace

bool small_gemm_available() {
  static const bool ok = detect();
  return ok;
}

void small_sgemm(bool ta, bool tb, i64 M, i64 N, i64 K, const float* A, i64 lda, const float* B, i64 ldb,
                 float beta, float* C, i64 ldc) {
  // A last panel of at most kNarrow columns cost 6-row blocks nearly as much as a whole panel
  // (500×4×100: 24 µs against 27 µs for 500×16×100; docs/native.md §3a): when op(A)'s rows run
  // contiguously in k, those columns go row by row instead (18 µs).
  const i64 rest = N % kNR, Nb = !ta && rest > 0 && rest <= kNarrow ? N - rest : N;
  if (Nb < N) {
    const i64 Kp = (K + 7) / 8 * 8;
    const float* Bt = pack_tail(tb, K, Nb, rest, B, ldb, Kp);
    i64 i = 0;
    for (; i + 2 <= M; i += 2) narrow_rows<2>(K, A + i * lda, lda, Bt, Kp, C + i * ldc + Nb, ldc, rest, beta);
    if (i < M) narrow_rows<1>(K, A + i * lda, lda, Bt, Kp, C + i * ldc + Nb, ldc, rest, beta);
  }
  if (Nb == 0) return;
  const float* panels = pack_b(tb, Nb, K, B, ldb);
  const i64 ars = ta ? 1 : lda, aks = ta ? lda : 1;
  for (i64 i0 = 0; i0 < M; i0 += kMC) {
    const i64 i1 = std::min(M, i0 + kMC);
    for (i64 j0 = 0; j0 < Nb; j0 += kNR) {
      const float* panel = panels + (j0 / kNR) * K * kNR;
      const i64 nv = std::min(kNR, Nb - j0);
      const BlockFn* blocks = nv <= 8 ? kBlocks8 : nv <= 16 ? kBlocks16 : kBlocks24;
      const i64 mr = nv <= 16 ? kMR : kMR24;
      for (i64 i = i0; i < i1; i += mr)
        blocks[std::min(mr, i1 - i)](K, A + i * ars, ars, aks, panel, C + i * ldc + j0, ldc, nv, beta);
    }
  }
}

#else  // not x86-64: the BLAS does every product

bool small_gemm_available() { return false; }

void small_sgemm(bool, bool, i64, i64, i64, const float*, i64, const float*, i64, float, float*, i64) {}

#endif

}  // namespace cpu
}  // namespace pyquirk
