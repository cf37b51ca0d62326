// pybind11 module pyquirk._core: the native core's entry point.
//
// - build_info(): how the module was built (and which BLAS its GEMMs call).
// - net_spec(layers, input_shape, loss): the net description the passes run on (cpu/netspec.h).
// - logits / loss / loss_and_grad / vjp / hvp / input_grad: the engine's passes on the CPU
//   (cpu/passes.h), with the shapes of pyquirk/backends/reference.py.
// - attack_loop: the PGD iteration of pyquirk.adversarial in one call (attack_bindings.cpp, cpu/attack.h).
// - set_blas(sgemm, dgemm, name): install the GEMM provider (SciPy's cython_blas capsules by default).
//
// Every argument is validated here, before any memory is touched: dtype (float32/float64, the same
// for every float array; int64 labels), C-contiguity and alignment (rejected, never copied), ranks,
// shapes against the net description, the member axis (1 or E) and the tangent count, label range
// and empty arrays. NaN/inf in theta, X, V, g and MSE targets (unless check_finite=False) are looked
// for inside the pass, each thread scanning the rows it reads next (cpu/passes.h). Bad input raises
// TypeError or ValueError; the passes run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <string>
#include <vector>

#include "bind_util.h"
#include "cpu/blas.h"
#include "cpu/netspec.h"
#include "cpu/passes.h"
#include "cpu/small_gemm.h"
#include "cpu/workspace.h"

#ifndef PYQUIRK_VERSION
#define PYQUIRK_VERSION "0+unknown"
#endif
#ifndef PYQUIRK_WITH_CUDA
#define PYQUIRK_WITH_CUDA 0
#endif

namespace py = pybind11;
using pyquirk::cpu::i64;
using pyquirk::cpu::NetSpec;
using pyquirk::cpu::Pass;
using namespace pyquirk::bind;

namespace {

// ------------------------------------------------------------------------------------ build info
std::string compiler_string() {
#if defined(__clang__)
  return std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("GCC ") + __VERSION__;
#elif defined(_MSC_VER)
  return "MSVC " + std::to_string(_MSC_FULL_VER);
#else
  return "unknown";
#endif
}

std::string cxx_standard_string() {
#if defined(_MSVC_LANG)
  const long v = _MSVC_LANG;
#else
  const long v = __cplusplus;
#endif
  if (v >= 202302L) return "C++23";
  if (v >= 202002L) return "C++20";
  if (v >= 201703L) return "C++17";
  return "pre-C++17 (" + std::to_string(v) + ")";
}

// ------------------------------------------------------------------------------------------ BLAS
void* capsule_pointer(const py::handle& h, const char* what) {
  if (!PyCapsule_CheckExact(h.ptr())) throw py::type_error(std::string(what) + " must be a PyCapsule");
  void* p = PyCapsule_GetPointer(h.ptr(), PyCapsule_GetName(h.ptr()));
  if (!p) throw py::error_already_set();
  return p;
}

void set_blas(const py::object& sgemm, const py::object& dgemm, const std::string& name) {
  void* s = capsule_pointer(sgemm, "sgemm");
  void* d = capsule_pointer(dgemm, "dgemm");
  pyquirk::cpu::set_blas(reinterpret_cast<pyquirk::cpu::sgemm_fn>(s), reinterpret_cast<pyquirk::cpu::dgemm_fn>(d),
                         name);
}

}  // namespace

void pyquirk::bind::ensure_blas() {
  if (pyquirk::cpu::blas_ready()) return;
  py::module_ cb = py::module_::import("scipy.linalg.cython_blas");
  py::dict capi = cb.attr("__pyx_capi__");
  std::string version = py::str(py::module_::import("scipy").attr("__version__"));
  set_blas(capi["sgemm"], capi["dgemm"], "scipy.linalg.cython_blas sgemm/dgemm (SciPy " + version + ")");
}

