#include "cpu/small_gemm.h"

#include <algorithm>
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

constexpr i64 kMR = 6, kNR = 16;  // the register block of C
constexpr i64 kMC = 48;           // rows of op(A) swept over all panels before the next rows

#define PYQUIRK_AVX2 __attribute__((target("avx2,fma")))

// C[0:MR, 0:nv] (+)= op(A)[0:MR, :]·panel; op(A)[r, k] = A[r·ars + k·aks].
template <int MR>
PYQUIRK_AVX2 void block(i64 K, const float* A, i64 ars, i64 aks, const float* panel, float* C, i64 ldc, i64 nv,
                        float beta) {
  __m256 lo[MR], hi[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (i64 k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(panel + kNR * k), b1 = _mm256_load_ps(panel + kNR * k + 8);
    const float* a = A + k * aks;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * ars);
      lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
    }
  }
  // (through memory, with constant indices above, so the accumulators stay in registers)
  alignas(32) float t[MR][kNR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm256_store_ps(t[r], lo[r]);
    _mm256_store_ps(t[r] + 8, hi[r]);
  }
  for (int r = 0; r < MR; ++r) {
    float* c = C + r * ldc;
    if (beta == 0.f && nv == kNR) {
      _mm256_storeu_ps(c, _mm256_load_ps(t[r]));
      _mm256_storeu_ps(c + 8, _mm256_load_ps(t[r] + 8));
    } else if (beta == 0.f) {
      std::memcpy(c, t[r], sizeof(float) * static_cast<size_t>(nv));
    } else {
      for (i64 j = 0; j < nv; ++j) c[j] = beta * c[j] + t[r][j];
    }
  }
}

using BlockFn = void (*)(i64, const float*, i64, i64, const float*, float*, i64, i64, float);
constexpr BlockFn kBlocks[kMR + 1] = {nullptr, block<1>, block<2>, block<3>, block<4>, block<5>, block<6>};

// op(B) as panels of 16 columns, [panel][k][16], zero past column N; 32-byte aligned.
PYQUIRK_AVX2 const float* pack_b(bool tb, i64 N, i64 K, const float* B, i64 ldb) {
  static thread_local std::vector<float> store;
  const i64 panels = (N + kNR - 1) / kNR;
  const size_t need = static_cast<size_t>(panels * K * kNR + 8);
  if (store.size() < need) store.resize(need);
  float* out = reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(store.data()) + 31) & ~std::uintptr_t(31));
  for (i64 p = 0; p < panels; ++p) {
    float* P = out + p * K * kNR;
    const i64 j0 = p * kNR, nv = std::min(kNR, N - j0);
    if (!tb) {
      for (i64 k = 0; k < K; ++k) {
        const float* b = B + k * ldb + j0;
        float* d = P + kNR * k;
        if (nv == kNR) {
          _mm256_store_ps(d, _mm256_loadu_ps(b));
          _mm256_store_ps(d + 8, _mm256_loadu_ps(b + 8));
        } else {
          for (i64 j = 0; j < kNR; ++j) d[j] = j < nv ? b[j] : 0.f;
        }
      }
    } else {  // op(B)[k, j] = B[j, k]: each column of the panel is a row of B
      for (i64 j = 0; j < kNR; ++j) {
        const float* b = B + (j0 + j) * ldb;
        for (i64 k = 0; k < K; ++k) P[kNR * k + j] = j < nv ? b[k] : 0.f;
      }
    }
  }
  return out;
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
  const float* panels = pack_b(tb, N, K, B, ldb);
  const i64 ars = ta ? 1 : lda, aks = ta ? lda : 1;
  for (i64 i0 = 0; i0 < M; i0 += kMC) {
    const i64 i1 = std::min(M, i0 + kMC);
    for (i64 j0 = 0; j0 < N; j0 += kNR) {
      const float* panel = panels + (j0 / kNR) * K * kNR;
      const i64 nv = std::min(kNR, N - j0);
      for (i64 i = i0; i < i1; i += kMR)
        kBlocks[std::min(kMR, i1 - i)](K, A + i * ars, ars, aks, panel, C + i * ldc + j0, ldc, nv, beta);
    }
  }
}

#else  // not x86-64: the BLAS does every product

bool small_gemm_available() { return false; }

void small_sgemm(bool, bool, i64, i64, i64, const float*, i64, const float*, i64, float, float*, i64) {}

#endif

}  // namespace cpu
}  // namespace pyquirk
