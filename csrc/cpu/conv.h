// Convolution (1-D as 2-D with height 1) by im2col + GEMM, in slot layout.
//
// im2col lays out the patches of every (slot, sample) pair side by side: cols [CK, Si·N·P], CK =
// C_in·kh·kw rows, columns ordered (slot, sample, output position), so slot s is the column block
// cols_s [CK, N·P]. Per slot, as in pyquirk/nn/layers.py (G_s: slot s of ∂/∂z in [C_out, N·P]):
//   R-forward   Z_s     = W·cols_s + dW_s·cols_0
//   R-backward  gcols_s = Wᵀ·G_s   + dW_sᵀ·G_0,   then col2im
//               dgW_s   = G_s·cols_0ᵀ + G_0·cols_sᵀ
// each one job of GemmJobs, all slots side by side.
#pragma once

#include "cpu/netspec.h"
#include "cpu/tangents.h"

namespace pyquirk {
namespace cpu {

// Scratch (elements) conv_forward/conv_backward need in tmpA and tmpB.
i64 conv_scratch_a(const Unit& u, i64 N, i64 S);
i64 conv_scratch_b(const Unit& u, i64 N, i64 S);

// Z [N, S, out, oh, ow] (before the bias) from A [N, Si, in, ih, iw]; fills cols [CK, Si·N·P] (kept for
// the backward pass).
template <class T>
void conv_forward(const Unit& u, const T* W, const Tangents<T>& dp, const T* A, i64 N, i64 Si, i64 S, T* cols,
                  T* tmpA, T* Z);

// From G = ∂/∂z [N, S, out, P]: weight gradients into `sink` and, when Gin is non-null (Si == S),
// Gin = ∂/∂A [N, S, in, ih, iw].
template <class T>
void conv_backward(const Unit& u, const T* W, const Tangents<T>& dp, const T* G, const T* cols, i64 N, i64 Si,
                   i64 S, const GradSink<T>& sink, T* tmpA, T* tmpB, T* Gin);

}  // namespace cpu
}  // namespace pyquirk