namespace {

py::dict build_info() {
  py::dict d;
  d["compiler"] = compiler_string();
  d["cxx_standard"] = cxx_standard_string();
  std::string blas;
  try {
    ensure_blas();
    blas = pyquirk::cpu::blas_description();
  } catch (py::error_already_set& e) {
    blas = std::string("unavailable: ") + e.what();
  }
  d["blas"] = blas;
  d["small_gemm"] = pyquirk::cpu::small_gemm_available();
  d["avx2_loops"] = pyquirk::cpu::avx2_loops();
  d["cuda"] = static_cast<bool>(PYQUIRK_WITH_CUDA);
#if defined(_OPENMP)
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
  d["version"] = PYQUIRK_VERSION;
  return d;
}

// ------------------------------------------------------------------------------- net description
std::vector<i64> int_list(const py::handle& h, const std::string& what) {
  std::vector<i64> out;
  try {
    for (py::handle e : py::reinterpret_borrow<py::iterable>(h)) out.push_back(py::cast<i64>(e));
  } catch (py::cast_error&) {
    throw py::type_error(what + " must be a sequence of integers");
  }
  return out;
}

NetSpec make_spec(const py::list& layers, const py::object& input_shape, const std::string& loss) {
  std::vector<pyquirk::cpu::LayerRecord> recs;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = "layer " + std::to_string(i);
    if (!py::isinstance<py::dict>(layers[i])) throw py::type_error(where + " must be a dict record");
    py::dict d = layers[i];
    pyquirk::cpu::LayerRecord r;
    if (!d.contains("kind") || !py::isinstance<py::str>(d["kind"])) throw py::type_error(where + ": 'kind' must be a str");
    r.kind = py::cast<std::string>(d["kind"]);
    try {
      if (d.contains("out")) r.out = py::cast<i64>(d["out"]);
      if (d.contains("slope")) r.slope = py::cast<double>(d["slope"]);
    } catch (py::cast_error&) {
      throw py::type_error(where + ": 'out' must be an int and 'slope' a float");
    }
    if (d.contains("kernel")) r.kernel = int_list(d["kernel"], where + " kernel");
    if (d.contains("stride")) r.stride = int_list(d["stride"], where + " stride");
    if (d.contains("padding")) r.padding = int_list(d["padding"], where + " padding");
    if (!std::isfinite(r.slope)) throw py::value_error(where + ": slope must be finite");
    recs.push_back(std::move(r));
  }
  return pyquirk::cpu::build_net_spec(recs, int_list(input_shape, "input_shape"), loss);
}

// ---------------------------------------------------------------------------------- validation
struct Call {
  bool f64 = false;
  bool has_y = false, has_V = false, has_g = false, check_finite = true;
  i64 E = 0, Ex = 1, Ey = 1, Ev = 1, Eg = 1, N = 0, k = 0;
  py::array theta, X, y, V, g;
};

// C = op(A)·op(B) + beta·C in place, through the passes' GEMM dispatch (cpu::gemm): for tests.
template <class T>
void gemm_into(const py::array& A, const py::array& B, py::array& C, bool ta, bool tb, double beta) {
  const i64 M = C.shape(0), N = C.shape(1), K = A.shape(ta ? 0 : 1);
  if (A.shape(ta ? 1 : 0) != M || B.shape(tb ? 0 : 1) != N || B.shape(tb ? 1 : 0) != K)
    throw py::value_error("gemm: op(A) must be [M, K] and op(B) [K, N] for C [M, N]; got A " + shape_str(A) +
                          ", B " + shape_str(B) + ", C " + shape_str(C));
  if (!std::isfinite(beta)) throw py::value_error("gemm: beta must be finite");
  for (i64 d : {M, N, K, A.shape(1), B.shape(1)})
    if (d > pyquirk::cpu::kBlasIntMax) throw py::value_error("gemm: a dimension passes the 32-bit BLAS limit");
  const pyquirk::cpu::Gemm<T> g{ta, tb, M, N, K, static_cast<const T*>(A.data()), A.shape(1),
                                static_cast<const T*>(B.data()), B.shape(1), static_cast<T>(beta),
                                static_cast<T*>(C.mutable_data()), N};
  py::gil_scoped_release release;
  pyquirk::cpu::gemm<T>(g);
}

