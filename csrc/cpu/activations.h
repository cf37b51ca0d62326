// Fused element-wise passes around each affine unit, on activations in *slot layout*
// [N, S, F]: sample n holds S consecutive rows of F features, slot 0 the primal value and slot
// s = 1..S−1 the s-th tangent (HVP). F = C·Pc: C channels of Pc positions (Pc = 1 for Dense).
#pragma once

#include "cpu/common.h"
#include "math/activations.h"

namespace pyquirk {
namespace cpu {

// Forward epilogue (bias + activation + R-terms in one pass):
//   slot 0: z += b[c];        a = f(z)
//   slot s: dz_s += db_s[c];  da_s = f'(z)·dz_s
// b: [C] or null; db_s = db + (s−1)·db_stride, or no bias tangent when db is null. A may equal Z
// when there is no activation (None/Identity): then only the biases are added. Z is written only
// when b or db is given, so a standalone activation may pass its (read-only) input as Z.
template <class T>
void bias_act_forward(math::Act act, double slope, T* Z, T* A, i64 N, i64 S, i64 C, i64 Pc, const T* b,
                      const T* db, i64 db_stride);

// Backward prologue, from G = ∂/∂a (slot 0: g, slot s: R{g}_s) to ∂/∂z:
//   slot 0: g·f'(z);   slot s: R{g}_s·f'(z) + g·f''(z)·dz_s.
// Slots s0..S−1 are written (s0 = 1 when nothing needs the primal slot; then G's slot 0 is read
// only if f'' may be nonzero). Gin may alias G.
template <class T>
void act_backward(math::Act act, double slope, const T* Z, const T* G, T* Gin, i64 N, i64 S, i64 F, i64 s0);

// Bias gradients summed over samples and positions:
//   out[(s − s0)·out_stride + c] = Σ_n Σ_p G[n, s, c, p]   for s = s0..S−1.
template <class T>
void bias_grad(const T* G, i64 N, i64 S, i64 C, i64 Pc, i64 s0, T* out, i64 out_stride);

}  // namespace cpu
}  // namespace pyquirk
