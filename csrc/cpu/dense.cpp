#include "cpu/dense.h"

#include "cpu/blas.h"

namespace pyquirk {
namespace cpu {

template <class T>
void dense_forward(const Unit& u, const T* W, const Tangents<T>& dp, const T* A, i64 N, i64 Si, i64 S, T* Z) {
  const i64 out = u.cout, in = u.ck;
  GemmJobs<T> jobs;
  for (i64 s = 0; s < S; ++s) {
    T* Zs = Z + s * out;
    // A_0·dW_sᵀ, accumulated after A_s·Wᵀ when the input has slot s, alone otherwise
    const Gemm<T> tangent{false, true, N, out, in, A, Si * in, s ? dp.at(s, u.w_off) : nullptr, in,
                          T(s < Si ? 1 : 0), Zs, S * out};
    const Gemm<T> primal{false, true, N, out, in, A + s * in, Si * in, W, in, T(0), Zs, S * out};
    if (s == 0) jobs.add(primal);
    else if (s < Si) jobs.add(primal, tangent);
    else jobs.add(tangent);
  }
  jobs.run();
}

template <class T>
void dense_backward(const Unit& u, const T* W, const Tangents<T>& dp, const T* G, const T* A, i64 N, i64 Si, i64 S,
                    const GradSink<T>& sink, T* Gin, i64 gin_from) {
  const i64 out = u.cout, in = u.ck;
  GemmJobs<T> jobs;
  if (sink.base) {
    for (i64 s = sink.first_slot; s < S; ++s) {
      T* dst = sink.slot(s, u.w_off);
      const Gemm<T> g1{true, false, out, in, N, G + s * out, S * out, A, Si * in, T(0), dst, in};  // G_sᵀ·A_0
      const Gemm<T> g2{true, false, out, in, N, G, S * out, A + s * in, Si * in, T(1), dst, in};   // G_0ᵀ·A_s
      if (s >= 1 && s < Si) jobs.add(g1, g2);
      else jobs.add(g1);
    }
  }
  if (Gin) {
    for (i64 s = gin_from; s < S; ++s) {
      T* dst = Gin + s * in;
      const Gemm<T> g1{false, false, N, in, out, G + s * out, S * out, W, in, T(0), dst, S * in};  // G_s·W
      if (s == 0) {
        jobs.add(g1);
      } else {
        const Gemm<T> g2{false, false, N, in, out, G, S * out, dp.at(s, u.w_off), in, T(1), dst, S * in};  // G_0·dW_s
        jobs.add(g1, g2);
      }
    }
  }
  jobs.run();
}

#define PYQUIRK_INSTANTIATE(T)                                                                                \
  template void dense_forward<T>(const Unit&, const T*, const Tangents<T>&, const T*, i64, i64, i64, T*);       \
  template void dense_backward<T>(const Unit&, const T*, const Tangents<T>&, const T*, const T*, i64, i64, i64, \
                                  const GradSink<T>&, T*, i64);
PYQUIRK_INSTANTIATE(float)
PYQUIRK_INSTANTIATE(double)
#undef PYQUIRK_INSTANTIATE

}  // namespace cpu
}  // namespace pyquirk
