"""pyquirk.hessian: the curvature operator, eigensolvers, trace and density estimators, exact mode.

Oracles: ``numpy.linalg.eigh`` / ``scipy.linalg.eigh`` of the full Hessian, PyTorch's
``torch.autograd.functional.hessian`` on copied weights, and direct formulas (the GGN of a linear
model is its Hessian; PyHessian's ``density_generate`` transcribed). Tolerances: ``tests/_tol.py``;
the few estimator-specific bounds are named constants below.
"""
import numpy as np
import pytest

from _tol import assert_close, rel_err, rtol
from conftest import require_oracle
from nets import problem
from pyquirk.hessian import (Curvature, DenseOperator, check_estimators, exact_spectrum, full_hessian,
                             hutchinson, hutchpp, lanczos, power_iteration, saddle_index, slq)
from pyquirk.hessian.density import _gauss, _lanczos_runs, index_bracket, smooth
from pyquirk.nn import Dense, Net, Tanh
from pyquirk.results import Result

#: issue 4 acceptance: top-5/bottom-5 eigenvalues against eigh, float64
EIG_RTOL = 1e-8


def mlp_problem(hidden=(30, 30), n_in=20, n_out=5, n=64, seed=0, loss="ce", scale=1.0):
    """A random tanh MLP (float64) with P up to ~2000, random data."""
    layers = []
    for h in hidden:
        layers += [Dense(h), Tanh()]
    net = Net(layers + [Dense(n_out)], input_shape=(n_in,), loss=loss)
    rng = np.random.default_rng(seed)
    theta = net.init(seed, dtype=np.float64) * scale + 0.05 * rng.standard_normal(net.n_params)
    X = rng.standard_normal((n, n_in))
    y = rng.integers(0, n_out, n)
    return net, theta, X, y


@pytest.fixture(scope="module")
def mid():
    """P = 1715 (≤ 2000), its curvature operator and exact eigenvalues."""
    net, theta, X, y = mlp_problem()
    curv = Curvature(net, theta, (X, y), batch_size=24)
    H = full_hessian(curv)
    return net, theta, X, y, curv, np.linalg.eigvalsh(0.5 * (H + H.T))


@pytest.fixture(scope="module")
def small():
    """P = 292, negative curvature present (random θ), exact spectrum."""
    net, theta, X, y = mlp_problem(hidden=(12, 12), n_in=6, n_out=4, n=120, seed=3)
    curv = Curvature(net, theta, (X, y))
    return curv, exact_spectrum(curv)


# ------------------------------------------------------------------------------ the operator
@pytest.mark.parametrize("name", ["mlp-tanh", "mlp-relu", "mlp-mse", "cnn1d-maxpool", "cnn2d-pools"])
def test_batched_hvp_equals_single_batch(name):
    """Size-weighted batches: batch sizes 7, 64 and N all give the single-batch HVP of the mean loss."""
    net, theta, X, y = problem(name, n=150, seed=1)
    V = np.random.default_rng(2).standard_normal((4, net.n_params))
    ref = net.hvp(theta, X, y, V)
    for bs in (7, 64, 150):
        got = Curvature(net, theta, (X, y), batch_size=bs).matmat(V)
        assert_close(got, ref, "exact", what=f"{name} batch_size={bs}")
    # the anchors' bug, for contrast: an unweighted mean over batches (150 = 21·7 + 3) is wrong
    naive = np.mean([net.hvp(theta, X[s:s + 7], y[s:s + 7], V) for s in range(0, 150, 7)], axis=0)
    assert rel_err(naive, ref) > 1e-3


def test_hvp_counts_and_tangent_chunks():
    net, theta, X, y = problem("mlp-tanh", n=30)
    curv = Curvature(net, theta, (X, y), batch_size=10, max_tangents=2)
    V = np.random.default_rng(0).standard_normal((5, net.n_params))
    out = curv.matmat(V)
    assert curv.counts["hvps"] == 5 and curv.counts["hvp_calls"] == 3 * 3   # 3 chunks × 3 batches
    assert_close(out, net.hvp(theta, X, y, V), "exact")
    assert_close(curv.matvec(V[0]), out[0], "exact")
    lin = curv.as_linear_operator()
    assert_close(lin @ V[1], out[1], "exact")


