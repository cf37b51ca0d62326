#include "cpu/blas.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <type_traits>
#include <utility>

#include "cpu/small_gemm.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <pthread.h>
#endif

namespace pyquirk {
namespace cpu {

namespace {

BlasFns g_blas;

std::mutex g_threads_mutex;
std::atomic<int> g_guards{0};  // live SingleThreadedBlas guards
int g_saved = 0;       // the BLAS thread count before the first guard

// A fork() while another thread is inside a pass must not leave the child with the mutex held or
// with guards that no pass will release.
struct ForkHandlers {
  ForkHandlers() {
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { g_threads_mutex.lock(); }, [] { g_threads_mutex.unlock(); },
                   [] {
                     g_threads_mutex.unlock();
                     g_guards = 0;
                   });
#endif
  }
} g_fork_handlers;

// The thread controls of the shared library holding `fn` (SciPy's cython_blas module links its
// OpenBLAS; dlsym on that module's handle searches its dependencies too).
void find_thread_controls(void* fn, BlasFns& b) {
  b.set_threads = nullptr;
  b.get_threads = nullptr;
  b.config.clear();
#if defined(__unix__) || defined(__APPLE__)
  Dl_info info;
  if (!dladdr(fn, &info) || !info.dli_fname) return;
  void* h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return;
  const char* names[][2] = {{"scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"},
                            {"openblas_set_num_threads", "openblas_get_num_threads"}};
  for (auto& n : names) {
    void* s = dlsym(h, n[0]);
    void* g = dlsym(h, n[1]);
    if (s && g) {
      b.set_threads = reinterpret_cast<void (*)(int)>(s);
      b.get_threads = reinterpret_cast<int (*)()>(g);
      break;
    }
  }
  for (const char* name : {"scipy_openblas_get_config", "openblas_get_config"}) {
    if (void* f = dlsym(h, name)) {
      b.config = reinterpret_cast<char* (*)()>(f)();
      break;
    }
  }
  dlclose(h);  // the library stays loaded: SciPy holds it
#else
  (void)fn;
#endif
}

inline void call(const Gemm<float>& g, char* ta, char* tb, int* m, int* n, int* k, int* la, int* lb, int* lc) {
  float alpha = 1.0f, beta = g.beta;
  g_blas.sgemm(tb, ta, n, m, k, &alpha, const_cast<float*>(g.B), lb, const_cast<float*>(g.A), la, &beta, g.C, lc);
}

inline void call(const Gemm<double>& g, char* ta, char* tb, int* m, int* n, int* k, int* la, int* lb, int* lc) {
  double alpha = 1.0, beta = g.beta;
  g_blas.dgemm(tb, ta, n, m, k, &alpha, const_cast<double*>(g.B), lb, const_cast<double*>(g.A), la, &beta, g.C, lc);
}

// Below this many flops in all, the jobs run on the calling thread (a fork/join would cost more).
constexpr double kParallelFlops = 2e6;

}  // namespace

const BlasFns& blas() { return g_blas; }

std::string blas_description() {
  if (!blas_ready()) return "";
  std::string d = g_blas.name;
  if (small_gemm_available())
    d += "; float32 products with K <= " + std::to_string(kSmallGemmMaxK) + " and N <= " +
         std::to_string(kSmallGemmMaxN) + " on pyquirk's AVX2 small-GEMM kernel";
  if (!g_blas.config.empty()) d += "; " + g_blas.config;
  d += g_blas.set_threads ? "; held to one thread per GEMM during passes, which spread over pyquirk's threads"
                          : "; its own threading (thread count not settable), GEMMs one after another";
  return d;
}

bool blas_ready() { return g_blas.sgemm != nullptr && g_blas.dgemm != nullptr; }

void set_blas(sgemm_fn s, dgemm_fn d, std::string name) {
  std::lock_guard<std::mutex> lock(g_threads_mutex);
  BlasFns b;
  b.sgemm = s;
  b.dgemm = d;
  b.name = std::move(name);
  find_thread_controls(reinterpret_cast<void*>(s), b);
  if (g_guards > 0 && g_blas.set_threads) g_blas.set_threads(g_saved);  // hand the old library back
  g_guards = 0;
  g_blas = std::move(b);
}

SingleThreadedBlas::SingleThreadedBlas() {
  std::lock_guard<std::mutex> lock(g_threads_mutex);
  if (g_guards++ == 0 && g_blas.set_threads) {
    g_saved = g_blas.get_threads();
    if (g_saved != 1) g_blas.set_threads(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  std::lock_guard<std::mutex> lock(g_threads_mutex);
  if (g_guards > 0 && --g_guards == 0 && g_blas.set_threads && g_saved != 1) g_blas.set_threads(g_saved);
}

bool SingleThreadedBlas::jobs_parallel() {
  // Without thread controls the BLAS threads itself; GEMMs then run one after another.
  return g_blas.set_threads != nullptr && g_guards > 0;
}

template <class T>
void gemm(const Gemm<T>& g) {
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    for (i64 i = 0; i < g.M; ++i)
      for (i64 j = 0; j < g.N; ++j) g.C[i * g.ldc + j] = g.beta == T(0) ? T(0) : g.beta * g.C[i * g.ldc + j];
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (small_gemm_shape(g.N, g.K) && small_gemm_available()) {
      small_sgemm(g.ta, g.tb, g.M, g.N, g.K, g.A, g.lda, g.B, g.ldb, g.beta, g.C, g.ldc);
      return;
    }
  }
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands, keep the flags.
  char ta = g.ta ? 'T' : 'N', tb = g.tb ? 'T' : 'N';
  int m = static_cast<int>(g.M), n = static_cast<int>(g.N), k = static_cast<int>(g.K);
  int la = static_cast<int>(g.lda), lb = static_cast<int>(g.ldb), lc = static_cast<int>(g.ldc);
  call(g, &ta, &tb, &m, &n, &k, &la, &lb, &lc);
}

template <class T>
void GemmJobs<T>::push(const Gemm<T>& g, const Gemm<T>* then) {
  Job j;
  j.g[0] = g;
  j.n = 1;
  if (then) j.g[j.n++] = *then;
  j.flops = 2.0 * g.M * g.N * (g.K + (then ? then->K : 0));
  jobs_.push_back(j);
}

template <class T>
void GemmJobs<T>::run() {
  // Largest first, so dynamic scheduling ends balanced.
  std::stable_sort(jobs_.begin(), jobs_.end(), [](const Job& a, const Job& b) { return a.flops > b.flops; });
  const i64 n = static_cast<i64>(jobs_.size());
  double total = 0;
  for (const Job& j : jobs_) total += j.flops;
  const bool par = n > 1 && total >= kParallelFlops && SingleThreadedBlas::jobs_parallel() && fork_ok(kParallelWork + 1);
  const auto job = [this](i64 j) {
    for (int i = 0; i < jobs_[j].n; ++i) gemm(jobs_[j].g[i]);
  };
  if (par) {  // (decided outside the region: parallel_for in common.h says why)
#pragma omp parallel for schedule(dynamic, 1)
    for (i64 j = 0; j < n; ++j) job(j);
  } else {
    for (i64 j = 0; j < n; ++j) job(j);
  }
  jobs_.clear();
}

template void gemm<float>(const Gemm<float>&);
template void gemm<double>(const Gemm<double>&);
template class GemmJobs<float>;
template class GemmJobs<double>;

}  // namespace cpu
}  // namespace pyquirk
