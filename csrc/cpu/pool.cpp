#include "cpu/pool.h"

#include <algorithm>

namespace pyquirk {
namespace cpu {

template <class T>
void pool_forward(const Unit& u, const T* X, i64 N, i64 S, T* Y, std::int32_t* idx) {
  const i64 C = u.cin, HW = u.ih * u.iw, P = u.oh * u.ow;
  const bool is_max = u.kind == UnitKind::MaxPool;
  parallel_for(fork_ok(N * S * C * P * u.kh * u.kw), N * C, [&](i64 nc) {
    const i64 n = nc / C, c = nc % C;
    const T* x0 = X + (n * S * C + c) * HW;  // slot 0 plane
    T* y0 = Y + (n * S * C + c) * P;
    if (is_max) {
      std::int32_t* id = idx + nc * P;
      for (i64 y = 0; y < u.oh; ++y)
        for (i64 x = 0; x < u.ow; ++x) {
          const i64 origin = y * u.sh * u.iw + x * u.sw;
          i64 best = origin;
          for (i64 ki = 0; ki < u.kh; ++ki)
            for (i64 kj = 0; kj < u.kw; ++kj) {
              const i64 at = origin + ki * u.iw + kj;
              if (x0[at] > x0[best]) best = at;
            }
          id[y * u.ow + x] = static_cast<std::int32_t>(best);
          y0[y * u.ow + x] = x0[best];
        }
      for (i64 s = 1; s < S; ++s) {
        const T* xs = x0 + s * C * HW;
        T* ys = y0 + s * C * P;
        for (i64 p = 0; p < P; ++p) ys[p] = xs[id[p]];
      }
    } else {
      for (i64 s = 0; s < S; ++s) {
        const T* xs = x0 + s * C * HW;
        T* ys = y0 + s * C * P;
        for (i64 y = 0; y < u.oh; ++y)
          for (i64 x = 0; x < u.ow; ++x) {
            const i64 origin = y * u.sh * u.iw + x * u.sw;
            T sum = T(0);
            for (i64 ki = 0; ki < u.kh; ++ki)
              for (i64 kj = 0; kj < u.kw; ++kj) sum += xs[origin + ki * u.iw + kj];
            ys[y * u.ow + x] = sum / T(u.kh * u.kw);  // numpy's mean: sum / count
          }
      }
    }
  });
}

template <class T>
void pool_backward(const Unit& u, const T* G, i64 N, i64 S, T* Gin, const std::int32_t* idx) {
  const i64 C = u.cin, HW = u.ih * u.iw, P = u.oh * u.ow;
  const bool is_max = u.kind == UnitKind::MaxPool;
  const T inv = T(1.0 / static_cast<double>(u.kh * u.kw));
  // one (sample, slot, channel) plane per index
  parallel_for(fork_ok(N * S * C * (HW + P * u.kh * u.kw)), N * S * C, [&](i64 nsc) {
    const i64 n = nsc / (S * C), c = nsc % C;
    T* gi = Gin + nsc * HW;
    const T* go = G + nsc * P;
    std::fill(gi, gi + HW, T(0));
    if (is_max) {
      const std::int32_t* id = idx + (n * C + c) * P;
      for (i64 p = 0; p < P; ++p) gi[id[p]] += go[p];
    } else {
      for (i64 y = 0; y < u.oh; ++y)
        for (i64 x = 0; x < u.ow; ++x) {
          const i64 origin = y * u.sh * u.iw + x * u.sw;
          const T g = go[y * u.ow + x] * inv;
          for (i64 ki = 0; ki < u.kh; ++ki)
            for (i64 kj = 0; kj < u.kw; ++kj) gi[origin + ki * u.iw + kj] += g;
        }
    }
  });
}

template void pool_forward<float>(const Unit&, const float*, i64, i64, float*, std::int32_t*);
template void pool_forward<double>(const Unit&, const double*, i64, i64, double*, std::int32_t*);
template void pool_backward<float>(const Unit&, const float*, i64, i64, float*, const std::int32_t*);
template void pool_backward<double>(const Unit&, const double*, i64, i64, double*, const std::int32_t*);

}  // namespace cpu
}  // namespace pyquirk
