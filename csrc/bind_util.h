// Helpers of the pybind11 bindings (bindings.cpp, attack_bindings.cpp): array checks that run before
// any memory is touched, and output allocation.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "cpu/common.h"

namespace pyquirk {
namespace bind {

namespace py = pybind11;
using cpu::i64;

// Installs SciPy's sgemm/dgemm from scipy.linalg.cython_blas unless a provider is already set.
void ensure_blas();  // bindings.cpp

// The array behind `o`, which must be a C-contiguous, aligned numpy.ndarray (never copied).
inline py::array as_ndarray(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + " must be a numpy.ndarray, got " + Py_TYPE(o.ptr())->tp_name);
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (numpy.ascontiguousarray makes a copy)");
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(name) + " must be aligned");
  return a;
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline bool is_f32(const py::array& a) { return py::isinstance<py::array_t<float>>(a); }
inline bool is_f64(const py::array& a) { return py::isinstance<py::array_t<double>>(a); }

inline void check_float(const py::array& a, bool f64, const char* name) {
  if (f64 ? !is_f64(a) : !is_f32(a))
    throw py::type_error(std::string(name) + " must have theta's dtype " + (f64 ? "float64" : "float32") +
                         ", got " + std::string(py::str(a.dtype())));
}

inline void check_finite_array(const py::array& a, bool f64, const char* name) {
  const bool ok = f64 ? cpu::all_finite(static_cast<const double*>(a.data()), a.size())
                      : cpu::all_finite(static_cast<const float*>(a.data()), a.size());
  if (!ok) throw py::value_error(std::string(name) + " contains NaN or infinite values");
}

// Outputs are allocated here rather than by NumPy: NumPy asks for transparent huge pages on large
// arrays (madvise), and with the kernel's "defrag=madvise" setting the first touch of such pages
// can stall on memory compaction inside the pass (measured: an E = 64 population step 2x slower).
template <class T>
inline py::array_t<T> new_array(std::vector<py::ssize_t> shape) {
  size_t n = 1;
  for (py::ssize_t d : shape) n *= static_cast<size_t>(d);
  const size_t bytes = std::max<size_t>(64, (n * sizeof(T) + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  py::capsule owner(p, [](void* q) { std::free(q); });
  return py::array_t<T>(shape, static_cast<T*>(p), owner);
}

}  // namespace bind
}  // namespace pyquirk
