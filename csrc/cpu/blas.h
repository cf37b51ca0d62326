// The BLAS behind every GEMM of the native passes, and how the passes spread GEMMs over threads.
//
// Provider: SciPy's sgemm/dgemm, taken from the PyCapsules in scipy.linalg.cython_blas.__pyx_capi__
// (docs/native.md has the measurements behind that choice). Nothing is linked at build time; the
// pointers are installed once by set_blas() (Fortran interface, every argument by pointer).
// gemm() sends float32 products with small K and N to pyquirk's AVX2 kernel instead
// (cpu/small_gemm.h: faster there, and its bits do not depend on how rows are stacked).
//
// Threads: while a pass runs, the BLAS is held to one thread (SingleThreadedBlas) and pyquirk's own
// threads run independent pieces of the pass side by side (members, shards of the batch, tangent
// chunks: passes.cpp, threads.h) or, within a pass that is one piece, whole GEMMs side by side
// (GemmJobs on OpenMP: the slots of an HVP block).
// Every GEMM runs whole and single-threaded, so its result never depends on E, k or the thread
// count: OpenBLAS gives different bits for the same product when it is computed with another thread
// count, cut into blocks, or stacked with other rows (measured: docs/native.md), so stacking the
// tangents of a block into one GEMM would break the exact block/population equalities.
#pragma once

#include <string>
#include <vector>

#include "cpu/common.h"

namespace pyquirk {
namespace cpu {

using sgemm_fn = void (*)(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*, float*, float*,
                          int*);
using dgemm_fn = void (*)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*, double*,
                          double*, int*);

struct BlasFns {
  sgemm_fn sgemm = nullptr;
  dgemm_fn dgemm = nullptr;
  std::string name;                        // what build_info()["blas"] reports
  void (*set_threads)(int) = nullptr;      // the library's openblas_set_num_threads, when found
  int (*get_threads)() = nullptr;
  std::string config;                      // openblas_get_config(), when found
};

const BlasFns& blas();
bool blas_ready();
std::string blas_description();  // provider, library configuration and threading, for build_info
// Installs the GEMMs; looks up the thread controls of the library that holds them (dladdr/dlsym).
void set_blas(sgemm_fn s, dgemm_fn d, std::string name);

// While at least one guard lives, the BLAS runs single-threaded (if its thread count can be set);
// the count it had is restored when the last guard ends. jobs_parallel() tells GemmJobs whether it
// may run GEMMs side by side.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
  static bool jobs_parallel();
};

// Largest dimension or leading dimension a 32-bit-integer BLAS accepts.
constexpr i64 kBlasIntMax = 2147483647;

// Row-major C[M, N] = op(A)[M, K]·op(B)[K, N] + beta·C; op(X) = Xᵀ when trans; lda/ldb/ldc are row
// strides. Sizes fit kBlasIntMax (checked when the pass is planned). K = 0 scales C by beta.
template <class T>
struct Gemm {
  bool ta = false, tb = false;
  i64 M = 0, N = 0, K = 0;
  const T* A = nullptr;
  i64 lda = 0;
  const T* B = nullptr;
  i64 ldb = 0;
  T beta = T(0);
  T* C = nullptr;
  i64 ldc = 0;
};

template <class T>
void gemm(const Gemm<T>& g);

// GEMMs to run side by side. A job is one GEMM, or two that write the same C block in order (the
// second accumulates).
template <class T>
class GemmJobs {
 public:
  void add(const Gemm<T>& g) { push(g, nullptr); }
  void add(const Gemm<T>& g, const Gemm<T>& then) { push(g, &then); }
  void run();

 private:
  struct Job {
    Gemm<T> g[2];
    int n = 0;
    double flops = 0;
  };
  void push(const Gemm<T>& g, const Gemm<T>* then);
  std::vector<Job> jobs_;
};

}  // namespace cpu
}  // namespace pyquirk
