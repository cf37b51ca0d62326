// The iteration of pyquirk.adversarial's PGD on the CPU, every step in one native call.
//
// One attack step on a row is the engine's input gradient, the best-iterate tracking, the steepest
// step for the norm, the projection onto the ε-ball around x0 and the clipping to the bounds
// (pyquirk/adversarial/attacks.py, the kernels of pyquirk/backends/numba_kernels.py). Every piece is
// row-local, so the loop is cut into the items of the input-gradient pass — member × shard of the
// batch, by the same shard rule (passes.h) — and each thread keeps its item's rows for all the
// steps: no Python and no hand-off between steps. Member e and its rows compute exactly what the
// loop of single passes computes, bit for bit; docs/native.md §8 has the measurements.
#pragma once

#include <cstdint>

#include "cpu/netspec.h"

namespace pyquirk {
namespace cpu {

enum class AttackNorm { Linf, L2 };

// Inputs are C-contiguous and already validated (attack_bindings.cpp); the net's loss is CE.
template <class T>
struct AttackArgs {
  const T* theta = nullptr;              // [P], shared by the members
  const T* x0 = nullptr;                 // [N, D] clean inputs (D = the net's input size)
  const std::int64_t* labels = nullptr;  // [N] CE labels: y (untargeted) or the targets (targeted)
  const double* alpha = nullptr;         // [E, N] step sizes
  const double* eps = nullptr;           // [E, N] radii
  i64 E = 1, N = 0, steps = 0;
  AttackNorm norm = AttackNorm::Linf;
  bool targeted = false;  // descend CE(target) instead of ascending CE(y)
  T lo = 0, hi = 1;       // the box every iterate is clipped to (may be ±inf)
  double l2_floor = 0;    // L2 step: α·g / max(‖g‖₂, l2_floor)
  // x: the start [E, N, D] in, the last iterate out. z [E, N, C]: logits of the last iterate.
  // Best iterate so far (largest margin; m_best starts at −inf, x_best at the start): updated.
  T* x = nullptr;
  T* z = nullptr;
  T* x_best = nullptr;
  T* z_best = nullptr;
  double* m_best = nullptr;  // [E, N]
};

// Runs a.steps iterations and the final forward pass. Returns false when an input gradient holds a
// NaN or an infinity (the model overflows on an iterate); the outputs are then unspecified.
template <class T>
bool run_attack(const NetSpec& net, const AttackArgs<T>& a);

}  // namespace cpu
}  // namespace pyquirk
