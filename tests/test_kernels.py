"""The data-parallel kernels: each Numba kernel against its NumPy twin, and both against the definitions.

Exact equality for selection masks, mask application, L∞ projection/steps/starts and grid points;
the tolerance table (``rtol("fast", dtype)``) where a kernel reduces (L2 norms, filter norms).
The definitions are checked by oracles that use neither twin: a lexicographic (|θ|, index) check
for selection, norm bounds for projections, radius distributions for random starts.
"""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import pyquirk
from pyquirk import config, kernels
from pyquirk.backends import reference_kernels
from pyquirk.seeds import Seeds, stream
from _tol import assert_close, rtol
from nets import NETS

DTYPES = [np.float32, np.float64]
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def nk():
    """The Numba twins (numba is a runtime dependency; skip only where it is truly missing)."""
    return pytest.importorskip("pyquirk.backends.numba_kernels")


@contextlib.contextmanager
def tuned(**values):
    """Patch pyquirk.config inside hypothesis examples (monkeypatch is function-scoped)."""
    old = {k: getattr(config, k) for k in values}
    try:
        for k, v in values.items():
            setattr(config, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(config, k, v)


def both(name, *args, **kw):
    """(numba result, reference result) of the public kernel ``name``."""
    return (getattr(kernels, name)(*args, backend="cpu", **kw),
            getattr(kernels, name)(*args, backend="reference", **kw))


# ==================================================================================== selection
def check_selection(theta, k, segments, mask):
    """Oracle: exactly k pruned in scope, and every pruned (|θ|, i) precedes every kept one."""
    inscope = np.zeros(theta.size, dtype=bool)
    for o, s in segments:
        inscope[o:o + s] = True
    assert mask.dtype == bool and mask.shape == theta.shape
    assert mask[~inscope].all(), "an entry outside the scope was pruned"
    pruned, kept = np.flatnonzero(inscope & ~mask), np.flatnonzero(inscope & mask)
    assert pruned.size == k
    if pruned.size and kept.size:
        mag = np.abs(theta.astype(np.float64))           # exact for float32 and float64
        mp, mk = mag[pruned].max(), mag[kept].min()
        assert mp <= mk, "a kept entry is smaller than a pruned one"
        if mp == mk:
            assert pruned[mag[pruned] == mp].max() < kept[mag[kept] == mk].min(), "tie not broken by index"


def tied_values(dtype, P, rng, pools):
    """P values drawn from the chosen pools: small integers (ties), ±0 and subnormals, wide floats."""
    f = np.finfo(dtype)
    special = np.array([0.0, -0.0, f.smallest_subnormal, -f.smallest_subnormal, 3 * f.smallest_subnormal,
                        f.tiny, -f.tiny, f.max, -f.max], dtype=dtype)
    parts = {"ints": rng.integers(-4, 5, P).astype(dtype),
             "special": rng.choice(special, P),
             "wide": (rng.standard_normal(P) * np.exp(rng.uniform(-20, 20, P))).astype(dtype)}
    which = rng.integers(0, len(pools), P)
    return np.choose(which, [parts[p] for p in pools]).astype(dtype)


@st.composite
def selection_problem(draw, dtype):
    P = draw(st.integers(1, 300))
    pools = draw(st.lists(st.sampled_from(["ints", "special", "wide"]), min_size=1, max_size=3, unique=True))
    theta = tied_values(dtype, P, np.random.default_rng(draw(st.integers(0, 2**32 - 1))), pools)
    cuts = sorted(set(draw(st.lists(st.integers(0, P), min_size=2, max_size=8))))
    segs = [(a, b - a) for a, b in zip(cuts, cuts[1:]) if draw(st.booleans())] or [(0, P)]
    n = sum(s for _, s in segs)
    return theta, draw(st.integers(0, n)), segs


# Tunables never change results. A small SELECT_MIN_BLOCK sends small scopes down the parallel
# (multi-block) path; SELECT_SAMPLE_MIN = 0 sends them through the sampled one-pass window first
# (a margin of 0 makes its window miss often, so the exact fallback runs too).
CONFIGS = st.fixed_dictionaries({"SELECT_RADIX_BITS": st.sampled_from([1, 3, 9, 16]),
                                 "SELECT_REFINE_BITS": st.sampled_from([1, 5, 16]),
                                 "SELECT_MIN_BLOCK": st.sampled_from([3, 1 << 16]),
                                 "SELECT_SAMPLE_MIN": st.sampled_from([0, 1 << 18]),
                                 "SELECT_SAMPLE_RUN": st.sampled_from([1, 16]),
                                 "SELECT_SAMPLE_EVERY": st.sampled_from([1, 4, 32]),
                                 "SELECT_SAMPLE_MARGIN": st.sampled_from([0.0, 8.0]),
                                 "SELECT_CHUNK": st.sampled_from([8, 1024])})


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_selection_twins_equal_and_meet_definition(nk, dtype, data):
    theta, k, segs = data.draw(selection_problem(dtype))
    with tuned(**data.draw(CONFIGS)):
        fast, ref = both("magnitude_select", theta, k, segs)
    ks = [data.draw(st.integers(0, s)) for _, s in segs]
    fast_l, ref_l = both("per_segment_select", theta, ks, segs)
    np.testing.assert_array_equal(fast, ref)
    check_selection(theta, k, segs, fast)
    np.testing.assert_array_equal(fast_l, ref_l)
    for kj, (o, s) in zip(ks, segs):          # each segment on its own: its kj, nothing else
        alone = np.ones_like(fast_l)
        alone[o:o + s] = fast_l[o:o + s]
        check_selection(theta, kj, [(o, s)], alone)
    assert (~fast_l).sum() == sum(ks)


@pytest.mark.parametrize("dtype", DTYPES)
def test_selection_paths_sampled_and_exact(nk, dtype, monkeypatch):
    """Both the one-pass sampled window and the two exact passes run, and agree with the twin."""
    rng = np.random.default_rng(5)
    theta = (rng.standard_normal(40_000) * np.repeat(rng.uniform(0.1, 3, 40), 1000)).astype(dtype)
    theta[::3] = np.round(theta[::3])                         # many ties at the integers
    segs = [(0, 15_000), (20_000, 20_000)]
    monkeypatch.setattr(config, "SELECT_SAMPLE_MIN", 0)
    monkeypatch.setattr(config, "SELECT_MIN_BLOCK", 5000)
    seen = set()
    for margin in (8.0, 0.0):
        monkeypatch.setattr(config, "SELECT_SAMPLE_MARGIN", margin)
        for k in (1, 777, 17_500, 34_999):
            mask = nk._fill_gaps(theta.size, segs)
            seen.add(nk._select_into(theta, k, segs, mask))
            np.testing.assert_array_equal(mask, kernels.magnitude_select(theta, k, segs, backend="reference"))
            check_selection(theta, k, segs, mask)
    assert seen == {"sampled", "exact"}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_fall_by_index_and_signed_zeros_tie(nk, backend, dtype):
    sub = np.finfo(dtype).smallest_subnormal
    theta = np.array([1, -1, 1, -0.0, 0.0, 1, sub, -sub, 2], dtype=dtype)
    # order by (|θ|, i): 3, 4 (±0), 6, 7 (±subnormal), 0, 1, 2, 5 (±1), 8
    for k, pruned in [(1, [3]), (2, [3, 4]), (3, [3, 4, 6]), (5, [3, 4, 6, 7, 0]), (7, [3, 4, 6, 7, 0, 1, 2])]:
        mask = kernels.magnitude_select(theta, k, backend=backend)
        assert sorted(np.flatnonzero(~mask)) == sorted(pruned), (k, np.flatnonzero(~mask))


@pytest.mark.parametrize("dtype", DTYPES)
def test_selection_large_scope_many_blocks_and_ties(nk, dtype, monkeypatch):
    """300k entries, integer magnitudes (huge tie groups), scope across segments and blocks."""
    rng = np.random.default_rng(0)
    theta = rng.integers(-40, 41, 300_000).astype(dtype)
    theta[::7] = rng.standard_normal(theta[::7].size)
    segs = [(0, 100_000), (100_500, 99_000), (200_000, 100_000)]
    monkeypatch.setattr(config, "SELECT_MIN_BLOCK", 1000)
    for k in (0, 1, 123_457, 298_999, 299_000):
        fast, ref = both("magnitude_select", theta, k, segs)
        np.testing.assert_array_equal(fast, ref)
        check_selection(theta, k, segs, fast)


def test_selection_scope_from_layout_and_strided_theta(nk):
    net = NETS["cnn2d-pools"]()
    theta = net.init(0)
    weights = [s for s in net.layout if s.kind == "weight"]
    k = sum(s.size for s in weights) // 2
    fast, ref = both("magnitude_select", theta, k, weights)
    np.testing.assert_array_equal(fast, ref)
    assert fast[net.param_mask("biases")].all()
    wide = np.zeros(2 * theta.size, theta.dtype)
    wide[::2] = theta
    np.testing.assert_array_equal(kernels.magnitude_select(wide[::2], k, weights, backend="cpu"), fast)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_selection_rejects_non_finite_in_scope_only(nk, backend, bad):
    theta = np.arange(10, dtype=np.float32)
    theta[3] = bad
    with pytest.raises(ValueError, match="theta contains NaN or infinite"):
        kernels.magnitude_select(theta, 2, backend=backend)
    mask = kernels.magnitude_select(theta, 2, [(4, 6)], backend=backend)
    assert mask[3] and (~mask).sum() == 2


# ==================================================================================== masks
@pytest.mark.parametrize("dtype", DTYPES)
def test_apply_mask_twins_bitwise_and_in_place(nk, dtype):
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((3, 50)).astype(dtype)
    theta[:, :4] = [-0.0, np.inf, -np.inf, -2.0]
    for mask in (rng.random(50) < 0.5, rng.random((3, 50)) < 0.5):
        for t in (theta[0], theta):
            if mask.ndim == 2 and t.ndim == 1:
                continue
            fast, ref = both("apply_mask", t, mask)
            assert fast.dtype == dtype and np.array_equal(fast.view(np.uint8), ref.view(np.uint8))
            m = np.broadcast_to(mask, t.shape)
            assert np.array_equal(fast[m].view(np.uint8), t[m].view(np.uint8))       # kept: untouched
            assert (fast[~m] == 0).all() and not np.signbit(fast[~m]).any()           # pruned: +0
    work = theta.copy()
    out = kernels.apply_mask(work, mask, out=work, backend="cpu")
    assert out is work and np.array_equal(work, np.where(mask, theta, 0))


# ==================================================================================== attacks
def rounding_slack(x0, eps, dtype):
    """Per element, the most one rounding of x0 + δ (|δ| ≤ ε) can add to |δ|."""
    return np.spacing((np.abs(x0) + eps[:, None]).astype(dtype)).astype(np.float64)


@st.composite
def attack_problem(draw, dtype):
    N, D, R = draw(st.integers(1, 4)), draw(st.integers(1, 20)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, 1, (N, D)).astype(dtype)
    spread = draw(st.sampled_from([0.0, 1e-3, 0.5, 3.0]))
    x = (np.tile(x0, (R, 1)) + spread * rng.standard_normal((R * N, D))).astype(dtype)
    eps = rng.uniform(0, 1, R * N) * draw(st.sampled_from([0.0, 0.01, 0.3, 2.0]))
    lo, hi = draw(st.sampled_from([(0.0, 1.0), (-np.inf, np.inf), (0.25, 0.75)]))
    x0 = np.clip(x0, lo, hi)
    return x, x0, eps, lo, hi


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_projections_twins_and_bounds(nk, dtype, data):
    x, x0, eps, lo, hi = data.draw(attack_problem(dtype))
    N = x0.shape[0]
    x0r = np.tile(x0, (x.shape[0] // N, 1)).astype(np.float64)
    slack = rounding_slack(x0r, eps, dtype)
    eps_dt = eps.astype(dtype).astype(np.float64)
    # L∞: exact twins, |δ| ≤ ε (after rounding ε to the dtype, plus the final add's rounding)
    fast, ref = both("project_linf", x, x0, eps, lo, hi)
    np.testing.assert_array_equal(fast, ref)
    delta = fast.astype(np.float64) - x0r
    assert (np.abs(delta) <= eps_dt[:, None] + slack).all()
    assert (fast >= np.float64(lo)).all() and (fast <= np.float64(hi)).all()
    # L2: twins to rounding, ‖δ‖₂ ≤ ε(1 + 1e-6) plus the final add's rounding
    fast, ref = both("project_l2", x, x0, eps, lo, hi)
    assert_close(fast, ref, "fast", dtype, "project_l2")
    delta = fast.astype(np.float64) - x0r
    assert (np.linalg.norm(delta, axis=1) <= eps * (1 + 1e-6) + np.linalg.norm(slack, axis=1)).all()
    assert (fast >= np.float64(lo)).all() and (fast <= np.float64(hi)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_projection_fixed_points(nk, dtype):
    x0 = np.random.default_rng(2).uniform(0, 1, (4, 3, 5)).astype(dtype)
    for name in ("project_linf", "project_l2"):
        for backend in ("cpu", "reference"):
            f = getattr(kernels, name)
            np.testing.assert_array_equal(f(x0, x0, 0.1, backend=backend), x0)        # ‖δ‖ = 0
            np.testing.assert_array_equal(f(x0 + 1, x0, 0.0, backend=backend), x0)    # ε = 0
            y = f(np.tile(x0, (3, 1, 1)) + 0.5, x0, np.repeat([0.0, 0.1, 9.0], 4), backend=backend)
            assert y.shape == (12, 3, 5) and np.array_equal(y[:4], x0)


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_steepest_step(nk, dtype, data):
    x, _, alpha, _, _ = data.draw(attack_problem(dtype))
    g = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(x.shape).astype(dtype)
    g[0] = 0
    fast, ref = both("steepest_step", x, g, alpha, "linf")
    np.testing.assert_array_equal(fast, ref)
    fast, ref = both("steepest_step", x, g, alpha, "l2")
    assert_close(fast, ref, "fast", dtype, "steepest_step l2")
    np.testing.assert_array_equal(fast[0], x[0])                      # ‖g‖ = 0: no step, no NaN
    step = np.linalg.norm(ref.astype(np.float64) - x, axis=1)        # ‖step‖ = α up to rounding
    slack = np.linalg.norm(rounding_slack(x, alpha, dtype), axis=1)
    assert (np.abs(step - alpha)[1:] <= alpha[1:] * 1e-6 + slack[1:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_random_start_twins_inside_ball(nk, dtype, data):
    _, x0, _, lo, hi = data.draw(attack_problem(dtype))
    R = data.draw(st.integers(1, 3))
    eps = np.random.default_rng(0).uniform(0, 0.5, R * x0.shape[0])
    seed = data.draw(st.integers(0, 1000))
    x0r = np.tile(x0, (R, 1)).astype(np.float64)
    slack = rounding_slack(x0r, eps, dtype)
    fast, ref = both("random_start", x0, eps, "linf", seed, lo, hi)
    np.testing.assert_array_equal(fast, ref)
    assert (np.abs(fast - x0r) <= eps[:, None] + slack).all()
    fast, ref = both("random_start", x0, eps, "l2", seed, lo, hi)
    assert_close(fast, ref, "fast", dtype, "random_start l2")
    assert (np.linalg.norm(fast - x0r, axis=1) <= eps * (1 + 1e-6) + np.linalg.norm(slack, axis=1)).all()
    for out in (fast, ref):
        assert out.dtype == dtype and (out >= np.float64(lo)).all() and (out <= np.float64(hi)).all()


@pytest.mark.parametrize("D", [1, 2, 3])
def test_random_start_l2_uniform_in_ball(nk, D):
    """P(r ≤ ε/2) = 2^-D, and (r/ε)^D ~ U(0, 1) (uniform in the ball, not on the sphere)."""
    M, eps = 20_000, 0.3
    x0 = np.zeros((1, D))
    x = kernels.random_start(x0, np.full(M, eps), "l2", 7, -np.inf, np.inf, backend="cpu")
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= eps * (1 + 1e-12)
    p = 2.0 ** -D
    assert abs(np.mean(r <= eps / 2) - p) < 5 * np.sqrt(p * (1 - p) / M)
    assert stats.kstest((r / eps) ** D, "uniform").pvalue > 1e-4
    assert np.abs(np.mean(x / np.maximum(r, 1e-300)[:, None], axis=0)).max() < 5 / np.sqrt(M)


def test_random_start_linf_uniform_cube_and_seeding(nk):
    M, eps = 5000, 0.2
    x = kernels.random_start(np.full((1, 3), 0.5), np.full(M, eps), "linf", 3, backend="cpu")
    assert stats.kstest(((x - 0.5) / eps).ravel(), "uniform", args=(-1, 2)).pvalue > 1e-4
    x0 = np.full((2, 4), 0.5, np.float32)
    a = kernels.random_start(x0, 0.1, "l2", 5)
    np.testing.assert_array_equal(a, kernels.random_start(x0, 0.1, "l2", stream("attack", 5)))
    np.testing.assert_array_equal(a, kernels.random_start(x0, 0.1, "l2", Seeds(attack=5)))
    assert not np.array_equal(a, kernels.random_start(x0, 0.1, "l2", 6))


# ==================================================================================== landscape
@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_grid_points_bitwise_and_fresh(nk, dtype, data):
    P, T = data.draw(st.integers(1, 200)), data.draw(st.integers(1, 12))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    theta, d1, d2 = (rng.standard_normal(P) * 10.0 ** rng.integers(-3, 3)).astype(dtype), *rng.standard_normal((2, P))
    alphas, betas = rng.uniform(-1, 1, T), rng.uniform(-1, 1, T)
    alphas[0] = betas[0] = 0.0
    with tuned(ELEMENTWISE_CHUNK=data.draw(st.sampled_from([1, 5, 1 << 15])),
               PARALLEL_MIN_SIZE=data.draw(st.sampled_from([0, 1 << 17]))):
        fast, ref = both("grid_points", theta, d1, d2, alphas, betas)
    assert fast.dtype == dtype and fast.shape == (T, P)
    assert np.array_equal(fast.view(np.uint8), ref.view(np.uint8))
    assert np.array_equal(fast[0], theta)                                     # (0, 0) is θ itself
    t = T - 1
    expect = (theta + dtype(alphas[t]) * d1.astype(dtype)) + dtype(betas[t]) * d2.astype(dtype)
    assert np.array_equal(fast[t], expect)
    out = np.empty((T, P), dtype)
    assert kernels.grid_points(theta, d1, d2, alphas, betas, out=out, backend="cpu") is out


@pytest.mark.parametrize("keep_biases", [False, True])
@pytest.mark.parametrize("net_name", ["mlp-tanh", "cnn1d-maxpool", "cnn2d-pools"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_normalize(nk, dtype, net_name, keep_biases):
    net = NETS[net_name]()
    rng = np.random.default_rng(4)
    theta = np.stack([net.init(e, dtype=dtype) for e in range(3)])
    theta[:, net.param_mask("biases")] = rng.standard_normal(net.param_mask("biases").sum())
    d = rng.standard_normal((3, net.n_params)).astype(dtype)
    shared = both("filter_normalize", d, theta[0], net, keep_biases)   # θ [P] for every row
    assert_close(*shared, "fast", dtype, "filter_normalize, shared theta")
    fast, ref = both("filter_normalize", d, theta, net, keep_biases)
    assert fast.dtype == dtype and fast.shape == d.shape
    assert_close(fast, ref, "fast", dtype, "filter_normalize")
    one = kernels.filter_normalize(d[1], theta[1], net, keep_biases, backend="cpu")   # [P]
    assert_close(one, fast[1], "fast", dtype, "filter_normalize [P]")
    views, tv, dv = net.unflatten(ref), net.unflatten(theta), net.unflatten(d)
    norm = lambda a, rows: np.linalg.norm(a.astype(np.float64).reshape(3, rows, -1), axis=-1)
    for spec in net.layout:
        if len(spec.shape) < 2 and not keep_biases:
            assert (views[spec.name] == 0).all()
            continue
        rows = spec.shape[0] if len(spec.shape) >= 2 else 1   # per filter, or the whole bias vector
        nd = norm(dv[spec.name], rows)                         # ‖d'_f‖ = ‖θ_f‖·‖d_f‖/(‖d_f‖ + 1e-10)
        np.testing.assert_allclose(norm(views[spec.name], rows),
                                   norm(tv[spec.name], rows) * nd / (nd + 1e-10), rtol=10 * rtol("exact", dtype))


# ==================================================================================== validation
TH = np.arange(1.0, 7.0)
X0 = np.full((2, 3), 0.5)
NET = NETS["mlp-tanh"]()
BAD = [
    (lambda: kernels.magnitude_select(TH, 7), ValueError, "k must lie in"),
    (lambda: kernels.magnitude_select(TH, -1), ValueError, "k must lie in"),
    (lambda: kernels.magnitude_select(TH, 2.0), TypeError, "k must be an integer"),
    (lambda: kernels.magnitude_select(TH, 3, [(0, 2)]), ValueError, r"k must lie in \[0, 2\]"),
    (lambda: kernels.magnitude_select(np.array([]), 0), ValueError, "theta is empty"),
    (lambda: kernels.magnitude_select(TH.reshape(2, 3), 1), ValueError, "theta must have 1 dim"),
    (lambda: kernels.magnitude_select(np.arange(6), 1), TypeError, "theta must have dtype float"),
    (lambda: kernels.magnitude_select(TH, 1, [(4, 3)]), ValueError, r"segments\[0\]"),
    (lambda: kernels.magnitude_select(TH, 1, [(0, 0)]), ValueError, r"segments\[0\]"),
    (lambda: kernels.magnitude_select(TH, 1, [(0, 3), (2, 2)]), ValueError, "overlap"),
    (lambda: kernels.magnitude_select(TH, 1, [(0,)]), TypeError, r"segments\[0\] must be"),
    (lambda: kernels.magnitude_select(TH, 1, []), ValueError, "segments is empty"),
    (lambda: kernels.per_segment_select(TH, [1], [(0, 2), (3, 2)]), ValueError, "ks must hold one count"),
    (lambda: kernels.per_segment_select(TH, [1, 3], [(0, 2), (3, 2)]), ValueError, r"ks\[1\] must lie"),
    (lambda: kernels.apply_mask(TH, np.ones(5, bool)), ValueError, "mask must have shape"),
    (lambda: kernels.apply_mask(TH, np.ones(6)), TypeError, "mask must have dtype bool"),
    (lambda: kernels.apply_mask(TH, np.ones(6, bool), out=np.empty(6, np.float32)), ValueError, "out must"),
    (lambda: kernels.apply_mask(TH, np.ones(6, bool), out=np.empty(12)[::2]), ValueError, "out must be"),
    (lambda: kernels.project_linf(X0, X0, -0.1), ValueError, "eps must be non-negative"),
    (lambda: kernels.project_l2(X0, X0, np.nan), ValueError, "eps contains NaN"),
    (lambda: kernels.project_l2(X0, X0, [0.1, 0.2, 0.3]), ValueError, r"eps must be a scalar or have shape \[2\]"),
    (lambda: kernels.project_linf(X0, X0, 0.1, lo=1.0, hi=0.0), ValueError, "lo must be <= hi"),
    (lambda: kernels.project_linf(X0, X0, 0.1, lo=np.nan), ValueError, "lo is NaN"),
    (lambda: kernels.project_linf(X0, np.full((2, 4), 0.5), 0.1), ValueError, "x0 must have shape"),
    (lambda: kernels.project_linf(np.full((3, 3), 0.5), X0, 0.1), ValueError, "N dividing M=3"),
    (lambda: kernels.project_linf(np.empty((0, 3)), X0, 0.1), ValueError, "x is empty"),
    (lambda: kernels.project_linf(np.ones(3), X0, 0.1), ValueError, "x must have shape"),
    (lambda: kernels.project_l2(X0 * np.nan, X0, 0.1), ValueError, "x contains NaN"),
    (lambda: kernels.steepest_step(X0, X0, 0.1, "l1"), ValueError, "unknown norm 'l1'"),
    (lambda: kernels.steepest_step(X0, X0[:1], 0.1), ValueError, "g must have the shape of x"),
    (lambda: kernels.steepest_step(X0, X0, -1.0), ValueError, "alpha must be non-negative"),
    (lambda: kernels.random_start(X0, 0.1, "l3"), ValueError, "unknown norm"),
    (lambda: kernels.random_start(X0, 0.1, rng="seed"), TypeError, "rng must be"),
    (lambda: kernels.random_start(X0, np.full(3, 0.1)), ValueError, "does not divide"),
    (lambda: kernels.grid_points(TH, TH[:5], TH, [0.0], [0.0]), ValueError, r"d1 must have shape \[6\]"),
    (lambda: kernels.grid_points(TH, TH, TH, [0.0, 1.0], [0.0]), ValueError, "same length"),
    (lambda: kernels.grid_points(TH, TH, TH, [], []), ValueError, "alphas is empty"),
    (lambda: kernels.grid_points(TH, TH, TH, [0.0], [np.inf]), ValueError, "betas contains NaN"),
    (lambda: kernels.grid_points(TH, TH, TH, [0.0], [0.0], out=np.empty((2, 6))), ValueError, "out must have"),
    (lambda: kernels.filter_normalize(TH, TH, NET), ValueError, "direction must have last dimension"),
    (lambda: kernels.filter_normalize(TH, TH, object()), TypeError, "net must be"),
    (lambda: kernels.filter_normalize(np.ones((2, NET.n_params)), np.ones((3, NET.n_params)), NET),
     ValueError, "theta must have shape"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_inputs_raise_and_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ==================================================================================== dispatch
def test_dispatch_follows_backend_resolution(nk, monkeypatch):
    monkeypatch.delenv("PYQUIRK_BACKEND", raising=False)
    assert kernels._twins(None) is nk                         # automatic: numba when it imports
    assert kernels._twins("cpu") is nk and kernels._twins("cuda") is nk
    assert kernels._twins("reference") is reference_kernels
    with pyquirk.use_backend("reference"):
        assert kernels._twins(None) is reference_kernels
        assert kernels._twins("cpu") is nk
    monkeypatch.setenv("PYQUIRK_BACKEND", "reference")
    assert kernels._twins(None) is reference_kernels
    with pytest.raises(ValueError, match="unknown backend"):
        kernels.magnitude_select(TH, 1, backend="tpu")


def test_missing_numba_falls_back_or_raises_with_cause(monkeypatch):
    monkeypatch.delenv("PYQUIRK_BACKEND", raising=False)
    monkeypatch.setitem(kernels._numba, "module", None)
    monkeypatch.setitem(kernels._numba, "error", ImportError("No module named 'numba'"))
    assert kernels._twins(None) is reference_kernels and kernels._twins("cuda") is reference_kernels
    with pytest.raises(RuntimeError, match="No module named 'numba'"):
        kernels.magnitude_select(TH, 1, backend="cpu")
    assert (~kernels.magnitude_select(TH, 2)).sum() == 2


def test_importing_pyquirk_without_numba_never_fails():
    code = ("import sys; sys.modules['numba'] = None\n"
            "import numpy as np, pyquirk, pyquirk.kernels as K\n"
            "assert (~K.magnitude_select(np.arange(5.0), 2)).sum() == 2\n"
            "try:\n    K.magnitude_select(np.arange(5.0), 2, backend='cpu')\n"
            "except RuntimeError as e:\n    assert 'numba' in str(e), e\nelse:\n    raise SystemExit('no error')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYQUIRK_BACKEND"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
