// Unit gates y = x·g (g: one gate per unit or channel, broadcast over positions; HAT's masks), in
// slot layout [N, S, U, Pc]. Bilinear in (x, g), like Dense; per slot, as in pyquirk/nn/layers.py:
//   R-forward   z_s   = x_s·g + x_0·dg_s
//   R-backward  gin_s = G_s·g + G_0·dg_s
//               dgg_s = Σ_{n,p} G_s·x_0 + G_0·x_s
// (x_s = 0 for s ≥ Si: an input without tangents). Element-wise; the activation that follows is
// fused by bias_act_forward / act_backward as for Dense.
#pragma once

#include "cpu/netspec.h"
#include "cpu/tangents.h"

namespace pyquirk {
namespace cpu {

template <class T>
void gate_forward(const Unit& u, const T* g, const Tangents<T>& dp, const T* X, i64 N, i64 Si, i64 S, T* Z);

// From G = ∂/∂z [N, S, U, Pc]: gate gradients into `sink` and, when Gin is non-null (Si == S),
// Gin = ∂/∂x.
template <class T>
void gate_backward(const Unit& u, const T* g, const Tangents<T>& dp, const T* G, const T* X, i64 N, i64 Si, i64 S,
                   const GradSink<T>& sink, T* Gin);

}  // namespace cpu
}  // namespace pyquirk
