#include "cpu/loss.h"

#include <vector>

namespace pyquirk {
namespace cpu {

template <class T>
void loss_stage(math::Loss kind, const T* L, const std::int64_t* labels, const T* targets, i64 N, i64 S, i64 C,
                T scale, T* loss, T* G) {
  const i64 scratch = kind == math::Loss::CE ? C : 0;
  const auto rows = [&](i64 n, T* sm) {
    const T* z = L + n * S * C;
    T* g = G ? G + n * S * C : nullptr;
    if (kind == math::Loss::CE) {
      const T lse = math::softmax_row(z, C, sm);
      if (loss) loss[n] = math::ce_loss_row(z, lse, labels[n]);
      if (g) {
        math::ce_grad_row(sm, C, labels[n], scale, g);
        for (i64 s = 1; s < S; ++s) math::ce_rgrad_row(sm, z + s * C, C, scale, g + s * C);
      }
    } else {
      const T* t = targets + n * C;
      if (loss) loss[n] = math::mse_loss_row(z, t, C);
      if (g) {
        math::mse_grad_row(z, t, C, scale, g);
        for (i64 s = 1; s < S; ++s) math::mse_rgrad_row(z + s * C, C, scale, g + s * C);
      }
    }
  };
  if (fork_ok(N * S * C)) {  // (decided outside the region: parallel_for in common.h says why)
#pragma omp parallel
    {
      std::vector<T> sm(scratch);
#pragma omp for schedule(static)
      for (i64 n = 0; n < N; ++n) rows(n, sm.data());
    }
  } else {
    std::vector<T> sm(scratch);
    for (i64 n = 0; n < N; ++n) rows(n, sm.data());
  }
}

template void loss_stage<float>(math::Loss, const float*, const std::int64_t*, const float*, i64, i64, i64, float,
                                float*, float*);
template void loss_stage<double>(math::Loss, const double*, const std::int64_t*, const double*, i64, i64, i64,
                                 double, double*, double*);

}  // namespace cpu
}  // namespace pyquirk