@pytest.mark.parametrize("params", ["weights", ["2"], ["0.weight", "4.bias"]])
def test_parameter_selection_is_the_hessian_block(params):
    net, theta, X, y = problem("mlp-tanh", n=40)
    full = full_hessian(Curvature(net, theta, (X, y)))
    curv = Curvature(net, theta, (X, y), params=params)
    idx = np.flatnonzero(net.param_mask(params))
    assert curv.dim == len(idx) and np.array_equal(curv.index, idx)
    assert_close(full_hessian(curv), full[np.ix_(idx, idx)], "exact", what=str(params))
    sem = curv.semantics()
    assert sem["params"] == (params if isinstance(params, str) else list(params))
    assert sem["dim"] == len(idx) and "size-weighted" in sem["batch_weighting"]


def test_dataset_object_is_its_training_split():
    from types import SimpleNamespace
    net, theta, X, y = problem("mlp-tanh", n=20)
    ds = SimpleNamespace(X_train=X, y_train=y, X_test=X[:2], y_test=y[:2])
    V = np.eye(net.n_params)[:3]
    assert_close(Curvature(net, theta, ds).matmat(V), net.hvp(theta, X, y, V), "exact")


def test_weight_decay_adds_identity_and_l2_term():
    net, theta, X, y = problem("mlp-tanh", n=20)
    a, b = Curvature(net, theta, (X, y)), Curvature(net, theta, (X, y), weight_decay=0.3)
    V = np.random.default_rng(0).standard_normal((2, net.n_params))
    assert_close(b.matmat(V), a.matmat(V) + 0.3 * V, "exact")
    (la, ga), (lb, gb) = a.loss_and_grad(), b.loss_and_grad()
    assert_close(lb, la + 0.15 * theta @ theta, "exact")
    assert_close(gb, ga + 0.3 * theta, "exact")
    assert "0.3" in b.semantics()["objective"]


# ------------------------------------------------------------------------------ oracles
@pytest.mark.parametrize("name", ["mlp-tanh", "mlp-gelu", "mlp-mse", "cnn1d-maxpool"])
def test_full_hessian_equals_torch_autograd_hessian(name):
    torch = require_oracle("torch")
    from pyquirk.interop.torch import to_torch, torch_loss_fn, unflatten_torch
    net, theta, X, y = problem(name, n=23, seed=4)
    H = full_hessian(Curvature(net, theta, (X, y), batch_size=7), block_size=50)
    model, loss_fn = to_torch(net, theta), torch_loss_fn(net)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def f(t):
        return loss_fn(torch.func.functional_call(model, unflatten_torch(net, t), (Xt,)), yt)

    Ht = torch.autograd.functional.hessian(f, torch.from_numpy(theta)).numpy()
    assert_close(H, Ht, "torch", np.float64, what=f"{name} full Hessian")