void gemm(const py::object& A_o, const py::object& B_o, const py::object& C_o, bool ta, bool tb, double beta) {
  py::array A = as_ndarray(A_o, "gemm: A"), B = as_ndarray(B_o, "gemm: B"), C = as_ndarray(C_o, "gemm: C");
  for (const py::array* a : {&A, &B, &C})
    if (a->ndim() != 2) throw py::value_error("gemm: A, B and C must be 2-D, got " + shape_str(*a));
  if (!C.writeable()) throw py::value_error("gemm: C must be writeable");
  const bool f64 = is_f64(A);
  for (const py::array* a : {&A, &B, &C})
    if (f64 ? !is_f64(*a) : !is_f32(*a)) throw py::type_error("gemm: A, B and C must all be float32 or all float64");
  ensure_blas();
  if (f64) gemm_into<double>(A, B, C, ta, tb, beta);
  else gemm_into<float>(A, B, C, ta, tb, beta);
}

// The member axis of data: 1 (shared) or E.
i64 member_axis(const py::array& a, i64 E, const char* name) {
  const i64 m = a.shape(0);
  if (m != 1 && m != E)
    throw py::value_error(std::string(name) + " has " + std::to_string(m) + " members (shape " + shape_str(a) +
                          "); expected 1 (shared) or E=" + std::to_string(E));
  return m;
}

