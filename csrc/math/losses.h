// Per-sample loss math on one row of logits z[C], written once for CPU and CUDA. Mirrors
// pyquirk/nn/losses.py: `scale` multiplies the per-sample gradient (1/N for the mean loss, 1 for each
// sample's own loss, as in input_grad).
//
// Cross-entropy (stable log-sum-exp):
//   l = lse(z) − z_y;   g = scale·(s − onehot(y)), s = softmax(z);   R{g} = scale·(s⊙dz − s·⟨s, dz⟩).
// MSE over outputs with targets t[C]:
//   l = mean_c (z_c − t_c)²;   g = scale·2(z − t)/C;   R{g} = scale·2·dz/C.
#pragma once

#include <stdint.h>

#include "math/hd.h"

namespace pyquirk {
namespace math {

enum class Loss : int { CE = 0, MSE = 1 };

// softmax(z) into s[C]; returns lse(z).
template <class T>
PYQUIRK_HD inline T softmax_row(const T* z, int64_t C, T* s) {
  T m = z[0];
  for (int64_t c = 1; c < C; ++c) m = z[c] > m ? z[c] : m;
  T sum = T(0);
  for (int64_t c = 0; c < C; ++c) {
    s[c] = pq_exp(z[c] - m);
    sum += s[c];
  }
  for (int64_t c = 0; c < C; ++c) s[c] /= sum;
  return m + pq_log(sum);
}

// Cross-entropy of one sample, from its lse.
template <class T>
PYQUIRK_HD inline T ce_loss_row(const T* z, T lse, int64_t y) {
  return lse - z[y];
}

template <class T>
PYQUIRK_HD inline void ce_grad_row(const T* s, int64_t C, int64_t y, T scale, T* g) {
  for (int64_t c = 0; c < C; ++c) g[c] = scale * (s[c] - (c == y ? T(1) : T(0)));
}

// R{g} for one tangent dz; dg may alias dz.
template <class T>
PYQUIRK_HD inline void ce_rgrad_row(const T* s, const T* dz, int64_t C, T scale, T* dg) {
  T dot = T(0);
  for (int64_t c = 0; c < C; ++c) dot += s[c] * dz[c];
  for (int64_t c = 0; c < C; ++c) dg[c] = scale * (s[c] * dz[c] - s[c] * dot);
}

template <class T>
PYQUIRK_HD inline T mse_loss_row(const T* z, const T* t, int64_t C) {
  T sum = T(0);
  for (int64_t c = 0; c < C; ++c) sum += (z[c] - t[c]) * (z[c] - t[c]);
  return sum / T(C);
}

template <class T>
PYQUIRK_HD inline void mse_grad_row(const T* z, const T* t, int64_t C, T scale, T* g) {
  for (int64_t c = 0; c < C; ++c) g[c] = scale * T(2) * (z[c] - t[c]) / T(C);
}

// dg may alias dz.
template <class T>
PYQUIRK_HD inline void mse_rgrad_row(const T* dz, int64_t C, T scale, T* dg) {
  for (int64_t c = 0; c < C; ++c) dg[c] = scale * T(2) * dz[c] / T(C);
}

}  // namespace math
}  // namespace pyquirk
