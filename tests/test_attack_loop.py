"""The attack loop's kernels (pyquirk.adversarial._reference / _numba) and its skipped scans.

- ``pgd_step``: the Numba twin equals the public kernels' composition ``project(steepest_step(·))``
  on the same backend bit for bit, and the NumPy-backend composition exactly (L∞) or to the
  tolerance table (L2); both twins refuse a non-finite gradient.
- ``track_best``: both twins update margins, best inputs and best logits identically, NaN logits
  included, and the result is the running maximum of :func:`pyquirk.adversarial.margins`.
- The loop skips the engine's NaN/inf scan after the first step; ``check_finite=False`` changes
  nothing on finite inputs, and a model that overflows still gets a clear error.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyquirk
from pyquirk import kernels
from pyquirk.adversarial import Model, _reference, margins, pgd
from _tol import assert_close
from test_adversarial import _mlp, _problem

DTYPES = [np.float32, np.float64]
HYP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BACKENDS = [b for b, why in pyquirk.available().items() if why is None and b != "cuda"]


@pytest.fixture(scope="module")
def nb():
    """The Numba twins (numba is a runtime dependency; skip only where it is truly missing)."""
    return pytest.importorskip("pyquirk.adversarial._numba")


@st.composite
def step_problem(draw, dtype):
    """Rows ``x [R·N, D]`` around ``x0 [N, D]``, a gradient with zeros, per-row α and ε, bounds."""
    N, D, R = draw(st.integers(1, 4)), draw(st.integers(1, 40)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lo, hi = draw(st.sampled_from([(0.0, 1.0), (-np.inf, np.inf), (0.25, 0.75)]))
    x0 = np.clip(rng.uniform(0, 1, (N, D)), lo, hi).astype(dtype)
    x = np.clip(np.tile(x0, (R, 1)) + 0.1 * rng.standard_normal((R * N, D)), lo, hi).astype(dtype)
    g = (rng.standard_normal((R * N, D)) * (rng.random((R * N, D)) > 0.2)).astype(dtype)
    g[0] = 0                                                   # a zero gradient row: no step
    alpha = rng.uniform(0, 0.2, R * N)
    eps = rng.uniform(0, 1, R * N) * draw(st.sampled_from([0.0, 0.05, 0.3, 2.0]))
    return x, g, x0, alpha, eps, lo, hi


@pytest.mark.parametrize("dtype", DTYPES)
@HYP
@given(data=st.data())
def test_pgd_step_is_the_kernels_composition(nb, dtype, data):
    x, g, x0, alpha, eps, lo, hi = data.draw(step_problem(dtype))
    for norm in ("linf", "l2"):
        project = kernels.project_linf if norm == "linf" else kernels.project_l2

        def composed(backend):
            return project(kernels.steepest_step(x, g, alpha, norm, backend=backend), x0, eps, lo, hi,
                           backend=backend)

        fast, ok = nb.pgd_step(x, g, x0, alpha, eps, norm, lo, hi)
        ref, ok_ref = _reference.pgd_step(x, g, x0, alpha, eps, norm, lo, hi)
        assert ok and ok_ref
        np.testing.assert_array_equal(fast, composed("cpu"))      # the same kernels, in sequence
        np.testing.assert_array_equal(ref, composed("reference"))
        if norm == "linf":
            np.testing.assert_array_equal(fast, ref)
        else:
            assert_close(fast, ref, "fast", dtype, "pgd_step l2")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_pgd_step_refuses_a_non_finite_gradient(nb, bad):
    x = np.full((6, 5), 0.5, np.float32)
    g = np.ones_like(x)
    g[4, 2] = bad
    args = (x, g, x[:3], np.full(6, 0.1), np.full(6, 0.3), "linf", 0.0, 1.0)
    assert nb.pgd_step(*args) == (None, False)
    assert _reference.pgd_step(*args) == (None, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("targeted", [False, True])
@HYP
@given(C=st.integers(1, 6), N=st.integers(1, 5), E=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_track_best_twins_and_running_max(nb, dtype, targeted, C, N, E, seed):
    rng = np.random.default_rng(seed)
    M, D = E * N, 7
    labels = rng.integers(0, C, N).astype(np.int64)
    state = {"m": np.where(rng.random(M) < 0.5, -np.inf, rng.standard_normal(M)),
             "x": rng.standard_normal((M, D)).astype(dtype), "z": rng.standard_normal((M, C)).astype(dtype)}
    twins = {"numba": nb, "numpy": _reference}
    kept = {k: {n: a.copy() for n, a in state.items()} for k in twins}
    running = state["m"].copy()
    for _ in range(3):
        z = rng.standard_normal((M, C)).astype(dtype)
        z[rng.random(M) < 0.2, rng.integers(0, C)] = np.nan          # NaN logits never win
        x = rng.standard_normal((M, D)).astype(dtype)
        for name, mod in twins.items():
            s = kept[name]
            mod.track_best(z, labels, targeted, s["m"], x, s["x"], s["z"])
        m = margins(z, np.tile(labels, E), targeted)
        running = np.where(m > running, m, running)
    for n in state:
        np.testing.assert_array_equal(kept["numba"][n], kept["numpy"][n])
    np.testing.assert_array_equal(kept["numba"]["m"], running)


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_finite_false_changes_nothing_on_finite_inputs(backend):
    model, X, y = _problem(_mlp(), n=12)
    net, theta = model.net, model.theta
    a = net.input_grad(theta, X, y, backend=backend, with_logits=True)
    b = net.input_grad(theta, X, y, backend=backend, with_logits=True, check_finite=False)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    bad = X.copy()
    bad[3, 0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        net.input_grad(theta, bad, y, backend=backend)
    z, g = net.input_grad(theta, bad, y, backend=backend, with_logits=True, check_finite=False)
    assert np.isnan(z[3]).all() and np.isfinite(np.delete(z, 3, 0)).all()   # the scan alone was skipped


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("compat, norm", [(None, "linf"), (None, "l2"), ("torchattacks", "l2")])
def test_attack_on_an_overflowing_model_raises_clearly(backend, compat, norm):
    """pgd_step refuses the gradient; torchattacks' own L2 step leaves it to the next scan."""
    model, X, y = _problem(_mlp(), n=8)
    huge = Model(model.net, model.theta * np.float32(1e25), backend=backend)   # finite θ, inf logits
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="NaN or infinite"):   # NumPy's overflow
        pgd(huge, X, y, 0.1, norm=norm, steps=3, compat=compat, random_start=False)
