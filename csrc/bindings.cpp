// pybind11 module pyquirk._core: the native core's entry point.
//
// For now it only reports how it was built. The native network passes (csrc/cpu/, csrc/cuda/) are
// bound here when they land; pyquirk.backends.cpu decides from build_info() and from what is bound
// whether the native backend is usable.
#include <pybind11/pybind11.h>

#include <string>

#ifndef PYQUIRK_VERSION
#define PYQUIRK_VERSION "0+unknown"
#endif
#ifndef PYQUIRK_WITH_CUDA
#define PYQUIRK_WITH_CUDA 0
#endif

namespace py = pybind11;

namespace {

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

py::dict build_info() {
  py::dict d;
  d["compiler"] = compiler_string();
  d["cxx_standard"] = cxx_standard_string();
  d["blas"] = "none (GEMMs not yet native)";
  d["cuda"] = static_cast<bool>(PYQUIRK_WITH_CUDA);
#if defined(_OPENMP)
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
  d["version"] = PYQUIRK_VERSION;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyquirk native core (C++/CUDA). See docs/build.md.";
  m.def("build_info", &build_info,
        "How this _core was built: dict with keys compiler, cxx_standard, blas, cuda, openmp, version.");
  m.attr("__version__") = PYQUIRK_VERSION;
}
