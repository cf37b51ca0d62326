// Dense layer y = x·Wᵀ + b (W: [out, in]) in slot layout: activations [N, S, F], slot 0 the primal
// value, slot s ≥ 1 the tangent along dθ_s (R-operator). Per slot, as in pyquirk/nn/layers.py:
//   R-forward   Z_s   = A_s·Wᵀ + A_0·dW_sᵀ                        (bias: activations.h)
//   R-backward  Gin_s = G_s·W  + G_0·dW_s
//               dgW_s = G_sᵀ·A_0 + G_0ᵀ·A_s
// Each is one job of GemmJobs (two GEMMs into the same block); the jobs of all slots run side by
// side. The slots share the primal A_0 and G_0, computed once. Si = 1 when the input carries no
// tangents (the first parameter layer): then A_s = 0 for s ≥ 1.
#pragma once

#include "cpu/netspec.h"
#include "cpu/tangents.h"

namespace pyquirk {
namespace cpu {

// Z [N, S, out] (before the bias) from A [N, Si, in].
template <class T>
void dense_forward(const Unit& u, const T* W, const Tangents<T>& dp, const T* A, i64 N, i64 Si, i64 S, T* Z);

// From G = ∂/∂z [N, S, out]: weight gradients into `sink` (biases: bias_grad) and, when Gin is
// non-null (then Si == S), slots gin_from..S−1 of Gin = ∂/∂A [N, S, in] (gin_from = 1 when nothing
// below needs the primal input gradient).
template <class T>
void dense_backward(const Unit& u, const T* W, const Tangents<T>& dp, const T* G, const T* A, i64 N, i64 Si, i64 S,
                    const GradSink<T>& sink, T* Gin, i64 gin_from);

}  // namespace cpu
}  // namespace pyquirk
