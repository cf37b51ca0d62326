// The network passes of the engine on the CPU: logits, per-sample loss, loss + gradient, vjp, block
// HVP (R-operator) and input gradient, for a population of E members and, for the HVP, a block of k
// tangents that share one primal forward and backward pass (slot layout: dense.h, conv.h).
//
// A pass is cut into items — member × shard of the batch × chunk of tangents — that threads run side
// by side, each single-threaded from start to end. Every GEMM is issued per slot with a shape that
// depends on neither E nor k, so member e of a population pass equals the single-member pass bit for
// bit, and tangent i of a block equals the single-vector HVP. The shards of the batch follow a rule
// on N and the net alone, and their parameter gradients are added in shard order, so the results do
// not depend on the thread count either. docs/native.md has the measurements behind this.
#pragma once

#include <cstdint>

#include "cpu/netspec.h"

namespace pyquirk {
namespace cpu {

enum class Pass { Logits, Loss, Grad, Vjp, Hvp, InputGrad };

// Inputs are C-contiguous and already validated (bindings.cpp). Ex, Ey, Ev ∈ {1, E}: 1 = shared.
template <class T>
struct PassArgs {
  const T* theta = nullptr;  // [E, P]
  const T* X = nullptr;      // [Ex, N, *in]
  const std::int64_t* labels = nullptr;  // [Ey, N] (CE)
  const T* targets = nullptr;            // [Ey, N, C] (MSE)
  const T* V = nullptr;                  // [Ev, k, P] (HVP)
  const T* cotangent = nullptr;          // [Eg, N, C] (VJP): ∂(something)/∂logits
  i64 E = 1, Ex = 1, Ey = 1, Ev = 1, Eg = 1, N = 0, k = 0;
  // Scan the inputs for NaN/inf inside the items, each item the rows it reads next (a shared array
  // once); run_pass then throws std::invalid_argument naming the first bad one, in the order theta,
  // X, y (MSE targets), V, g.
  bool check_finite = false;
  // outputs, by pass
  T* logits = nullptr;     // [E, N, C]   logits, input_grad
  T* losses = nullptr;     // [E, N]      loss, grad (per sample)
  T* grad = nullptr;       // [E, P]      grad, vjp
  T* hvp = nullptr;        // [E, k, P]   hvp
  T* gx = nullptr;         // [E, N, *in] input_grad
};

// Throws std::invalid_argument when a GEMM dimension would overflow the 32-bit BLAS interface.
void check_pass_size(const NetSpec& net, Pass pass, i64 N, i64 k, size_t itemsize);

template <class T>
void run_pass(const NetSpec& net, Pass pass, const PassArgs<T>& args);

// The batch shards of a pass on N samples (a rule on N, the net, the pass and the dtype alone):
// shard j of n holds samples [N·j/n, N·(j+1)/n). Parameter gradients of the shards are added in
// shard order.
i64 shard_count(const NetSpec& net, Pass pass, i64 N, size_t itemsize);

// One shard of the input-gradient pass, on the calling thread: for samples X [n, *in] of one member
// (θ [P]) and their CE labels [n] (or MSE targets [n, C]), the logits [n, C] and ∂l_i/∂x_i [n, *in]: what
// run_pass(InputGrad) writes for them when they form a shard. For loops that keep one shard on one
// thread for many passes (cpu/attack.h). logits_rows: the forward pass alone.
template <class T>
void input_grad_rows(const NetSpec& net, const T* theta, const T* X, const std::int64_t* labels, const T* targets,
                     i64 n, T* logits, T* gx);
template <class T>
void logits_rows(const NetSpec& net, const T* theta, const T* X, i64 n, T* logits);

// Scratch bytes of one pass (the HVP counts the tangent chunk it would use).
size_t pass_workspace_bytes(const NetSpec& net, Pass pass, i64 N, i64 k, size_t itemsize);

// Most scratch (bytes, per thread) an HVP block may take before it is split into chunks of
// tangents (each chunk repeats the primal pass; results are unchanged). Default 1 GiB; returns the
// previous value.
size_t set_tangent_budget(size_t bytes);

}  // namespace cpu
}  // namespace pyquirk
