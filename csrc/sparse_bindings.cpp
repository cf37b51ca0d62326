// pyquirk._core sparse inference: bind_sparse(m) registers csr_matmul (see cpu/sparse.h).
//
// csr_matmul(indptr, indices, data, bias, Xt, relu=False, *, check=True, x_rows=False) -> Yt
//   indptr int64 [out + 1], indices int32 [nnz], data float32|float64 [nnz], bias [out] (same dtype) or
//   None, Xt [in, N] (same dtype; with x_rows, X [N, in]); returns Yt [out, N] = act(W Xt + b). Every array must be C-contiguous
//   (never copied). The CSR structure is validated before any arithmetic (indptr[0] = 0, indptr[out] = nnz,
//   and unless check=False, indptr non-decreasing and 0 <= indices < in: an O(nnz) scan that SparseNet
//   skips for the CSR it built itself); `in` is Xt.shape[0]. The product runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "cpu/sparse.h"

namespace py = pybind11;
using pyquirk::cpu::i64;

namespace {

std::string shape_of(const py::array& a) {
  std::string s = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

py::array contiguous(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + " must be a NumPy array");
  py::array a = py::reinterpret_borrow<py::array>(o);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (it is never copied)");
  return a;
}

template <class T>
py::array run(const py::array& indptr, const py::array& indices, const py::array& data, const py::object& bias_o,
              const py::array& Xt, bool relu, bool check, bool x_rows) {
  const i64 out = indptr.shape(0) - 1, nnz = indices.shape(0);
  const i64 in = Xt.shape(x_rows ? 1 : 0), N = Xt.shape(x_rows ? 0 : 1);
  const T* bias = nullptr;
  py::array bias_a;
  if (!bias_o.is_none()) {
    bias_a = contiguous(bias_o, "bias");
    if (!py::isinstance<py::array_t<T>>(bias_a) || bias_a.ndim() != 1 || bias_a.shape(0) != out)
      throw py::value_error("bias must have Xt's dtype and shape [out=" + std::to_string(out) + "], got " +
                            std::string(py::str(bias_a.dtype())) + " " + shape_of(bias_a));
    bias = static_cast<const T*>(bias_a.data());
  }
  const auto* ip = static_cast<const std::int64_t*>(indptr.data());
  const auto* ix = static_cast<const std::int32_t*>(indices.data());
  if (ip[0] != 0 || ip[out] != nnz)
    throw py::value_error("indptr must start at 0 and end at nnz=" + std::to_string(nnz));
  if (check) {
    for (i64 o = 0; o < out; ++o)
      if (ip[o + 1] < ip[o]) throw py::value_error("indptr must be non-decreasing (row " + std::to_string(o) + ")");
    for (i64 t = 0; t < nnz; ++t)
      if (ix[t] < 0 || ix[t] >= in)
        throw py::value_error("indices[" + std::to_string(t) + "] = " + std::to_string(ix[t]) +
                              " lies outside [0, in=" + std::to_string(in) + ")");
  }
  py::array_t<T> Yt({static_cast<py::ssize_t>(out), static_cast<py::ssize_t>(N)});
  T* y = Yt.mutable_data();
  const T* d = static_cast<const T*>(data.data());
  const T* x = static_cast<const T*>(Xt.data());
  {
    py::gil_scoped_release release;
    pyquirk::cpu::csr_matmul<T>(out, in, N, ip, ix, d, bias, x, x_rows, y, relu);
  }
  return Yt;
}

py::array csr_matmul(const py::object& indptr_o, const py::object& indices_o, const py::object& data_o,
                     const py::object& bias_o, const py::object& Xt_o, bool relu, bool check, bool x_rows) {
  py::array indptr = contiguous(indptr_o, "indptr"), indices = contiguous(indices_o, "indices");
  py::array data = contiguous(data_o, "data"), Xt = contiguous(Xt_o, "Xt");
  if (!py::isinstance<py::array_t<std::int64_t>>(indptr) || indptr.ndim() != 1 || indptr.shape(0) < 1)
    throw py::type_error("indptr must be int64 [out + 1], got " + std::string(py::str(indptr.dtype())) + " " +
                         shape_of(indptr));
  if (!py::isinstance<py::array_t<std::int32_t>>(indices) || indices.ndim() != 1)
    throw py::type_error("indices must be int32 [nnz], got " + std::string(py::str(indices.dtype())) + " " +
                         shape_of(indices));
  if (Xt.ndim() != 2)
    throw py::value_error(std::string("Xt must have shape ") + (x_rows ? "[N, in]" : "[in, N]") + ", got " + shape_of(Xt));
  if (data.ndim() != 1 || data.shape(0) != indices.shape(0))
    throw py::value_error("data must have shape [nnz=" + std::to_string(indices.shape(0)) + "], got " + shape_of(data));
  const bool f32 = py::isinstance<py::array_t<float>>(Xt), f64 = py::isinstance<py::array_t<double>>(Xt);
  if (!f32 && !f64) throw py::type_error("Xt must be float32 or float64, got " + std::string(py::str(Xt.dtype())));
  if (f32 ? !py::isinstance<py::array_t<float>>(data) : !py::isinstance<py::array_t<double>>(data))
    throw py::type_error("data must have Xt's dtype " + std::string(py::str(Xt.dtype())) + ", got " +
                         std::string(py::str(data.dtype())));
  return f32 ? run<float>(indptr, indices, data, bias_o, Xt, relu, check, x_rows)
             : run<double>(indptr, indices, data, bias_o, Xt, relu, check, x_rows);
}

}  // namespace

void bind_sparse(py::module_& m) {
  using namespace pybind11::literals;
  m.def("csr_matmul", &csr_matmul, "indptr"_a, "indices"_a, "data"_a, "bias"_a, "Xt"_a, "relu"_a = false,
        py::kw_only(), "check"_a = true, "x_rows"_a = false,
        "Yt [out, N] = act(W Xt + b) for a CSR weight W [out, in] (indptr int64 [out+1], indices int32 [nnz], "
        "data [nnz]) and feature-major Xt [in, N] (float32 or float64; x_rows=True: sample-major X [N, in]); "
        "act = ReLU if relu. check=False skips the O(nnz) scan of indptr/indices (for CSR built by pyquirk). "
        "OpenMP over rows, GIL released.");
}
