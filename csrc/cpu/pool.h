// Max and average pooling (1-D as 2-D with height 1, no padding) on [N, S, C, H, W] in slot layout.
// Pooling is linear in its input for a fixed arg-max, so tangent slots go through the same map as
// the primal: max pooling takes each window's arg-max from slot 0 (first maximum on ties) and reads
// every slot there; the backward pass scatters every slot back to it.
#pragma once

#include <cstdint>

#include "cpu/netspec.h"

namespace pyquirk {
namespace cpu {

// idx: [N, C, oh, ow] input-plane offsets of the maxima (max pooling; ignored for average).
template <class T>
void pool_forward(const Unit& u, const T* X, i64 N, i64 S, T* Y, std::int32_t* idx);

// Adjoint: Gin = 0, then each output gradient is added back to the input(s) it read.
template <class T>
void pool_backward(const Unit& u, const T* G, i64 N, i64 S, T* Gin, const std::int32_t* idx);

}  // namespace cpu
}  // namespace pyquirk