def test_ggn_of_a_linear_model_is_its_hessian():
    net = Net([Dense(4)], input_shape=(6,))
    rng = np.random.default_rng(0)
    theta, X, y = rng.standard_normal(net.n_params), rng.standard_normal((30, 6)), rng.integers(0, 4, 30)
    H = full_hessian(Curvature(net, theta, (X, y)))
    G = full_hessian(Curvature(net, theta, (X, y), kind="ggn", batch_size=8))
    assert_close(G, H, "exact")


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_ggn_equals_jacobian_formula(loss):
    """G = (1/N) Σ_n J_nᵀ H_ℓ J_n with J from torch.func.jacrev and H_ℓ written out."""
    torch = require_oracle("torch")
    from pyquirk.interop.torch import to_torch, unflatten_torch
    net, theta, X, y = mlp_problem(hidden=(5,), n_in=3, n_out=3, n=11, seed=1, loss=loss)
    G = full_hessian(Curvature(net, theta, (X, y), kind="ggn", batch_size=4))
    model, Xt = to_torch(net, theta), torch.from_numpy(X)
    J = torch.func.jacrev(lambda t: torch.func.functional_call(model, unflatten_torch(net, t), (Xt,)))(
        torch.from_numpy(theta)).numpy()                                  # [N, C, P]
    z = net.logits(theta, X)
    if loss == "ce":
        s = np.exp(z - z.max(1, keepdims=True))
        s /= s.sum(1, keepdims=True)
        HL = np.stack([np.diag(si) - np.outer(si, si) for si in s])
    else:
        HL = np.broadcast_to(2.0 / z.shape[1] * np.eye(z.shape[1]), (len(z),) + (z.shape[1],) * 2)
    ref = np.einsum("ncp,ncd,ndq->pq", J, HL, J) / len(X)
    assert_close(G, ref, "torch", np.float64, what=f"GGN {loss}")
    assert np.linalg.eigvalsh(G).min() > -1e-12 * np.abs(G).max()       # positive semi-definite


# ------------------------------------------------------------------------------ eigenvalues
def test_lanczos_top_and_bottom_agree_with_eigh(mid):
    *_, curv, lam = mid
    assert curv.dim <= 2000
    top = lanczos(curv, 5, "largest", seed=1)
    bot = lanczos(curv, 5, "smallest", seed=2)
    assert np.max(np.abs(top.eigenvalues - lam[::-1][:5]) / np.abs(lam[::-1][:5])) <= EIG_RTOL
    assert np.max(np.abs(bot.eigenvalues - lam[:5]) / np.abs(lam[:5])) <= EIG_RTOL
    for r in (top, bot):
        assert r.all_converged and r.residuals.shape == (5,) and np.all(r.residuals > 0)
        assert np.all(r.residuals <= 1e-10 * np.maximum(np.abs(r.eigenvalues), 1e-5))
        assert r.seeds == {"probes": r.seeds["probes"]} and r.iterations > 0
        assert r.counts["hvps"] == r.counts["hvps"] and r.counts["hvps"] > 0
        V = r.eigenvectors
        assert_close(V @ V.T, np.eye(5), "exact")
        fresh = np.linalg.norm(curv.matmat(V) - r.eigenvalues[:, None] * V, axis=1)   # true residuals
        assert np.all(fresh <= 10 * r.residuals + 1e-13 * np.abs(lam).max())


def test_float32_operator_keeps_a_float32_basis(small):
    curv, spec = small
    c32 = Curvature(curv.net, curv.theta.astype(np.float32), (curv.X, curv.y))
    r = lanczos(c32, 3, "both", seed=0)
    assert r.semantics["basis_dtype"] == "float32" and r.semantics["tol"] == 1e-4 and r.all_converged
    lam = spec.eigenvalues
    assert_close(r.eigenvalues, np.r_[lam[::-1][:3], lam[:3]], "fast", np.float32, what="float32 Lanczos")


def test_lanczos_both_ends_and_seed_determinism(small):
    curv, spec = small
    lam = spec.eigenvalues
    r = lanczos(curv, 3, "both", seed=5)
    assert_close(r.eigenvalues, np.r_[lam[::-1][:3], lam[:3]], "exact", what="both ends")
    again = lanczos(curv, 3, "both", seed=5)
    assert np.array_equal(r.eigenvalues, again.eigenvalues)