Call validate(const NetSpec& net, Pass pass, const py::object& theta_o, const py::object& X_o, const py::object* y_o,
              const py::object* V_o, const py::object* g_o, bool check_finite) {
  Call c;
  c.theta = as_ndarray(theta_o, "theta");
  if (is_f64(c.theta)) c.f64 = true;
  else if (!is_f32(c.theta))
    throw py::type_error("theta must have dtype float32 or float64, got " + std::string(py::str(c.theta.dtype())));
  if (c.theta.ndim() != 2 || c.theta.shape(1) != net.n_params)
    throw py::value_error("theta must have shape [E, P=" + std::to_string(net.n_params) + "], got " +
                          shape_str(c.theta));
  c.E = c.theta.shape(0);
  if (c.E < 1) throw py::value_error("theta is empty (E = 0)");

  c.X = as_ndarray(X_o, "X");
  check_float(c.X, c.f64, "X");
  const auto d = static_cast<py::ssize_t>(net.input_shape.size());
  bool ok = c.X.ndim() == d + 2;
  for (py::ssize_t i = 0; ok && i < d; ++i) ok = c.X.shape(2 + i) == net.input_shape[i];
  if (!ok) throw py::value_error("X must have shape [1 or E, N, *input_shape], got " + shape_str(c.X));
  c.Ex = member_axis(c.X, c.E, "X");
  c.N = c.X.shape(1);
  if (c.N < 1) throw py::value_error("X is empty (N = 0)");

  if (y_o) {
    c.has_y = true;
    c.y = as_ndarray(*y_o, "y");
    const i64 C = net.n_outputs;
    if (net.loss == pyquirk::math::Loss::CE) {
      if (!py::isinstance<py::array_t<std::int64_t>>(c.y))
        throw py::type_error("y must hold int64 class labels, got dtype " + std::string(py::str(c.y.dtype())));
      if (c.y.ndim() != 2 || c.y.shape(1) != c.N)
        throw py::value_error("y must have shape [1 or E, N=" + std::to_string(c.N) + "], got " + shape_str(c.y));
      c.Ey = member_axis(c.y, c.E, "y");
      const std::int64_t* lab = static_cast<const std::int64_t*>(c.y.data());
      std::int64_t lo = 0, hi = 0;
      const i64 n = c.y.size();
      for (i64 i = 0; i < n; ++i) {
        lo = lab[i] < lo ? lab[i] : lo;
        hi = lab[i] > hi ? lab[i] : hi;
      }
      // (the words of pyquirk._validate.as_labels, which a native backend's caller skips)
      if (lo < 0) throw py::value_error("y has a negative label (" + std::to_string(lo) + ")");
      if (hi >= C)
        throw py::value_error("y has label " + std::to_string(hi) + " but there are only " + std::to_string(C) +
                              " classes");
    } else {
      check_float(c.y, c.f64, "y");
      if (c.y.ndim() != 3 || c.y.shape(1) != c.N || c.y.shape(2) != C)
        throw py::value_error("y (MSE targets) must have shape [1 or E, N=" + std::to_string(c.N) + ", C=" +
                              std::to_string(C) + "], got " + shape_str(c.y));
      c.Ey = member_axis(c.y, c.E, "y");
    }
  }
  if (V_o) {
    c.has_V = true;
    c.V = as_ndarray(*V_o, "V");
    check_float(c.V, c.f64, "V");
    if (c.V.ndim() != 3 || c.V.shape(2) != net.n_params)
      throw py::value_error("V must have shape [1 or E, k, P=" + std::to_string(net.n_params) + "], got " +
                            shape_str(c.V));
    c.Ev = member_axis(c.V, c.E, "V");
    c.k = c.V.shape(1);
    if (c.k < 1) throw py::value_error("V has no tangents (k = 0)");
  }
  if (g_o) {
    c.has_g = true;
    c.g = as_ndarray(*g_o, "g");
    check_float(c.g, c.f64, "g");
    if (c.g.ndim() != 3 || c.g.shape(1) != c.N || c.g.shape(2) != net.n_outputs)
      throw py::value_error("g must have shape [1 or E, N=" + std::to_string(c.N) + ", C=" +
                            std::to_string(net.n_outputs) + "], got " + shape_str(c.g));
    c.Eg = member_axis(c.g, c.E, "g");
  }
  c.check_finite = check_finite;  // (scanned inside the pass's threads: PassArgs::check_finite)
  pyquirk::cpu::check_pass_size(net, pass, c.N, c.k, c.f64 ? 8 : 4);
  return c;
}

// ---------------------------------------------------------------------------------------- passes
template <class T>
py::object execute(const NetSpec& net, Pass pass, const Call& c) {
  pyquirk::cpu::PassArgs<T> a;
  a.theta = static_cast<const T*>(c.theta.data());
  a.X = static_cast<const T*>(c.X.data());
  a.check_finite = c.check_finite;
  if (c.has_y) {
    if (net.loss == pyquirk::math::Loss::CE) a.labels = static_cast<const std::int64_t*>(c.y.data());
    else a.targets = static_cast<const T*>(c.y.data());
  }
  if (c.has_V) a.V = static_cast<const T*>(c.V.data());
  if (c.has_g) a.cotangent = static_cast<const T*>(c.g.data());
  a.E = c.E, a.Ex = c.Ex, a.Ey = c.Ey, a.Ev = c.Ev, a.Eg = c.Eg, a.N = c.N, a.k = c.k;
  const py::ssize_t E = c.E, N = c.N, C = net.n_outputs, P = net.n_params;
  py::object result;
  switch (pass) {
    case Pass::Logits: {
      auto z = new_array<T>({E, N, C});
      a.logits = z.mutable_data();
      result = z;
      break;
    }
    case Pass::Loss: {
      auto l = new_array<T>({E, N});
      a.losses = l.mutable_data();
      result = l;
      break;
    }
    case Pass::Grad: {
      auto l = new_array<T>({E, N});
      auto g = new_array<T>({E, P});
      a.losses = l.mutable_data(), a.grad = g.mutable_data();
      result = py::make_tuple(l, g);
      break;
    }
    case Pass::Vjp: {
      auto g = new_array<T>({E, P});
      a.grad = g.mutable_data();
      result = g;
      break;
    }
    case Pass::Hvp: {
      auto h = new_array<T>({E, static_cast<py::ssize_t>(c.k), P});
      a.hvp = h.mutable_data();
      result = h;
      break;
    }
    case Pass::InputGrad: {
      auto z = new_array<T>({E, N, C});
      std::vector<py::ssize_t> xs(c.X.shape(), c.X.shape() + c.X.ndim());
      xs[0] = E;
      auto gx = new_array<T>(xs);
      a.logits = z.mutable_data(), a.gx = gx.mutable_data();
      result = py::make_tuple(z, gx);
      break;
    }
  }
  {
    py::gil_scoped_release release;
    pyquirk::cpu::run_pass<T>(net, pass, a);
  }
  return result;
}

