// PYQUIRK_HD marks per-element math that the CPU drivers (csrc/cpu) and the CUDA drivers (csrc/cuda)
// share: __host__ __device__ under nvcc, nothing for a plain C++ compiler (STYLE 5).
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define PYQUIRK_HD __host__ __device__
#else
#define PYQUIRK_HD
#endif

namespace pyquirk {
namespace math {

// The C math functions overloaded on float/double, usable on host and device alike.
PYQUIRK_HD inline float pq_tanh(float x) { return tanhf(x); }
PYQUIRK_HD inline double pq_tanh(double x) { return tanh(x); }
PYQUIRK_HD inline float pq_exp(float x) { return expf(x); }
PYQUIRK_HD inline double pq_exp(double x) { return exp(x); }
PYQUIRK_HD inline float pq_log(float x) { return logf(x); }
PYQUIRK_HD inline double pq_log(double x) { return log(x); }
PYQUIRK_HD inline float pq_erf(float x) { return erff(x); }
PYQUIRK_HD inline double pq_erf(double x) { return erf(x); }

}  // namespace math
}  // namespace pyquirk
