#include "cpu/passes.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/activations.h"
#include "cpu/blas.h"
#include "cpu/conv.h"
#include "cpu/dense.h"
#include "cpu/gate.h"
#include "cpu/tangents.h"
#include "cpu/loss.h"
#include "cpu/pool.h"
#include "cpu/small_gemm.h"
#include "cpu/threads.h"
#include "cpu/workspace.h"

namespace pyquirk {
namespace cpu {

Arena& thread_arena() {
  static thread_local Arena arena;
  return arena;
}

Arena& sum_arena() {
  static thread_local Arena arena;
  return arena;
}

namespace {

std::atomic<size_t> g_tangent_budget{size_t(1) << 30};

// Slots of a unit's input and output: the input carries tangents only after the first parameter layer.
inline i64 slots_in(const NetSpec& net, size_t u, i64 S) { return static_cast<int>(u) > net.first_param ? S : 1; }
inline i64 slots_out(const NetSpec& net, size_t u, i64 S) { return static_cast<int>(u) >= net.first_param ? S : 1; }

inline bool has_backward(Pass p) { return p != Pass::Logits && p != Pass::Loss; }

// Buffers of one member pass, carved from one block (Carver); S = 1 + tangents.
template <class T>
struct Buffers {
  std::vector<T*> Z, A, cols;
  std::vector<std::int32_t*> idx;
  T *g0 = nullptr, *g1 = nullptr, *tmpA = nullptr, *tmpB = nullptr;
};

template <class T>
Buffers<T> carve(const NetSpec& net, Pass pass, i64 N, i64 S, Carver& c) {
  const size_t U = net.units.size();
  Buffers<T> b;
  b.Z.assign(U, nullptr), b.A.assign(U, nullptr), b.cols.assign(U, nullptr), b.idx.assign(U, nullptr);
  i64 ga = 0, sa = 0, sb = 0;
  const bool back = has_backward(pass);
  for (size_t u = 0; u < U; ++u) {
    const Unit& un = net.units[u];
    const i64 Si = slots_in(net, u, S), So = slots_out(net, u, S);
    b.A[u] = c.take<T>(N * So * un.fout);
    b.Z[u] = un.has_params() && un.has_act() ? c.take<T>(N * So * un.fout) : b.A[u];
    if (un.kind == UnitKind::MaxPool) b.idx[u] = c.take<std::int32_t>(N * un.cin * un.positions());
    if (un.kind == UnitKind::Conv) {
      b.cols[u] = c.take<T>(un.ck * Si * N * un.positions());
      sa = std::max(sa, conv_scratch_a(un, N, S));
      sb = std::max(sb, conv_scratch_b(un, N, S));
    }
    ga = std::max({ga, N * So * un.fout, N * Si * un.fin});
  }
  b.tmpA = c.take<T>(sa);
  b.tmpB = c.take<T>(sb);
  if (back) {
    b.g0 = c.take<T>(ga);
    b.g1 = c.take<T>(ga);
  }
  return b;
}

template <class T>
size_t carve_bytes(const NetSpec& net, Pass pass, i64 N, i64 S) {
  Carver c(nullptr);
  carve<T>(net, pass, N, S, c);
  return c.bytes();
}

size_t bytes_for(const NetSpec& net, Pass pass, i64 N, i64 S, size_t itemsize) {
  return itemsize == 4 ? carve_bytes<float>(net, pass, N, S) : carve_bytes<double>(net, pass, N, S);
}

// Whether every GEMM of the net's passes in this dtype runs on the small-GEMM kernel: float32, and
// every parameter unit a Dense layer whose forward and input-gradient products have its shapes.
bool small_kernel_net(const NetSpec& net, size_t itemsize) {
  if (itemsize != sizeof(float) || !small_gemm_available()) return false;
  for (const Unit& u : net.units)
    if (u.has_params() &&
        (u.kind != UnitKind::Dense || !small_gemm_shape(u.cout, u.ck) || !small_gemm_shape(u.ck, u.cout)))
      return false;
  return true;
}

// An item's scratch on a small-kernel net: about 3 MiB keeps its slot arrays near the core (k = 16
// on MLP 40-100-100-10 in chunks of 4 tangents: 0.95 of the time in one chunk, docs/native.md §2).
constexpr size_t kSmallKernelItemBytes = size_t(3) << 20;

// Tangents per chunk: all k unless their scratch would pass the tangent budget (or, on a net that
// runs wholly on the small-GEMM kernel, kSmallKernelItemBytes).
i64 tangent_chunk(const NetSpec& net, i64 N, i64 k, size_t itemsize) {
  const size_t one = bytes_for(net, Pass::Hvp, N, 1, itemsize);
  const size_t per = bytes_for(net, Pass::Hvp, N, 2, itemsize) - one;
  size_t budget = g_tangent_budget.load();
  if (small_kernel_net(net, itemsize)) budget = std::min(budget, kSmallKernelItemBytes);
  if (per == 0) return k;
  const size_t fit = budget > one ? (budget - one) / per : 0;
  return std::max<i64>(1, std::min<i64>(k, static_cast<i64>(fit)));
}

// ---------------------------------------------------------------------------------- one member
template <class T>
const T* forward(const NetSpec& net, const Buffers<T>& b, const T* theta, const Tangents<T>& dp, const T* X, i64 N,
                 i64 S) {
  const T* a = X;
  for (size_t u = 0; u < net.units.size(); ++u) {
    const Unit& un = net.units[u];
    const i64 Si = slots_in(net, u, S), So = slots_out(net, u, S);
    const T* db = So > 1 && un.has_params() ? dp.at(1, un.b_off) : nullptr;
    switch (un.kind) {
      case UnitKind::Dense:
        dense_forward(un, theta + un.w_off, dp, a, N, Si, So, b.Z[u]);
        bias_act_forward(un.act, un.slope, b.Z[u], b.A[u], N, So, un.cout, i64(1), theta + un.b_off, db, dp.P);
        break;
      case UnitKind::Conv:
        conv_forward(un, theta + un.w_off, dp, a, N, Si, So, b.cols[u], b.tmpA, b.Z[u]);
        bias_act_forward(un.act, un.slope, b.Z[u], b.A[u], N, So, un.cout, un.positions(), theta + un.b_off, db,
                         dp.P);
        break;
      case UnitKind::Gate:
        gate_forward(un, theta + un.w_off, dp, a, N, Si, So, b.Z[u]);
        bias_act_forward<T>(un.act, un.slope, b.Z[u], b.A[u], N, So, un.cout, un.positions(), nullptr, nullptr, 0);
        break;
      case UnitKind::MaxPool:
      case UnitKind::AvgPool:
        pool_forward(un, a, N, So, b.A[u], b.idx[u]);
        break;
      case UnitKind::Act:  // a standalone activation: its input plays z, nothing is written to it
        bias_act_forward<T>(un.act, un.slope, const_cast<T*>(a), b.A[u], N, So, un.fout, i64(1), nullptr, nullptr, 0);
        break;
    }
    a = b.A[u];
  }
  return a;
}

// Whether the backward of unit u reads slot 0 (the primal value) of the gradient at its output.
// Every pass but the HVP needs it everywhere. The HVP's results are tangent slots only, which read
// the primal gradient through an R-term: a Dense unit whose input has tangents (G_0·dW_s,
// G_0ᵀ·A_s), an activation with f'' ≠ 0 (g·f''·dz_s), or a unit below that needs it (through
// G_0·W). Conv, Gate and pools are taken to need it. On a ReLU MLP this drops the second
// parameter layer's G_0·W, one of its eight GEMMs (JAX's jvp(grad) drops it as dead code too).
std::vector<char> primal_grad_needed(const NetSpec& net, i64 S, i64 first_slot) {
  std::vector<char> need(net.units.size(), 1);
  if (S == 1 || first_slot == 0) return need;
  bool below = false;  // an HVP forms no input gradient
  for (size_t u = 0; u < net.units.size(); ++u) {
    const Unit& un = net.units[u];
    const bool d2 = un.has_act() && math::has_d2(un.act);
    if (un.kind == UnitKind::Dense) below = below || slots_in(net, u, S) > 1 || d2;
    else if (un.kind == UnitKind::Act) below = below || d2;
    else below = true;
    need[u] = below;
  }
  return need;
}

template <class T>
void backward(const NetSpec& net, const Buffers<T>& b, const T* theta, const Tangents<T>& dp, const T* X, i64 N,
              i64 S, Pass pass, T* G, const GradSink<T>& sink, T* gx) {
  const std::vector<char> need = primal_grad_needed(net, S, sink.base ? sink.first_slot : 0);
  for (int u = static_cast<int>(net.units.size()) - 1; u >= 0; --u) {
    const Unit& un = net.units[u];
    const i64 Si = slots_in(net, u, S), So = slots_out(net, u, S);
    const bool need_in = pass == Pass::InputGrad || u > net.first_param;
    const T* a_in = u == 0 ? X : b.A[u - 1];
    T* Gin = !need_in ? nullptr : u == 0 ? gx : (G == b.g0 ? b.g1 : b.g0);
    const i64 out_from = need[u] ? 0 : 1, in_from = u == 0 || need[u - 1] ? 0 : 1;  // first slot written
    switch (un.kind) {
      case UnitKind::Gate:
        if (un.has_act()) act_backward(un.act, un.slope, b.Z[u], G, G, N, So, un.fout, i64(0));
        gate_backward(un, theta + un.w_off, dp, G, a_in, N, Si, So, sink, Gin);
        break;
      case UnitKind::Dense:
      case UnitKind::Conv:
        if (un.has_act()) act_backward(un.act, un.slope, b.Z[u], G, G, N, So, un.fout, out_from);
        if (sink.base)
          bias_grad(G, N, So, un.cout, un.positions(), sink.first_slot, sink.slot(sink.first_slot, un.b_off),
                    sink.stride);
        if (un.kind == UnitKind::Dense)
          dense_backward(un, theta + un.w_off, dp, G, a_in, N, Si, So, sink, Gin, in_from);
        else
          conv_backward(un, theta + un.w_off, dp, G, b.cols[u], N, Si, So, sink, b.tmpA, b.tmpB, Gin);
        break;
      case UnitKind::MaxPool:
      case UnitKind::AvgPool:
        if (Gin) pool_backward(un, G, N, So, Gin, b.idx[u]);
        break;
      case UnitKind::Act:
        if (Gin) act_backward(un.act, un.slope, a_in, G, Gin, N, So, un.fout, in_from);
        break;
    }
    if (!need_in) break;
    G = Gin;
  }
}

}  // namespace

size_t set_tangent_budget(size_t bytes) { return g_tangent_budget.exchange(bytes); }

void check_pass_size(const NetSpec& net, Pass pass, i64 N, i64 k, size_t itemsize) {
  // The largest GEMM dimensions and leading dimensions of any unit, for the chunk the pass would use.
  const i64 S = pass == Pass::Hvp ? 1 + tangent_chunk(net, N, k, itemsize) : 1;
  i64 worst = 0;
  for (const Unit& u : net.units) {
    const i64 P = u.positions();
    worst = std::max({worst, N * S, S * u.fin, S * u.fout, S * u.ck, S * N * P, u.ck, u.ih * u.iw});
  }
  if (worst > kBlasIntMax)
    throw std::invalid_argument("batch too large for the 32-bit BLAS interface (a GEMM dimension of " +
                                std::to_string(worst) + "); split it into smaller batches");
}

size_t pass_workspace_bytes(const NetSpec& net, Pass pass, i64 N, i64 k, size_t itemsize) {
  const i64 S = pass == Pass::Hvp ? 1 + tangent_chunk(net, N, k, itemsize) : 1;
  return bytes_for(net, pass, N, S, itemsize);
}

namespace {

// A piece of a pass that one thread runs start to finish: member e, samples [n0, n1) (a shard of
// the batch), tangents [t0, t1) (HVP). Its parameter gradients go to `pgrad` (rows of P: one for
// grad/vjp, one per tangent for the HVP, first row = tangent t0).
struct Item {
  i64 e = 0, shard = 0, n0 = 0, n1 = 0, t0 = 0, t1 = 0;
};

template <class T>
Buffers<T> carve_on_arena(const NetSpec& net, Pass pass, i64 N, i64 S) {
  Carver carver(thread_arena().get(carve_bytes<T>(net, pass, N, S)));
  return carve<T>(net, pass, N, S, carver);
}

// The inputs whose NaN/inf scan (PassArgs::check_finite) failed, as bits; named in this order.
constexpr const char* kScanned[] = {"theta", "X", "y", "V", "g"};

// The scan of what item `it` reads: θ of its member (by the member's first item), its samples of X,
// MSE targets and cotangents (by the first tangent chunk), its tangents (by the first shard). An
// array shared by all members (E of 1) is scanned by member 0's items only. Returns kScanned bits.
template <class T>
unsigned scan_item(const NetSpec& net, const PassArgs<T>& a, const Item& it) {
  const i64 P = net.n_params, C = net.n_outputs, n = it.n1 - it.n0;
  const auto mine = [&](i64 Em) { return Em > 1 || it.e == 0; };
  const auto rows = [&](i64 Em, i64 width) { return ((Em > 1 ? it.e : 0) * a.N + it.n0) * width; };
  const bool first_chunk = it.t0 == 0, first_shard = it.shard == 0;
  unsigned bad = 0;
  if (first_shard && first_chunk && !all_finite(a.theta + it.e * P, P)) bad |= 1u;
  if (first_chunk && mine(a.Ex) && !all_finite(a.X + rows(a.Ex, net.in_size), n * net.in_size)) bad |= 2u;
  if (a.targets && first_chunk && mine(a.Ey) && !all_finite(a.targets + rows(a.Ey, C), n * C)) bad |= 4u;
  if (a.V && first_shard && mine(a.Ev) &&
      !all_finite(a.V + ((a.Ev > 1 ? it.e : 0) * a.k + it.t0) * P, (it.t1 - it.t0) * P))
    bad |= 8u;
  if (a.cotangent && first_chunk && mine(a.Eg) && !all_finite(a.cotangent + rows(a.Eg, C), n * C)) bad |= 16u;
  return bad;
}

template <class T>
void run_item(const NetSpec& net, Pass pass, const PassArgs<T>& a, const Item& it, T* pgrad) {
  const i64 N = it.n1 - it.n0, P = net.n_params, C = net.n_outputs, in = net.in_size;
  const i64 kk = it.t1 - it.t0;
  const i64 S = pass == Pass::Hvp ? 1 + kk : 1;
  const i64 e = it.e, row = e * a.N + it.n0;  // first sample of the shard in [E, N] outputs
  const i64 ye = (a.Ey == 1 ? 0 : e) * a.N + it.n0;
  const std::int64_t* labels = a.labels ? a.labels + ye : nullptr;
  const T* targets = a.targets ? a.targets + ye * C : nullptr;
  const T* theta = a.theta + e * P;
  const T* X = a.X + ((a.Ex == 1 ? 0 : e) * a.N + it.n0) * in;
  if (pass == Pass::Logits) return logits_rows(net, theta, X, N, a.logits + row * C);
  if (pass == Pass::InputGrad)
    return input_grad_rows(net, theta, X, labels, targets, N, a.logits + row * C, a.gx + row * in);
  const Buffers<T> b = carve_on_arena<T>(net, pass, N, S);
  const T scale = T(1.0 / static_cast<double>(a.N));  // the mean loss is over the whole batch, whatever the shard
  const Tangents<T> none{nullptr, P};
  switch (pass) {
    case Pass::Loss: {
      const T* L = forward<T>(net, b, theta, none, X, N, 1);
      loss_stage<T>(net.loss, L, labels, targets, N, 1, C, scale, a.losses + row, nullptr);
      break;
    }
    case Pass::Grad: {
      const T* L = forward<T>(net, b, theta, none, X, N, 1);
      loss_stage<T>(net.loss, L, labels, targets, N, 1, C, scale, a.losses + row, b.g0);
      backward<T>(net, b, theta, none, X, N, 1, pass, b.g0, GradSink<T>{pgrad, 0, 0}, nullptr);
      break;
    }
    case Pass::Vjp: {
      forward<T>(net, b, theta, none, X, N, 1);
      const T* g = a.cotangent + ((a.Eg == 1 ? 0 : e) * a.N + it.n0) * C;
      std::copy(g, g + N * C, b.g0);
      backward<T>(net, b, theta, none, X, N, 1, pass, b.g0, GradSink<T>{pgrad, 0, 0}, nullptr);
      break;
    }
    case Pass::Hvp: {
      const Tangents<T> dp{a.V + ((a.Ev == 1 ? 0 : e) * a.k + it.t0) * P, P};
      const T* L = forward<T>(net, b, theta, dp, X, N, S);
      loss_stage<T>(net.loss, L, labels, targets, N, S, C, scale, nullptr, b.g0);
      backward<T>(net, b, theta, dp, X, N, S, pass, b.g0, GradSink<T>{pgrad, P, 1}, nullptr);
      break;
    }
    default:
      break;
  }
}

}  // namespace

// Shards of the batch, by a rule on N, the net, the pass and the dtype alone (so every member,
// tangent chunk and thread count sees the same sums): a power of two, each shard at least 400
// samples and 8 MFLOP of forward GEMMs (every GEMM of a shard repacks its shared operand, the
// weights, so shards stay large; the members, tangent chunks and slots give the rest of the
// parallelism). An HVP on a net that runs wholly on the small-GEMM kernel takes shards a quarter of
// that size: the kernel has no cache blocking of its own, and the HVP's slot layout doubles the
// activations, so smaller shards keep an item's operands nearer the core (docs/native.md §3).
i64 shard_count(const NetSpec& net, Pass pass, i64 N, size_t itemsize) {
  const double scale = pass == Pass::Hvp && small_kernel_net(net, itemsize) ? 0.25 : 1.0;
  const double min_size = scale * std::max(400.0, 8e6 / std::max(net.flops_per_sample, 1.0));
  i64 n = 1;
  while (n < 16 && static_cast<double>(N) >= 2.0 * n * min_size) n *= 2;
  return n;
}

template <class T>
void logits_rows(const NetSpec& net, const T* theta, const T* X, i64 n, T* logits) {
  const Buffers<T> b = carve_on_arena<T>(net, Pass::Logits, n, 1);
  const T* L = forward<T>(net, b, theta, Tangents<T>{nullptr, net.n_params}, X, n, 1);
  std::copy(L, L + n * net.n_outputs, logits);
}

template <class T>
void input_grad_rows(const NetSpec& net, const T* theta, const T* X, const std::int64_t* labels, const T* targets,
                     i64 n, T* logits, T* gx) {
  const Buffers<T> b = carve_on_arena<T>(net, Pass::InputGrad, n, 1);
  const Tangents<T> none{nullptr, net.n_params};
  const i64 C = net.n_outputs;
  const T* L = forward<T>(net, b, theta, none, X, n, 1);
  std::copy(L, L + n * C, logits);
  loss_stage<T>(net.loss, L, labels, targets, n, 1, C, T(1), nullptr, b.g0);  // each sample's own loss
  backward<T>(net, b, theta, none, X, n, 1, Pass::InputGrad, b.g0, GradSink<T>{}, gx);
}

template <class T>
void run_pass(const NetSpec& net, Pass pass, const PassArgs<T>& a) {
  SingleThreadedBlas blas_guard;
  const int threads = SingleThreadedBlas::jobs_parallel() ? max_threads() : 1;
  const i64 P = net.n_params, nshards = shard_count(net, pass, a.N, sizeof(T));
  // Tangent chunks per (member, shard): as few as the scratch budget allows, but enough to keep every
  // thread busy when members and shards alone do not, and then as many as make the items a multiple
  // of the team (each chunk repeats the primal pass; a lone last item would leave threads waiting).
  i64 kc = 0, rows = 1;
  if (pass == Pass::Hvp) {
    rows = a.k;
    const auto ceil_div = [](i64 x, i64 y) { return (x + y - 1) / y; };
    const i64 busy = a.E * nshards;
    i64 chunks = ceil_div(a.k, tangent_chunk(net, ceil_div(a.N, nshards), a.k, sizeof(T)));
    chunks = std::max(chunks, ceil_div(threads, busy));
    chunks = std::min(a.k, ceil_div(ceil_div(busy * chunks, threads) * threads, busy));
    kc = ceil_div(a.k, chunks);
  }
  std::vector<Item> items;
  for (i64 e = 0; e < a.E; ++e)
    for (i64 j = 0; j < nshards; ++j)
      for (i64 t0 = 0; t0 < rows; t0 += (pass == Pass::Hvp ? kc : rows)) {
        Item it;
        it.e = e, it.shard = j, it.n0 = a.N * j / nshards, it.n1 = a.N * (j + 1) / nshards;
        it.t0 = pass == Pass::Hvp ? t0 : 0;
        it.t1 = pass == Pass::Hvp ? std::min(a.k, t0 + kc) : 0;
        items.push_back(it);
      }
  // Parameter gradients: shard 0 writes the output, shard j > 0 its own copy, summed in shard order.
  T* pout = pass == Pass::Hvp ? a.hvp : a.grad;
  // (kept between calls, like the scratch, so a repeated pass does not page-fault it in again)
  T* partial = pout && nshards > 1
                   ? reinterpret_cast<T*>(sum_arena().get(sizeof(T) * static_cast<size_t>((nshards - 1) * a.E * rows * P)))
                   : nullptr;
  auto pgrad = [&](const Item& it) -> T* {
    if (!pout) return nullptr;
    T* base = it.shard == 0 ? pout : partial + (it.shard - 1) * a.E * rows * P;
    return base + (it.e * rows + it.t0) * P;
  };
  std::atomic<unsigned> bad{0};
  checked_items(static_cast<i64>(items.size()), threads, [&](i64 i) {
    const unsigned b = a.check_finite ? scan_item(net, a, items[i]) : 0u;
    if (b) bad.fetch_or(b);  // (the results are dropped: no need to compute them)
    else run_item(net, pass, a, items[i], pgrad(items[i]));
  });
  for (unsigned i = 0, b = bad.load(); b; ++i)
    if (b & (1u << i)) throw std::invalid_argument(std::string(kScanned[i]) + " contains NaN or infinite values");
  // Shards 1.. are added to shard 0 in order, in blocks spread over the team.
  const i64 total = a.E * rows * P, block = 1 << 18;
  if (pout && nshards > 1)
    parallel_items((total + block - 1) / block, threads, [&](i64 b) {
      const i64 i0 = b * block, i1 = std::min(total, i0 + block);
      for (i64 j = 1; j < nshards; ++j) {
        const T* src = partial + (j - 1) * total;
        for (i64 i = i0; i < i1; ++i) pout[i] += src[i];
      }
    });
}

#define PYQUIRK_PASSES(T)                                                                                  \
  template void run_pass<T>(const NetSpec&, Pass, const PassArgs<T>&);                                     \
  template void logits_rows<T>(const NetSpec&, const T*, const T*, i64, T*);                               \
  template void input_grad_rows<T>(const NetSpec&, const T*, const T*, const std::int64_t*, const T*, i64, T*, T*);
PYQUIRK_PASSES(float)
PYQUIRK_PASSES(double)
#undef PYQUIRK_PASSES

}  // namespace cpu
}  // namespace pyquirk
