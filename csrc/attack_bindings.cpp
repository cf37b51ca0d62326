// pyquirk._core attack loop: bind_attack(m) registers attack_loop (see cpu/attack.h).
//
// attack_loop(spec, theta, x0, labels, x, alpha, eps, *, steps, norm, targeted, lo, hi, l2_floor,
//             check_finite=True) -> (z, x_best, z_best, m_best)
//   theta [P] float32|float64; x0 [N, *in] and x [E, N, *in] (the start; overwritten with the last
//   iterate) in theta's dtype; labels int64 [N]; alpha, eps float64 [E, N]. Returns the logits of the
//   last iterate [E, N, C], the best iterate [E, N, *in], its logits [E, N, C] and its margin
//   [E, N] float64. Every argument is validated before any arithmetic: dtypes, C-contiguity, shapes,
//   label range, finite α ≥ 0 and ε ≥ 0, lo < hi, steps ≥ 1, the norm's name, x writeable and apart
//   from x0, and (unless check_finite=False) NaN/inf in theta, x0 and x. A gradient that turns
//   non-finite during the loop raises ValueError. The loop runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "bind_util.h"
#include "cpu/attack.h"
#include "cpu/passes.h"

namespace py = pybind11;
using pyquirk::cpu::i64;
using pyquirk::cpu::NetSpec;
using namespace pyquirk::bind;

