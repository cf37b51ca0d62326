#include "cpu/attack.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/blas.h"
#include "cpu/passes.h"
#include "cpu/threads.h"

namespace pyquirk {
namespace cpu {

namespace {

// Σ a[i]² in double with four running sums, summed as (s0 + s1) + (s2 + s3): the order of the
// Numba kernels' _sq_norm, so an L2 step here has their bits.
template <class T>
double sq_norm(const T* a, i64 n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const i64 n4 = n / 4 * 4;
  for (i64 i = 0; i < n4; i += 4) {
    const double v0 = a[i], v1 = a[i + 1], v2 = a[i + 2], v3 = a[i + 3];
    s0 += v0 * v0, s1 += v1 * v1, s2 += v2 * v2, s3 += v3 * v3;
  }
  for (i64 i = n4; i < n; ++i) s0 += double(a[i]) * double(a[i]);
  return (s0 + s1) + (s2 + s3);
}

// One iteration on a row, in place: steepest step, projection onto the ε-ball around c, clipping.
// The expressions (and min/max argument orders) are those of the Numba kernels steepest_step,
// project_linf and project_l2, so the bits agree.
template <class T>
void advance_row(const AttackArgs<T>& a, T* x, const T* g, const T* c, double alpha, double eps, i64 D) {
  const T lo = a.lo, hi = a.hi;
  if (a.norm == AttackNorm::Linf) {
    const T s = T(alpha), e = T(eps), one = T(1), zero = T(0);
    for (i64 i = 0; i < D; ++i) {
      const T v = x[i] + s * (g[i] > 0 ? one : (g[i] < 0 ? -one : zero));
      x[i] = std::min(std::max(c[i] + std::min(std::max(v - c[i], -e), e), lo), hi);
    }
    return;
  }
  const T s = T(alpha / std::max(std::sqrt(sq_norm(g, D)), a.l2_floor));
  for (i64 i = 0; i < D; ++i) x[i] = (x[i] + g[i] * s) - c[i];  // δ of the stepped row
  const double nrm = std::sqrt(sq_norm(x, D));
  const T r = T(nrm <= eps ? 1.0 : eps / nrm);
  for (i64 i = 0; i < D; ++i) x[i] = std::min(std::max(c[i] + x[i] * r, lo), hi);
}

// The attack margin of a row of logits (float64; a NaN logit wins the max, as in NumPy) and, when it
// beats m_best, the copy of the row's iterate and logits: the Numba kernel track_best.
template <class T>
void track_row(const T* z, std::int64_t y, bool targeted, i64 C, const T* x, i64 D, double& m_best, T* xb, T* zb) {
  const double own = z[y];
  double other = -std::numeric_limits<double>::infinity();
  for (i64 j = 0; j < C; ++j) {
    const double v = z[j];
    if (j != y && (v > other || v != v)) other = v;
  }
  const double m = targeted ? own - other : other - own;
  if (m > m_best) {
    m_best = m;
    std::copy(x, x + D, xb);
    std::copy(z, z + C, zb);
  }
}

// The rows [n0, n0 + n) of member e, for every step. Returns false on a non-finite gradient.
template <class T>
bool run_rows(const NetSpec& net, const AttackArgs<T>& a, i64 e, i64 n0, i64 n, const std::atomic<bool>& failed) {
  const i64 D = net.in_size, C = net.n_outputs, row0 = e * a.N + n0;
  const std::int64_t* labels = a.labels + n0;
  const T* x0 = a.x0 + n0 * D;
  const double *alpha = a.alpha + row0, *eps = a.eps + row0;
  T *x = a.x + row0 * D, *xb = a.x_best + row0 * D, *zb = a.z_best + row0 * C;
  double* mb = a.m_best + row0;
  std::vector<T> z(static_cast<size_t>(n * C)), g(static_cast<size_t>(n * D));
  auto track = [&]() {
    for (i64 i = 0; i < n; ++i)
      track_row(&z[i * C], labels[i], a.targeted, C, x + i * D, D, mb[i], xb + i * D, zb + i * C);
  };
  for (i64 step = 0; step < a.steps; ++step) {
    if (failed.load(std::memory_order_relaxed)) return false;  // another item has failed: stop early
    input_grad_rows<T>(net, a.theta, x, labels, nullptr, n, z.data(), g.data());
    if (step == 0) std::copy(z.begin(), z.end(), zb);  // the best logits start as the first ones
    track();
    if (!all_finite(g.data(), n * D)) return false;
    if (a.targeted)
      for (T& v : g) v = -v;
    for (i64 i = 0; i < n; ++i) advance_row(a, x + i * D, &g[i * D], x0 + i * D, alpha[i], eps[i], D);
  }
  logits_rows<T>(net, a.theta, x, n, z.data());
  std::copy(z.begin(), z.end(), a.z + row0 * C);
  track();
  return true;
}

}  // namespace

template <class T>
bool run_attack(const NetSpec& net, const AttackArgs<T>& a) {
  SingleThreadedBlas blas_guard;
  const int threads = SingleThreadedBlas::jobs_parallel() ? max_threads() : 1;
  const i64 shards = shard_count(net, Pass::InputGrad, a.N, sizeof(T));
  std::atomic<bool> failed{false};
  checked_items(a.E * shards, threads, [&](i64 i) {
    const i64 e = i / shards, j = i % shards, n0 = a.N * j / shards, n1 = a.N * (j + 1) / shards;
    if (!run_rows(net, a, e, n0, n1 - n0, failed)) failed.store(true);
  });
  return !failed.load();
}

template bool run_attack<float>(const NetSpec&, const AttackArgs<float>&);
template bool run_attack<double>(const NetSpec&, const AttackArgs<double>&);

}  // namespace cpu
}  // namespace pyquirk
