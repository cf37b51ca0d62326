#include "cpu/gate.h"

#include <vector>

namespace pyquirk {
namespace cpu {

template <class T>
void gate_forward(const Unit& u, const T* g, const Tangents<T>& dp, const T* X, i64 N, i64 Si, i64 S, T* Z) {
  const i64 U = u.cin, Pc = u.positions(), F = U * Pc;
  parallel_for(fork_ok(N * S * F), N, [&](i64 n) {
    const T* x0 = X + n * Si * F;
    for (i64 s = 0; s < S; ++s) {
      const T* xs = X + (n * Si + s) * F;
      const T* dg = s ? dp.at(s, u.w_off) : nullptr;
      T* z = Z + (n * S + s) * F;
      for (i64 c = 0; c < U; ++c)
        for (i64 p = 0; p < Pc; ++p) {
          const i64 f = c * Pc + p;
          if (s == 0) z[f] = x0[f] * g[c];
          else if (s < Si) z[f] = xs[f] * g[c] + x0[f] * dg[c];
          else z[f] = x0[f] * dg[c];
        }
    }
  });
}

template <class T>
void gate_backward(const Unit& u, const T* g, const Tangents<T>& dp, const T* G, const T* X, i64 N, i64 Si, i64 S,
                   const GradSink<T>& sink, T* Gin) {
  const i64 U = u.cin, Pc = u.positions(), F = U * Pc;
  if (sink.base) {
    const i64 slots = S - sink.first_slot;
    parallel_for(slots > 1 && fork_ok(slots * N * F), slots, [&](i64 i) {
      const i64 s = sink.first_slot + i;
      std::vector<acc_t> acc(U, acc_t(0));
      for (i64 n = 0; n < N; ++n) {
        const T* gs = G + (n * S + s) * F;
        const T* g0 = G + n * S * F;
        const T* x0 = X + n * Si * F;
        const T* xs = X + (n * Si + s) * F;
        for (i64 c = 0; c < U; ++c) {
          acc_t sum = 0;
          for (i64 p = 0; p < Pc; ++p) {
            const i64 f = c * Pc + p;
            sum += static_cast<acc_t>(gs[f] * x0[f]);
            if (s >= 1 && s < Si) sum += static_cast<acc_t>(g0[f] * xs[f]);
          }
          acc[c] += sum;
        }
      }
      T* dst = sink.slot(s, u.w_off);
      for (i64 c = 0; c < U; ++c) dst[c] = static_cast<T>(acc[c]);
    });
  }
  if (Gin) {
    parallel_for(fork_ok(N * S * F), N, [&](i64 n) {
      const T* g0 = G + n * S * F;
      for (i64 s = 0; s < S; ++s) {
        const T* gs = G + (n * S + s) * F;
        const T* dg = s ? dp.at(s, u.w_off) : nullptr;
        T* o = Gin + (n * S + s) * F;
        for (i64 c = 0; c < U; ++c)
          for (i64 p = 0; p < Pc; ++p) {
            const i64 f = c * Pc + p;
            o[f] = s ? gs[f] * g[c] + g0[f] * dg[c] : gs[f] * g[c];
          }
      }
    });
  }
}

#define PYQUIRK_INSTANTIATE(T)                                                                                \
  template void gate_forward<T>(const Unit&, const T*, const Tangents<T>&, const T*, i64, i64, i64, T*);        \
  template void gate_backward<T>(const Unit&, const T*, const Tangents<T>&, const T*, const T*, i64, i64, i64,  \
                                 const GradSink<T>&, T*);
PYQUIRK_INSTANTIATE(float)
PYQUIRK_INSTANTIATE(double)
#undef PYQUIRK_INSTANTIATE

}  // namespace cpu
}  // namespace pyquirk
