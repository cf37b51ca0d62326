// Element-wise activations: value f, first derivative df and second derivative d2f, written once
// for CPU and CUDA. They mirror pyquirk/nn/layers.py (the specification) formula for formula:
//   forward  y = f(x);   VJP  gx = gy·f'(x);   R-op  dy = f'(x)·dx;
//   R-backward  dgx = dgy·f'(x) + gy·f''(x)·dx.
// `slope` is LeakyReLU's negative slope; the other activations ignore it.
#pragma once

#include <math.h>

#include "math/hd.h"

namespace pyquirk {
namespace math {

// Codes shared with the net description built in pyquirk/backends/cpu.py.
enum class Act : int { None = 0, Identity = 1, ReLU = 2, LeakyReLU = 3, Tanh = 4, Sigmoid = 5, GELU = 6 };

struct IdentityOp {
  static constexpr bool has_d2 = false;
  template <class T> PYQUIRK_HD static T f(T x, T) { return x; }
  template <class T> PYQUIRK_HD static T df(T, T) { return T(1); }
  template <class T> PYQUIRK_HD static T d2f(T, T) { return T(0); }
};

// max(x, 0) with NumPy's maximum's edge cases: NaN stays NaN (x > 0 ? x : 0 would turn an overflow's
// NaN into a silent 0) and −0 gives +0. The derivative at 0 is 0 (PyTorch's convention).
struct ReLUOp {
  static constexpr bool has_d2 = false;
  template <class T> PYQUIRK_HD static T f(T x, T) { return !(x <= T(0)) ? x : T(0); }
  template <class T> PYQUIRK_HD static T df(T x, T) { return x > T(0) ? T(1) : T(0); }
  template <class T> PYQUIRK_HD static T d2f(T, T) { return T(0); }
};

// x for x > 0, slope·x otherwise.
struct LeakyReLUOp {
  static constexpr bool has_d2 = false;
  template <class T> PYQUIRK_HD static T f(T x, T slope) { return x > T(0) ? x : slope * x; }
  template <class T> PYQUIRK_HD static T df(T x, T slope) { return x > T(0) ? T(1) : slope; }
  template <class T> PYQUIRK_HD static T d2f(T, T) { return T(0); }
};

// tanh: f' = 1 − t², f'' = −2t(1 − t²).
struct TanhOp {
  static constexpr bool has_d2 = true;
  template <class T> PYQUIRK_HD static T f(T x, T) { return pq_tanh(x); }
  template <class T> PYQUIRK_HD static T df(T x, T) {
    const T t = pq_tanh(x);
    return T(1) - t * t;
  }
  template <class T> PYQUIRK_HD static T d2f(T x, T) {
    const T t = pq_tanh(x);
    return T(-2) * t * (T(1) - t * t);
  }
};

// The overflow-free logistic s = (1 + tanh(x/2))/2: f' = s(1 − s), f'' = s(1 − s)(1 − 2s).
struct SigmoidOp {
  static constexpr bool has_d2 = true;
  template <class T> PYQUIRK_HD static T f(T x, T) { return T(0.5) * (T(1) + pq_tanh(T(0.5) * x)); }
  template <class T> PYQUIRK_HD static T df(T x, T) {
    const T s = f(x, T(0));
    return s * (T(1) - s);
  }
  template <class T> PYQUIRK_HD static T d2f(T x, T) {
    const T s = f(x, T(0));
    return s * (T(1) - s) * (T(1) - T(2) * s);
  }
};

// Exact GELU x·Φ(x): f' = Φ(x) + x·φ(x), f'' = φ(x)(2 − x²), φ the standard normal density.
struct GELUOp {
  static constexpr bool has_d2 = true;
  template <class T> PYQUIRK_HD static T cdf(T x) {
    return T(0.5) * (T(1) + pq_erf(x / T(1.4142135623730950488)));
  }
  template <class T> PYQUIRK_HD static T pdf(T x) {
    return pq_exp(T(-0.5) * x * x) / T(2.5066282746310005024);
  }
  template <class T> PYQUIRK_HD static T f(T x, T) { return x * cdf(x); }
  template <class T> PYQUIRK_HD static T df(T x, T) { return cdf(x) + x * pdf(x); }
  template <class T> PYQUIRK_HD static T d2f(T x, T) { return pdf(x) * (T(2) - x * x); }
};

// Calls fn(Op{}) with the op type of `act` (None and Identity both give IdentityOp), so the
// element-wise loops are instantiated per activation and inlined.
template <class Fn>
inline auto with_act(Act act, Fn&& fn) {
  switch (act) {
    case Act::ReLU: return fn(ReLUOp{});
    case Act::LeakyReLU: return fn(LeakyReLUOp{});
    case Act::Tanh: return fn(TanhOp{});
    case Act::Sigmoid: return fn(SigmoidOp{});
    case Act::GELU: return fn(GELUOp{});
    case Act::None:
    case Act::Identity:
    default: return fn(IdentityOp{});
  }
}

// Whether f'' may be nonzero: then the R-backward reads the primal gradient (gy·f''(x)·dx).
inline bool has_d2(Act act) {
  return with_act(act, [](auto op) { return decltype(op)::has_d2; });
}

}  // namespace math
}  // namespace pyquirk
