// The loss at the logits, in slot layout L[N, S, C] (slot 0: logits z, slot s: their tangent dz_s).
#pragma once

#include <cstdint>

#include "cpu/common.h"
#include "math/losses.h"

namespace pyquirk {
namespace cpu {

// labels: [N] classes (CE); targets: [N, C] (MSE). Writes, when non-null:
//   loss[n]      the per-sample loss of slot 0;
//   G[n, 0, :]   scale·∂l_n/∂z  and  G[n, s, :]  its R-operator along dz_s (s ≥ 1).
template <class T>
void loss_stage(math::Loss kind, const T* L, const std::int64_t* labels, const T* targets, i64 N, i64 S, i64 C,
                T scale, T* loss, T* G);

}  // namespace cpu
}  // namespace pyquirk