py::object dispatch(const NetSpec& net, Pass pass, const py::object& theta, const py::object& X, const py::object* y,
                    const py::object* V, bool check_finite, const py::object* g = nullptr) {
  ensure_blas();
  const Call c = validate(net, pass, theta, X, y, V, g, check_finite);
  return c.f64 ? execute<double>(net, pass, c) : execute<float>(net, pass, c);
}

}  // namespace

void bind_sparse(py::module_& m);  // sparse_bindings.cpp: csr_matmul
void bind_attack(py::module_& m);  // attack_bindings.cpp: attack_loop

PYBIND11_MODULE(_core, m) {
  using namespace pybind11::literals;
  m.doc() = "pyquirk native core (C++/CUDA): the engine's passes on the CPU. See docs/native.md.";
  m.def("build_info", &build_info,
        "How this _core was built: dict with keys compiler, cxx_standard, blas, small_gemm, avx2_loops, "
        "cuda, openmp, version.");
  m.attr("__version__") = PYQUIRK_VERSION;

  // module_local: the type stays this module's own, so two builds of _core can be loaded into one
  // process side by side (to time a change against its predecessor call by call, docs/native.md §9).
  py::class_<NetSpec>(m, "_NetSpec", py::module_local(),
                          "A net description for the native passes; build it with net_spec().")
      .def_property_readonly("n_params", [](const NetSpec& s) { return s.n_params; })
      .def_property_readonly("n_outputs", [](const NetSpec& s) { return s.n_outputs; })
      .def_property_readonly("input_shape", [](const NetSpec& s) { return py::tuple(py::cast(s.input_shape)); })
      .def_property_readonly("param_offsets", [](const NetSpec& s) { return s.param_offsets; })
      .def_property_readonly("units", [](const NetSpec& s) { return s.description; })
      .def("workspace_bytes",
           [](const NetSpec& s, i64 N, i64 k, int itemsize) {
             if (N < 1 || k < 0 || (itemsize != 4 && itemsize != 8)) throw py::value_error("bad arguments");
             return pyquirk::cpu::pass_workspace_bytes(s, k > 0 ? Pass::Hvp : Pass::Grad, N, k,
                                                       static_cast<size_t>(itemsize));
           },
           "N"_a, "k"_a = 0, "itemsize"_a = 4, "Scratch bytes of a grad (k=0) or HVP (k tangents) pass.")
      .def("__repr__", [](const NetSpec& s) {
        return "<_NetSpec P=" + std::to_string(s.n_params) + " units: " + s.description + ">";
      });

  m.def("net_spec", &make_spec, "layers"_a, "input_shape"_a, "loss"_a,
        "Build the net description from one dict record per layer (see pyquirk/backends/cpu.py).");

  const char* finite_doc = " check_finite=False skips the NaN/inf scan (for callers that have made it already).";
  m.def("logits",
        [](const NetSpec& s, const py::object& th, const py::object& X, bool cf) {
          return dispatch(s, Pass::Logits, th, X, nullptr, nullptr, cf);
        },
        "spec"_a, "theta"_a, "X"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("Logits [E, N, C] for theta [E, P], X [1|E, N, *in].") + finite_doc).c_str());
  m.def("loss",
        [](const NetSpec& s, const py::object& th, const py::object& X, const py::object& y, bool cf) {
          return dispatch(s, Pass::Loss, th, X, &y, nullptr, cf);
        },
        "spec"_a, "theta"_a, "X"_a, "y"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("Per-sample losses [E, N]; y: int64 [1|E, N] (CE) or targets [1|E, N, C] (MSE).") +
         finite_doc).c_str());
  m.def("loss_and_grad",
        [](const NetSpec& s, const py::object& th, const py::object& X, const py::object& y, bool cf) {
          return dispatch(s, Pass::Grad, th, X, &y, nullptr, cf);
        },
        "spec"_a, "theta"_a, "X"_a, "y"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("(per-sample losses [E, N], gradient of the mean loss [E, P]).") + finite_doc).c_str());
  m.def("vjp",
        [](const NetSpec& s, const py::object& th, const py::object& X, const py::object& g, bool cf) {
          return dispatch(s, Pass::Vjp, th, X, nullptr, nullptr, cf, &g);
        },
        "spec"_a, "theta"_a, "X"_a, "g"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("∂/∂θ Σ g·logits [E, P] for a cotangent g [1|E, N, C] on the logits.") + finite_doc).c_str());
  m.def("hvp",
        [](const NetSpec& s, const py::object& th, const py::object& X, const py::object& y, const py::object& V,
           bool cf) { return dispatch(s, Pass::Hvp, th, X, &y, &V, cf); },
        "spec"_a, "theta"_a, "X"_a, "y"_a, "V"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("Hessian-vector products [E, k, P] of the mean loss for tangents V [1|E, k, P] "
                     "(R-operator; the k tangents share one primal pass).") + finite_doc).c_str());
  m.def("input_grad",
        [](const NetSpec& s, const py::object& th, const py::object& X, const py::object& y, bool cf) {
          return dispatch(s, Pass::InputGrad, th, X, &y, nullptr, cf);
        },
        "spec"_a, "theta"_a, "X"_a, "y"_a, py::kw_only(), "check_finite"_a = true,
        (std::string("(logits [E, N, C], ∂l_n/∂x_n [E, N, *in]): each sample's own-loss input gradient.") +
         finite_doc).c_str());

  m.def("set_blas", &set_blas, "sgemm"_a, "dgemm"_a, "name"_a,
        "Install the GEMM provider: PyCapsules holding Fortran-interface sgemm/dgemm pointers (as in "
        "scipy.linalg.cython_blas.__pyx_capi__), and the name build_info() reports. Default: SciPy's.");
  m.def("gemm", &gemm, "A"_a, "B"_a, "C"_a, py::kw_only(), "ta"_a = false, "tb"_a = false, "beta"_a = 0.0,
        "C = op(A)·op(B) + beta·C in place (op = transpose when ta/tb), through the GEMM dispatch of the passes "
        "(pyquirk's small-GEMM kernel or the BLAS); 2-D C-contiguous arrays of one float dtype. For tests.");
  m.def("set_tangent_budget", [](std::int64_t bytes) {
          if (bytes < 0) throw py::value_error("budget must be >= 0 bytes");
          return static_cast<std::int64_t>(pyquirk::cpu::set_tangent_budget(static_cast<size_t>(bytes)));
        }, "bytes"_a,
        "Scratch bytes (per thread) an HVP block may take before its tangents are split into chunks (each "
        "repeating the primal pass; results are unchanged). Default 1 GiB. Returns the previous value.");
  m.def("release_workspace",
        []() {
          pyquirk::cpu::thread_arena().release();
          pyquirk::cpu::sum_arena().release();
        },
        "Free the calling thread's scratch block (kept between passes to avoid re-allocation).");

  bind_sparse(m);
  bind_attack(m);
}