def test_lanczos_restarts_and_invariant_subspaces():
    """Repeated eigenvalues and a Krylov space that runs out: deflation keeps T exact."""
    lam = np.r_[np.full(10, 3.0), np.linspace(-1, 1, 30), np.full(8, -2.0)]
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((48, 48)))[0]
    A = (Q * lam) @ Q.T
    r = lanczos(A, 4, "largest", max_basis=16, block_size=4)
    assert_close(r.eigenvalues, np.full(4, 3.0), "exact")
    s = lanczos(DenseOperator(A), 3, "smallest", max_basis=12, block_size=2)
    assert_close(s.eigenvalues, np.full(3, -2.0), "exact")
    assert s.restarts > 0 and s.all_converged


def test_power_iteration_baseline(small):
    curv, spec = small
    lam = spec.eigenvalues
    r = power_iteration(curv, 1, tol=1e-9, max_iter=3000)
    top = lam[np.argmax(np.abs(lam))]
    assert r.all_converged and abs(r.eigenvalues[0] - top) <= 1e-9 * abs(top) + r.residuals[0]
    assert r.method == "power" and r.counts["hvps"] == r.iterations


# ------------------------------------------------------------------------------ trace
def test_hutchinson_within_three_standard_errors_over_20_seeds(small):
    curv, spec = small
    tr = spec.eigenvalues.sum()
    ests = [hutchinson(curv, 40, block_size=16, seed=s) for s in range(20)]
    z = np.array([(e.estimate - tr) / e.standard_error for e in ests])
    assert np.all(np.abs(z) <= 3), z
    assert abs(np.mean([e.estimate for e in ests]) - tr) <= 3 * np.mean([e.standard_error for e in ests]) / np.sqrt(20)
    assert all(e.counts["hvps"] == 40 and e.n_matvecs == 40 for e in ests)


def test_hutchpp_is_unbiased_and_exact_for_low_rank():
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((200, 5)))[0]
    A = (U * np.array([50.0, 20, 10, -5, 2])) @ U.T                     # rank 5
    r = hutchpp(A, 30, seed=1)
    assert abs(r.estimate - np.trace(A)) <= 1e-9 * 50 and r.standard_error <= 1e-9
    B = A + np.diag(rng.uniform(0, 0.1, 200))
    ests = [hutchpp(B, 36, seed=s) for s in range(20)]
    z = np.array([(e.estimate - np.trace(B)) / e.standard_error for e in ests])
    assert np.all(np.abs(z) <= 3), z


# ------------------------------------------------------------------------------ density
def test_slq_mean_matches_trace_over_p(small):
    curv, spec = small
    d = slq(curv, 12, 60, seed=0)
    exact = spec.eigenvalues.mean()
    assert abs(d.mean_eigenvalue - exact) <= 3 * d.mean_se
    assert abs(d.grid_mass - 1) < 1e-6
    grid_mean = np.trapezoid(d.grid * d.density, d.grid)
    assert abs(grid_mean - d.mean_eigenvalue) <= 1e-6 * max(abs(d.grid).max(), 1)
    assert np.allclose(np.nansum(d.weights, axis=1), 1)
    assert d.sigma_convention == "std" and d.sigma == d.sigma_std
    assert d.counts["hvps"] == 12 * 60


def test_sigma_is_a_standard_deviation():
    grid, dens, std = smooth(np.array([[0.0]]), np.array([[1.0]]), 0.3, "std", 4001)
    assert std == 0.3
    assert abs(np.sqrt(np.trapezoid(grid ** 2 * dens, grid)) - 0.3) < 1e-4 * 0.3


def test_pyhessian_convention_reproduces_density_generate():
    """Transcription of PyHessian's density_generate (sigma_squared is a variance × range)."""
    rng = np.random.default_rng(0)
    nodes = np.sort(rng.normal(size=(3, 7)), axis=1) * 4
    weights = rng.dirichlet(np.ones(7), size=3)
    grid, dens, std = smooth(nodes, weights, 1e-3, "pyhessian", 500)

    lam_max = np.mean(np.max(nodes, axis=1)) + 0.01
    lam_min = np.mean(np.min(nodes, axis=1)) - 0.01
    grids = np.linspace(lam_min, lam_max, num=500)
    sigma = 1e-3 * max(1, lam_max - lam_min)
    out = np.zeros((3, 500))
    for i in range(3):
        for j in range(500):
            g = np.exp(-(grids[j] - nodes[i]) ** 2 / (2.0 * sigma)) / np.sqrt(2 * np.pi * sigma)
            out[i, j] = np.sum(g * weights[i])
    ref = out.mean(0)
    ref /= ref.sum() * (grids[1] - grids[0])
    assert_close(grid, grids, "exact")
    assert_close(dens, ref, "exact")
    assert std == pytest.approx(np.sqrt(sigma))


