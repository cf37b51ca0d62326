#include "cpu/activations.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cpu/isa.h"  // last: this file is compiled twice (isa.h). Measured in one process
// (docs/native.md §3): PGD loop and input gradient −8 %, population step −7 %, HVP −6 %.

namespace pyquirk {
namespace cpu {
namespace PYQUIRK_ISA {

namespace {

constexpr i64 kBlock = 256;  // features per block: the derivative row stays in registers/L1

template <class T>
inline void add_bias(T* z, const T* b, i64 C, i64 Pc) {
  if (Pc == 1) {  // Dense: one bias per feature
    for (i64 c = 0; c < C; ++c) z[c] += b[c];
    return;
  }
  for (i64 c = 0; c < C; ++c) {
    const T bc = b[c];
    T* zc = z + c * Pc;
    for (i64 p = 0; p < Pc; ++p) zc[p] += bc;
  }
}

template <class Op, class T>
void forward_loop(T slope, T* Z, T* A, i64 N, i64 S, i64 C, i64 Pc, const T* b, const T* db, i64 db_stride,
                  bool activate) {
  const i64 F = C * Pc;
  parallel_for(fork_ok(N * S * F), N, [&](i64 n) {
    T* zn = Z + n * S * F;
    T* an = A + n * S * F;
    if (b) add_bias(zn, b, C, Pc);
    if (db)
      for (i64 s = 1; s < S; ++s) add_bias(zn + s * F, db + (s - 1) * db_stride, C, Pc);
    if (!activate) return;
    if (S == 1) {  // no tangents: one vectorisable pass
      for (i64 f = 0; f < F; ++f) an[f] = Op::f(zn[f], slope);
      return;
    }
    T d1[kBlock];
    for (i64 f0 = 0; f0 < F; f0 += kBlock) {
      const i64 m = std::min(kBlock, F - f0);
      const T* z0 = zn + f0;
      if (S > 1) {
        for (i64 j = 0; j < m; ++j) d1[j] = Op::df(z0[j], slope);
        for (i64 s = 1; s < S; ++s) {
          const T* zs = zn + s * F + f0;
          T* as = an + s * F + f0;
          for (i64 j = 0; j < m; ++j) as[j] = d1[j] * zs[j];
        }
      }
      T* a0 = an + f0;
      for (i64 j = 0; j < m; ++j) a0[j] = Op::f(z0[j], slope);
    }
  });
}

template <class Op, class T>
void backward_loop(T slope, const T* Z, const T* G, T* Gin, i64 N, i64 S, i64 F, i64 s0) {
  parallel_for(fork_ok(N * S * F), N, [&](i64 n) {
    const T* zn = Z + n * S * F;
    const T* gn = G + n * S * F;
    T* on = Gin + n * S * F;
    if (S == 1) {  // no tangents: one vectorisable pass
      if (s0 == 0)
        for (i64 f = 0; f < F; ++f) on[f] = gn[f] * Op::df(zn[f], slope);
      return;
    }
    T d1[kBlock], d2[kBlock], g0[kBlock];
    for (i64 f0 = 0; f0 < F; f0 += kBlock) {
      const i64 m = std::min(kBlock, F - f0);
      for (i64 j = 0; j < m; ++j) {
        d1[j] = Op::df(zn[f0 + j], slope);
        if (Op::has_d2 || s0 == 0) g0[j] = gn[f0 + j];
      }
      if (S > 1) {
        if constexpr (Op::has_d2) {
          for (i64 j = 0; j < m; ++j) d2[j] = g0[j] * Op::d2f(zn[f0 + j], slope);
        }
        for (i64 s = 1; s < S; ++s) {
          const T* gs = gn + s * F + f0;
          T* os = on + s * F + f0;
          if constexpr (Op::has_d2) {
            const T* zs = zn + s * F + f0;
            for (i64 j = 0; j < m; ++j) os[j] = gs[j] * d1[j] + d2[j] * zs[j];
          } else {
            for (i64 j = 0; j < m; ++j) os[j] = gs[j] * d1[j];
          }
        }
      }
      if (s0 == 0)
        for (i64 j = 0; j < m; ++j) on[f0 + j] = g0[j] * d1[j];
    }
  });
}

}  // namespace

template <class T>
void bias_act_forward(math::Act act, double slope, T* Z, T* A, i64 N, i64 S, i64 C, i64 Pc, const T* b,
                      const T* db, i64 db_stride) {
  const bool activate = A != Z;
  math::with_act(act, [&](auto op) {
    forward_loop<decltype(op)>(T(slope), Z, A, N, S, C, Pc, b, db, db_stride, activate);
  });
}

template <class T>
void act_backward(math::Act act, double slope, const T* Z, const T* G, T* Gin, i64 N, i64 S, i64 F, i64 s0) {
  math::with_act(act, [&](auto op) { backward_loop<decltype(op)>(T(slope), Z, G, Gin, N, S, F, s0); });
}

template <class T>
void bias_grad(const T* G, i64 N, i64 S, i64 C, i64 Pc, i64 s0, T* out, i64 out_stride) {
  const i64 F = C * Pc;
  parallel_for(S - s0 > 1 && fork_ok((S - s0) * N * F), S - s0, [&](i64 i) {
    const i64 s = s0 + i;
    std::vector<acc_t> acc(C, acc_t(0));
    for (i64 n = 0; n < N; ++n) {
      const T* g = G + (n * S + s) * F;
      if (Pc == 1) {
        for (i64 c = 0; c < C; ++c) acc[c] += g[c];
        continue;
      }
      for (i64 c = 0; c < C; ++c) {
        acc_t sum = 0;
        for (i64 p = 0; p < Pc; ++p) sum += g[c * Pc + p];
        acc[c] += sum;
      }
    }
    T* o = out + (s - s0) * out_stride;
    for (i64 c = 0; c < C; ++c) o[c] = static_cast<T>(acc[c]);
  });
}

#define PYQUIRK_INSTANTIATE(T)                                                                          \
  template void bias_act_forward<T>(math::Act, double, T*, T*, i64, i64, i64, i64, const T*, const T*, i64); \
  template void act_backward<T>(math::Act, double, const T*, const T*, T*, i64, i64, i64, i64);             \
  template void bias_grad<T>(const T*, i64, i64, i64, i64, i64, T*, i64);
PYQUIRK_INSTANTIATE(float)
PYQUIRK_INSTANTIATE(double)

}  // namespace PYQUIRK_ISA

#ifndef PYQUIRK_ISA_AVX2  // the public functions, once
namespace avx2 {  // the other copy of this file
template <class T>
void bias_act_forward(math::Act, double, T*, T*, i64, i64, i64, i64, const T*, const T*, i64);
template <class T>
void act_backward(math::Act, double, const T*, const T*, T*, i64, i64, i64, i64);
template <class T>
void bias_grad(const T*, i64, i64, i64, i64, i64, T*, i64);
}  // namespace avx2

bool avx2_loops() {
#ifdef PYQUIRK_AVX2_LOOPS
  static const bool on = [] {
    const char* env = std::getenv("PYQUIRK_AVX2_LOOPS");
    if (env && std::strcmp(env, "0") == 0) return false;
    __builtin_cpu_init();
    return static_cast<bool>(__builtin_cpu_supports("avx2"));
  }();
  return on;
#else
  return false;
#endif
}

template <class T>
void bias_act_forward(math::Act act, double slope, T* Z, T* A, i64 N, i64 S, i64 C, i64 Pc, const T* b,
                      const T* db, i64 db_stride) {
  PYQUIRK_PICK(bias_act_forward<T>)(act, slope, Z, A, N, S, C, Pc, b, db, db_stride);
}

template <class T>
void act_backward(math::Act act, double slope, const T* Z, const T* G, T* Gin, i64 N, i64 S, i64 F, i64 s0) {
  PYQUIRK_PICK(act_backward<T>)(act, slope, Z, G, Gin, N, S, F, s0);
}

template <class T>
void bias_grad(const T* G, i64 N, i64 S, i64 C, i64 Pc, i64 s0, T* out, i64 out_stride) {
  PYQUIRK_PICK(bias_grad<T>)(G, N, S, C, Pc, s0, out, out_stride);
}

PYQUIRK_INSTANTIATE(float)
PYQUIRK_INSTANTIATE(double)
#endif
#undef PYQUIRK_INSTANTIATE

}  // namespace cpu
}  // namespace pyquirk