namespace {

struct AttackCall {
  py::array theta, x0, labels, x, alpha, eps;
  bool f64 = false;
  i64 E = 0, N = 0;
};

// An array whose shape must be `lead` followed by the net's input shape.
void check_shape(const py::array& a, const std::vector<i64>& lead, const std::vector<i64>& tail, const char* name,
                 const char* want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(lead.size() + tail.size());
  for (size_t i = 0; ok && i < lead.size() + tail.size(); ++i)
    ok = a.shape(static_cast<py::ssize_t>(i)) == (i < lead.size() ? lead[i] : tail[i - lead.size()]);
  if (!ok) throw py::value_error(std::string(name) + " must have shape " + want + ", got " + shape_str(a));
}

void check_rates(const py::array& a, i64 E, i64 N, const char* name) {
  if (!py::isinstance<py::array_t<double>>(a)) throw py::type_error(std::string(name) + " must be float64");
  check_shape(a, {E, N}, {}, name, "[E, N] (x's first two axes)");
  const double* p = static_cast<const double*>(a.data());
  for (i64 i = 0; i < a.size(); ++i)
    if (!(std::isfinite(p[i]) && p[i] >= 0))
      throw py::value_error(std::string(name) + " must be finite and >= 0, got " + std::to_string(p[i]));
}

bool overlaps(const py::array& a, const py::array& b) {
  const char *a0 = static_cast<const char*>(a.data()), *b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

AttackCall validate(const NetSpec& net, const py::object& theta, const py::object& x0, const py::object& labels,
                    const py::object& x, const py::object& alpha, const py::object& eps, bool check_finite) {
  if (net.loss != pyquirk::math::Loss::CE) throw py::value_error("attack_loop needs a cross-entropy net");
  AttackCall c;
  c.theta = as_ndarray(theta, "theta");
  c.f64 = is_f64(c.theta);
  if (!c.f64 && !is_f32(c.theta))
    throw py::type_error("theta must have dtype float32 or float64, got " + std::string(py::str(c.theta.dtype())));
  check_shape(c.theta, {net.n_params}, {}, "theta", "[P]");
  c.x = as_ndarray(x, "x");
  check_float(c.x, c.f64, "x");
  if (c.x.ndim() < 2) throw py::value_error("x must have shape [E, N, *input_shape], got " + shape_str(c.x));
  c.E = c.x.shape(0), c.N = c.x.shape(1);
  check_shape(c.x, {c.E, c.N}, net.input_shape, "x", "[E, N, *input_shape]");
  if (c.E < 1 || c.N < 1) throw py::value_error("x is empty, shape " + shape_str(c.x));
  if (!c.x.writeable()) throw py::value_error("x must be writeable (it receives the last iterate)");
  c.x0 = as_ndarray(x0, "x0");
  check_float(c.x0, c.f64, "x0");
  check_shape(c.x0, {c.N}, net.input_shape, "x0", "[N, *input_shape] (N = x.shape[1])");
  if (overlaps(c.x, c.x0)) throw py::value_error("x and x0 must not share memory");
  c.labels = as_ndarray(labels, "labels");
  if (!py::isinstance<py::array_t<std::int64_t>>(c.labels)) throw py::type_error("labels must be int64");
  check_shape(c.labels, {c.N}, {}, "labels", "[N]");
  const auto* lab = static_cast<const std::int64_t*>(c.labels.data());
  for (i64 i = 0; i < c.N; ++i)
    if (lab[i] < 0 || lab[i] >= net.n_outputs)
      throw py::value_error("labels has class " + std::to_string(lab[i]) + " outside [0, " +
                            std::to_string(net.n_outputs) + ")");
  c.alpha = as_ndarray(alpha, "alpha");
  c.eps = as_ndarray(eps, "eps");
  check_rates(c.alpha, c.E, c.N, "alpha");
  check_rates(c.eps, c.E, c.N, "eps");
  if (check_finite) {
    check_finite_array(c.theta, c.f64, "theta");
    check_finite_array(c.x0, c.f64, "x0");
    check_finite_array(c.x, c.f64, "x");
  }
  pyquirk::cpu::check_pass_size(net, pyquirk::cpu::Pass::InputGrad, c.N, 0, c.f64 ? 8 : 4);
  return c;
}

template <class T>
py::tuple execute(const NetSpec& net, const AttackCall& c, i64 steps, pyquirk::cpu::AttackNorm norm, bool targeted,
                  double lo, double hi, double l2_floor) {
  const py::ssize_t E = c.E, N = c.N, C = net.n_outputs;
  std::vector<py::ssize_t> xs(c.x.shape(), c.x.shape() + c.x.ndim());
  auto z = new_array<T>({E, N, C}), z_best = new_array<T>({E, N, C});
  auto x_best = new_array<T>(xs);
  auto m_best = new_array<double>({E, N});
  pyquirk::cpu::AttackArgs<T> a;
  a.theta = static_cast<const T*>(c.theta.data());
  a.x0 = static_cast<const T*>(c.x0.data());
  a.labels = static_cast<const std::int64_t*>(c.labels.data());
  a.alpha = static_cast<const double*>(c.alpha.data());
  a.eps = static_cast<const double*>(c.eps.data());
  a.E = E, a.N = N, a.steps = steps, a.norm = norm, a.targeted = targeted;
  a.lo = static_cast<T>(lo), a.hi = static_cast<T>(hi), a.l2_floor = l2_floor;
  a.x = static_cast<T*>(py::array(c.x).mutable_data());
  a.z = z.mutable_data(), a.x_best = x_best.mutable_data(), a.z_best = z_best.mutable_data();
  a.m_best = m_best.mutable_data();
  bool finite = false;
  {
    py::gil_scoped_release release;
    std::copy(a.x, a.x + c.x.size(), a.x_best);
    std::fill(a.m_best, a.m_best + E * N, -std::numeric_limits<double>::infinity());
    finite = pyquirk::cpu::run_attack<T>(net, a);
  }
  if (!finite)
    throw py::value_error("the input gradient contains NaN or infinite values (the model overflows on these inputs)");
  return py::make_tuple(z, x_best, z_best, m_best);
}

py::tuple attack_loop(const NetSpec& net, const py::object& theta, const py::object& x0, const py::object& labels,
                      const py::object& x, const py::object& alpha, const py::object& eps, i64 steps,
                      const std::string& norm, bool targeted, double lo, double hi, double l2_floor,
                      bool check_finite) {
  if (steps < 1) throw py::value_error("steps must be >= 1, got " + std::to_string(steps));
  if (norm != "linf" && norm != "l2") throw py::value_error("norm must be 'linf' or 'l2', got '" + norm + "'");
  if (std::isnan(lo) || std::isnan(hi) || !(lo < hi)) throw py::value_error("bounds must satisfy lo < hi");
  if (!(std::isfinite(l2_floor) && l2_floor > 0)) throw py::value_error("l2_floor must be finite and > 0");
  ensure_blas();
  const AttackCall c = validate(net, theta, x0, labels, x, alpha, eps, check_finite);
  const auto nm = norm == "l2" ? pyquirk::cpu::AttackNorm::L2 : pyquirk::cpu::AttackNorm::Linf;
  return c.f64 ? execute<double>(net, c, steps, nm, targeted, lo, hi, l2_floor)
               : execute<float>(net, c, steps, nm, targeted, lo, hi, l2_floor);
}

}  // namespace

void bind_attack(py::module_& m) {
  using namespace pybind11::literals;
  m.def("attack_loop", &attack_loop, "spec"_a, "theta"_a, "x0"_a, "labels"_a, "x"_a, "alpha"_a, "eps"_a,
        py::kw_only(), "steps"_a, "norm"_a, "targeted"_a, "lo"_a, "hi"_a, "l2_floor"_a, "check_finite"_a = true,
        "The PGD iteration of pyquirk.adversarial, all steps in one call (cpu/attack.h): x [E, N, *in] holds "
        "the start and receives the last iterate; returns (z [E, N, C], x_best, z_best, m_best [E, N]).");
}