def test_chebyshev_markov_stieltjes_bracket_holds_per_run():
    rng = np.random.default_rng(1)
    lam = np.r_[rng.normal(-1, 0.5, 40), rng.normal(2, 1, 80)]
    Q = np.linalg.qr(rng.standard_normal((120, 120)))[0]
    A = DenseOperator((Q * lam) @ Q.T)
    V = rng.standard_normal((6, 120))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    for m in (5, 15, 40):
        nodes, weights = _gauss(*_lanczos_runs(A, V, m))
        for t in (-1.5, -0.2, 0.0, 1.0):
            est, lo, hi = index_bracket(nodes, weights, t)
            true = ((V @ Q) ** 2 * (lam < t)).sum(1)
            assert np.all(lo <= true + 1e-12) and np.all(true <= hi + 1e-12), (m, t)


def test_slq_index_interval_contains_exact_index(small):
    curv, spec = small
    assert 0.05 < spec.index < 0.95
    d = slq(curv, 10, 40, seed=3, zero_tol=spec.zero_tol)
    lo, hi = d.index_bounds
    assert lo <= spec.index <= hi and lo <= d.index_estimate <= hi
    s = saddle_index(curv, "slq", n_runs=10, n_steps=40, seed=3)
    assert s.method == "slq" and s.lower <= spec.index <= s.upper


def test_saddle_index_exact(small):
    curv, spec = small
    s = saddle_index(curv)
    assert s.method == "exact" and s.index == spec.index == s.lower == s.upper
    assert s.n_negative == int(np.sum(spec.eigenvalues < -spec.zero_tol))


# ------------------------------------------------------------------------------ exact mode
def test_check_estimators_reports_every_estimator_within_its_claim(small):
    curv, spec = small
    chk = check_estimators(curv, k=3, n_probes=60, slq_runs=8, slq_steps=40, seed=0)
    names = {(r["quantity"], r["estimator"]) for r in chk.rows}
    assert {("trace", "Hutchinson"), ("trace", "Hutch++"), ("trace/n", "SLQ"), ("saddle index", "SLQ"),
            ("λ_max|·|", "power iteration"), ("λ_max[0]", "block Lanczos"), ("λ_min[2]", "block Lanczos")} <= names
    assert chk.all_within, chk.table()
    lanczos_rows = [r for r in chk.rows if r["estimator"] == "block Lanczos"]
    assert max(r["rel_error"] for r in lanczos_rows) <= EIG_RTOL
    assert "| trace | Hutchinson |" in chk.table()
    assert_close(chk.exact.eigenvalues, spec.eigenvalues, "exact")


def test_exact_spectrum_diagnostics(small):
    curv, spec = small
    assert spec.asymmetry < rtol("symmetry", np.float64)
    assert spec.n_negative + spec.n_zero + spec.n_positive == curv.dim
    assert spec.zero_tol == pytest.approx(curv.dim * np.finfo(float).eps * np.abs(spec.eigenvalues).max())
    assert spec.counts["hvps"] == curv.dim


