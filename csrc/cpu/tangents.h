// Where the pass reads parameter tangents and writes parameter gradients.
#pragma once

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

// Tangent s (slot s ≥ 1) of the parameters is row s − 1 of V [k, P]: dθ_s = V + (s − 1)·P.
template <class T>
struct Tangents {
  const T* V = nullptr;
  i64 P = 0;
  const T* at(i64 s, i64 offset) const { return V + (s - 1) * P + offset; }
};

// The gradient of slot s (s ≥ first_slot) lives at base + (s − first_slot)·stride + offset:
// the grad pass writes slot 0 into grad[e] (first_slot 0); the HVP writes tangent slots 1..S−1 into
// consecutive rows of hvp[e] (first_slot 1, stride P). base == null: no parameter gradients
// (input_grad).
template <class T>
struct GradSink {
  T* base = nullptr;
  i64 stride = 0;
  i64 first_slot = 0;
  T* slot(i64 s, i64 offset) const { return base + (s - first_slot) * stride + offset; }
};

}  // namespace cpu
}  // namespace pyquirk
