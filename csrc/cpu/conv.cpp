#include "cpu/conv.h"

#include <algorithm>

#include "cpu/blas.h"

namespace pyquirk {
namespace cpu {

namespace {

// cols[(c, ki, kj), (s·N + n)·P + y·ow + x] = A[n, s, c, y·sh − ph + ki, x·sw − pw + kj] (0 outside).
template <class T>
void im2col(const Unit& u, const T* A, i64 N, i64 Si, T* cols) {
  const i64 P = u.oh * u.ow, HW = u.ih * u.iw, ld = Si * N * P;
  parallel_for(fork_ok(u.ck * ld), u.ck, [&](i64 r) {
    const i64 c = r / (u.kh * u.kw), ki = (r / u.kw) % u.kh, kj = r % u.kw;
    for (i64 s = 0; s < Si; ++s)
      for (i64 n = 0; n < N; ++n) {
        const T* plane = A + ((n * Si + s) * u.cin + c) * HW;
        T* dst = cols + r * ld + (s * N + n) * P;
        for (i64 y = 0; y < u.oh; ++y) {
          const i64 iy = y * u.sh - u.ph + ki;
          T* row = dst + y * u.ow;
          if (iy < 0 || iy >= u.ih) {
            std::fill(row, row + u.ow, T(0));
            continue;
          }
          for (i64 x = 0; x < u.ow; ++x) {
            const i64 ix = x * u.sw - u.pw + kj;
            row[x] = (ix >= 0 && ix < u.iw) ? plane[iy * u.iw + ix] : T(0);
          }
        }
      }
  });
}

// The adjoint of im2col: Gin = 0, then every column entry is added back to the input it was read from.
template <class T>
void col2im(const Unit& u, const T* cols, i64 N, i64 S, T* Gin) {
  const i64 P = u.oh * u.ow, HW = u.ih * u.iw, ld = S * N * P;
  parallel_for(fork_ok(u.ck * ld), S * N, [&](i64 sn) {  // (slot, sample) pairs write disjoint planes
    const i64 s = sn / N, n = sn % N;
    T* g = Gin + (n * S + s) * u.cin * HW;
    std::fill(g, g + u.cin * HW, T(0));
    for (i64 r = 0; r < u.ck; ++r) {
      const i64 c = r / (u.kh * u.kw), ki = (r / u.kw) % u.kh, kj = r % u.kw;
      const T* src = cols + r * ld + sn * P;
      T* plane = g + c * HW;
      for (i64 y = 0; y < u.oh; ++y) {
        const i64 iy = y * u.sh - u.ph + ki;
        if (iy < 0 || iy >= u.ih) continue;
        for (i64 x = 0; x < u.ow; ++x) {
          const i64 ix = x * u.sw - u.pw + kj;
          if (ix >= 0 && ix < u.iw) plane[iy * u.iw + ix] += src[y * u.ow + x];
        }
      }
    }
  });
}

}  // namespace

i64 conv_scratch_a(const Unit& u, i64 N, i64 S) { return u.cout * S * N * u.positions(); }

i64 conv_scratch_b(const Unit& u, i64 N, i64 S) { return u.ck * S * N * u.positions(); }

template <class T>
void conv_forward(const Unit& u, const T* W, const Tangents<T>& dp, const T* A, i64 N, i64 Si, i64 S, T* cols,
                  T* tmpA, T* Z) {
  const i64 out = u.cout, P = u.positions(), NP = N * P, ck = u.ck;
  im2col(u, A, N, Si, cols);
  T* Zm = tmpA;  // [out, S·N·P]: slot s in columns [s·N·P, (s + 1)·N·P)
  GemmJobs<T> jobs;
  for (i64 s = 0; s < S; ++s) {
    const Gemm<T> primal{false, false, out, NP, ck, W, ck, cols + s * NP, Si * NP, T(0), Zm + s * NP, S * NP};
    const Gemm<T> tangent{false, false, out, NP, ck, s ? dp.at(s, u.w_off) : nullptr, ck, cols, Si * NP,
                          T(s < Si ? 1 : 0), Zm + s * NP, S * NP};
    if (s == 0) jobs.add(primal);
    else if (s < Si) jobs.add(primal, tangent);
    else jobs.add(tangent);
  }
  jobs.run();
  // Z[n, s, o, p] = Zm[o, (s·N + n)·P + p]
  parallel_for(fork_ok(N * S * out * P), N, [&](i64 n) {
    for (i64 s = 0; s < S; ++s)
      for (i64 o = 0; o < out; ++o) {
        const T* src = Zm + o * S * NP + (s * N + n) * P;
        std::copy(src, src + P, Z + ((n * S + s) * out + o) * P);
      }
  });
}

template <class T>
void conv_backward(const Unit& u, const T* W, const Tangents<T>& dp, const T* G, const T* cols, i64 N, i64 Si,
                   i64 S, const GradSink<T>& sink, T* tmpA, T* tmpB, T* Gin) {
  const i64 out = u.cout, P = u.positions(), NP = N * P, ck = u.ck;
  T* Gm = tmpA;  // [out, S·N·P]: Gm[o, (s·N + n)·P + p] = G[n, s, o, p]
  parallel_for(fork_ok(N * S * out * P), out, [&](i64 o) {
    for (i64 s = 0; s < S; ++s)
      for (i64 n = 0; n < N; ++n) {
        const T* g = G + ((n * S + s) * out + o) * P;
        std::copy(g, g + P, Gm + o * S * NP + (s * N + n) * P);
      }
  });
  GemmJobs<T> jobs;
  if (sink.base) {
    for (i64 s = sink.first_slot; s < S; ++s) {
      T* dst = sink.slot(s, u.w_off);
      const Gemm<T> g1{false, true, out, ck, NP, Gm + s * NP, S * NP, cols, Si * NP, T(0), dst, ck};  // G_s·cols_0ᵀ
      const Gemm<T> g2{false, true, out, ck, NP, Gm, S * NP, cols + s * NP, Si * NP, T(1), dst, ck};  // G_0·cols_sᵀ
      if (s >= 1 && s < Si) jobs.add(g1, g2);
      else jobs.add(g1);
    }
  }
  T* gcols = tmpB;  // [CK, S·N·P]
  if (Gin) {
    for (i64 s = 0; s < S; ++s) {
      const Gemm<T> g1{true, false, ck, NP, out, W, ck, Gm + s * NP, S * NP, T(0), gcols + s * NP, S * NP};
      if (s == 0) {
        jobs.add(g1);
      } else {
        const Gemm<T> g2{true, false, ck, NP, out, dp.at(s, u.w_off), ck, Gm, S * NP, T(1), gcols + s * NP, S * NP};
        jobs.add(g1, g2);
      }
    }
  }
  jobs.run();
  if (Gin) col2im(u, gcols, N, S, Gin);
}

#define PYQUIRK_INSTANTIATE(T)                                                                               \
  template void conv_forward<T>(const Unit&, const T*, const Tangents<T>&, const T*, i64, i64, i64, T*, T*, T*); \
  template void conv_backward<T>(const Unit&, const T*, const Tangents<T>&, const T*, const T*, i64, i64, i64,     \
                                 const GradSink<T>&, T*, T*, T*);
PYQUIRK_INSTANTIATE(float)
PYQUIRK_INSTANTIATE(double)
#undef PYQUIRK_INSTANTIATE

}  // namespace cpu
}  // namespace pyquirk