# ------------------------------------------------------------------------------ results
def test_results_save_load_plot(tmp_path, small):
    curv, spec = small
    results = [lanczos(curv, 2, seed=0), power_iteration(curv, 1, max_iter=50), hutchinson(curv, 8),
               hutchpp(curv, 9), slq(curv, 3, 10), spec, saddle_index(curv),
               saddle_index(curv, "slq", n_runs=3, n_steps=10),
               check_estimators(curv, k=1, n_probes=6, slq_runs=2, slq_steps=10)]
    for i, r in enumerate(results):
        r.save(tmp_path / str(i))
        back = Result.load(tmp_path / str(i))
        assert type(back) is type(r)
        assert back.semantics == r.to_dict()["semantics"] and back.seeds == r.seeds
        for f, v in vars(r).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(getattr(back, f), v, equal_nan=True), f
        fig = back.plot()                      # drawn headless; one of them rendered to PNG below
        assert fig.axes and all(ax.has_data() or ax.images for ax in fig.axes[:1])
    results[-1].plot(tmp_path / "check.png")
    assert (tmp_path / "check.png").stat().st_size > 1000


# ------------------------------------------------------------------------------ bad input
def _args():
    net, theta, X, y = problem("mlp-tanh", n=10)
    return net, theta, X, y


@pytest.mark.parametrize("make, err, match", [
    (lambda n, t, X, y: Curvature(n, np.r_[t[:-1], np.nan], (X, y)), ValueError, "theta contains NaN"),
    (lambda n, t, X, y: Curvature(n, np.r_[t[:-1], np.inf], (X, y)), ValueError, "theta"),
    (lambda n, t, X, y: Curvature(n, t[:-1], (X, y)), ValueError, "theta must have last dimension"),
    (lambda n, t, X, y: Curvature(n, t, (X[:0], y[:0])), ValueError, "data is empty"),
    (lambda n, t, X, y: Curvature(n, t, (X, y[:-1])), ValueError, "y has 9 examples but X has 10"),
    (lambda n, t, X, y: Curvature(n, t, X), TypeError, "data must be a pair"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), params="hidden"), ValueError, "parameter selection"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), params=["9.weight"]), ValueError, "parameter selection"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), params=[]), ValueError, "selects no parameters"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), kind="fisher"), ValueError, "kind"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), batch_size=0), ValueError, "batch_size"),
    (lambda n, t, X, y: Curvature(n, t, (X, y), weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda n, t, X, y: Curvature("net", t, (X, y)), TypeError, "net must be"),
    (lambda n, t, X, y: Curvature(n, t, (X, y)).matmat(np.ones((2, 3))), ValueError, "V must have shape"),
])
def test_operator_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make(*_args())


@pytest.mark.parametrize("call, err, match", [
    (lambda c: lanczos(c, c.dim), ValueError, "k=.* must be smaller than"),
    (lambda c: lanczos(c, c.dim + 5), ValueError, "must be smaller than"),
    (lambda c: lanczos(c, (c.dim + 1) // 2, "both"), ValueError, "2k"),
    (lambda c: lanczos(c, 0), ValueError, "k must be >= 1"),
    (lambda c: lanczos(c, 2, "middle"), ValueError, "which"),
    (lambda c: lanczos(c, 2, tol=0.0), ValueError, "tol"),
    (lambda c: lanczos(c, 3, max_basis=4), ValueError, "max_basis"),
    (lambda c: power_iteration(c, c.dim), ValueError, "must be smaller than"),
    (lambda c: hutchinson(c, 1), ValueError, "n_probes"),
    (lambda c: hutchpp(c, 5), ValueError, "n_matvecs"),
    (lambda c: slq(c, sigma=-1.0), ValueError, "sigma"),
    (lambda c: slq(c, sigma_convention="variance"), ValueError, "sigma_convention"),
    (lambda c: full_hessian(c, max_dim=10), ValueError, "exceeds max_dim"),
    (lambda c: saddle_index(c, "guess"), ValueError, "method"),
    (lambda c: lanczos("H", 2), TypeError, "Curvature"),
])
def test_estimator_bad_input(call, err, match):
    net, theta, X, y = _args()
    with pytest.raises(err, match=match):
        call(Curvature(net, theta, (X, y)))
