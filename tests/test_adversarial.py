"""pyquirk.adversarial attacks: torchattacks oracle, the pinned contract (DESIGN §4), properties, errors.

- Oracle: torchattacks 3.5.1 on weights copied by ``to_torch`` (FGSM, PGD L∞/L2, BIM, targeted)
  equals ``compat="torchattacks"`` to 1e-6 in float32 (random_start=False; torch's RNG differs).
- Properties (hypothesis): ‖δ‖_p ≤ ε + 1e-6 and every returned input inside the bounds; the
  batched ε × restarts pass equals separate runs bit for bit; success is monotone in ε.
- Bad input raises clear errors.
"""
import numpy as np

from _tol import atol
import pytest
from conftest import require_oracle
from hypothesis import given, settings, strategies as st

import pyquirk
from pyquirk import kernels
from pyquirk.adversarial import Model, attack, bim, fgsm, margins, pgd
from pyquirk.adversarial import compat as C
from pyquirk.nn import Conv2d, Dense, Flatten, Net, ReLU, Tanh
from pyquirk.results import Result

#: |x_ours − x_torchattacks| in float32 (issue 6), from the tolerance table
ORACLE_ATOL_F32 = atol("torchattacks", np.float32)
#: slack on ‖δ‖_p ≤ ε for float32 inputs of magnitude ≤ 4 (x0 + δ is rounded to float32)
NORM_SLACK = atol("norm_slack", np.float32)

BACKENDS = [b for b, why in pyquirk.available().items() if why is None and b != "cuda"]


def _mlp(d_in=(1, 5, 8), hidden=24, classes=10, act=ReLU):
    return Net([Flatten(), Dense(hidden), act(), Dense(hidden), act(), Dense(classes)], input_shape=d_in)


def _problem(net, n=32, seed=0, dtype=np.float32, lo=0.0, hi=1.0):
    rng = np.random.default_rng(seed)
    theta = net.init(seed, dtype=dtype)
    X = rng.uniform(lo, hi, (n,) + net.input_shape).astype(dtype)
    y = rng.integers(0, net.n_outputs, n)
    return Model(net, theta, (lo, hi)), X, y


# ============================================================================ torchattacks oracle
def _torchattacks():
    """(torch, torchattacks): skipped locally when missing, a failure under PYQUIRK_REQUIRE_ORACLES=1."""
    return require_oracle("torch"), require_oracle("torchattacks")


@pytest.fixture
def one_torch_thread():
    """These tensors are tiny: one intra-op thread is faster and immune to a loaded machine."""
    torch, _ = _torchattacks()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


ORACLE_CASES = {
    # name: (ours(model, X, y, t), torchattacks constructor(tm), target mode)
    "fgsm": (lambda m, X, y, t: fgsm(m, X, y, 0.05, compat="torchattacks"),
             lambda ta, tm: ta.FGSM(tm, eps=0.05), None),
    "pgd-linf": (lambda m, X, y, t: pgd(m, X, y, 0.1, alpha=0.01, steps=15, random_start=False,
                                       compat="torchattacks"),
                 lambda ta, tm: ta.PGD(tm, eps=0.1, alpha=0.01, steps=15, random_start=False), None),
    "pgd-l2": (lambda m, X, y, t: pgd(m, X, y, 0.5, norm="l2", alpha=0.05, steps=15, random_start=False,
                                     compat="torchattacks"),
               lambda ta, tm: ta.PGDL2(tm, eps=0.5, alpha=0.05, steps=15, random_start=False), None),
    "bim": (lambda m, X, y, t: bim(m, X, y, 0.1, alpha=0.01, steps=15, compat="torchattacks"),
            lambda ta, tm: ta.BIM(tm, eps=0.1, alpha=0.01, steps=15), None),
    "pgd-linf-targeted": (lambda m, X, y, t: pgd(m, X, y, 0.1, alpha=0.01, steps=15, random_start=False,
                                                target=t, compat="torchattacks"),
                          lambda ta, tm: ta.PGD(tm, eps=0.1, alpha=0.01, steps=15, random_start=False),
                          "label"),
    "pgd-l2-least-likely": (lambda m, X, y, t: pgd(m, X, y, 0.5, norm="l2", alpha=0.05, steps=15,
                                                  random_start=False, target="least_likely",
                                                  compat="torchattacks"),
                            lambda ta, tm: ta.PGDL2(tm, eps=0.5, alpha=0.05, steps=15, random_start=False),
                            "least_likely"),
}


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_torchattacks_oracle(case, arch, one_torch_thread):
    torch, ta = _torchattacks()
    from pyquirk.interop.torch import to_torch
    net = _mlp() if arch == "mlp" else Net([Conv2d(4, 3, padding=1), ReLU(), Flatten(), Dense(10)],
                                           input_shape=(1, 5, 8))
    model, X, y = _problem(net, n=32, seed=1)
    t = (y + 1 + np.random.default_rng(2).integers(0, 9, y.size)) % 10
    ours, make, mode = ORACLE_CASES[case]
    atk = make(ta, to_torch(net, model.theta))
    if mode == "label":
        atk.set_mode_targeted_by_label(quiet=True)
    elif mode == "least_likely":
        atk.set_mode_targeted_least_likely(quiet=True)
    expect = atk(torch.from_numpy(X), torch.from_numpy(t if mode == "label" else y)).numpy()
    got = ours(model, X, y, t).x_adv[0]
    assert got.dtype == np.float32 and got.shape == expect.shape
    err = np.abs(got.astype(np.float64) - expect).max()
    assert err <= ORACLE_ATOL_F32, f"{case}/{arch}: max |ours − torchattacks| = {err:.2e}"


# ============================================================================ the pinned contract
def test_fgsm_is_one_signed_step_then_clip():
    model, X, y = _problem(_mlp(), n=16)
    g = model.net.input_grad(model.theta, X, y)
    expect = np.clip(X + np.float32(0.07) * np.sign(g), 0, 1)
    r = fgsm(model, X, y, 0.07)
    np.testing.assert_allclose(r.x_adv[0], expect, atol=1e-7, rtol=0)
    assert r.counts["grad_calls"] == 1 and r.counts["forward_calls"] == 2   # clean + final


def test_pgd_iteration_order_matches_kernels():
    """Pinned step order: steepest step, projection onto the ε-ball, clip (the kernels, in that order)."""
    model, X, y = _problem(_mlp(), n=8, lo=-1.0, hi=1.0)
    for norm, proj in (("linf", kernels.project_linf), ("l2", kernels.project_l2)):
        x = X.copy()
        for _ in range(3):
            g = model.net.input_grad(model.theta, x, y)
            x = proj(kernels.steepest_step(x, g, 0.05, norm), X, 0.12, -1.0, 1.0)
        r = pgd(model, X, y, 0.12, norm=norm, alpha=0.05, steps=3, random_start=False)
        np.testing.assert_array_equal(r.x_adv[0], x)


def test_targeted_descends_toward_target_and_margins():
    model, X, y = _problem(_mlp(), n=24)
    r = pgd(model, X, y, 0.5, target="random", steps=20, seed=3)
    assert np.all(r.target != r.y)
    z = model.net.logits(model.theta, r.x_adv[0])
    np.testing.assert_allclose(r.margin[0], margins(z, r.target, True), rtol=1e-6, atol=1e-6)
    assert np.array_equal(r.success[0], z.argmax(-1) == r.target)
    assert r.success.mean() > 0.5
    ll = pgd(model, X, y, 0.2, target="least_likely", steps=2)
    z0 = model.net.logits(model.theta, X).astype(np.float64)
    z0[np.arange(len(y)), y] = np.inf
    assert np.array_equal(ll.target, z0.argmin(-1))


def test_best_iterate_has_largest_margin_and_results_roundtrip(tmp_path):
    model, X, y = _problem(_mlp(), n=20)
    r = pgd(model, X, y, [0.02, 0.1], restarts=3, steps=8, seed=1)
    assert r.x_adv.shape == (2, 20, 1, 5, 8) and r.restart_margin.shape == (2, 3, 20)
    assert np.all(r.margin_best >= r.margin - 1e-9)             # best ⊇ last iterates
    K, N = r.margin.shape
    np.testing.assert_array_equal(r.margin, r.restart_margin[np.arange(K)[:, None], r.chosen_restart,
                                                              np.arange(N)[None]])
    zb = model.net.logits(model.theta, r.x_best.reshape(-1, 1, 5, 8)).reshape(2, 20, 10)
    np.testing.assert_allclose(r.margin_best, margins(zb, y, False), rtol=1e-5, atol=1e-5)
    assert r.counts["grad_calls"] == 8 and r.counts["forward_calls"] == 2
    assert r.counts["grad_rows"] == 8 * 2 * 3 * 20 and r.counts["wall_time_s"] > 0
    back = Result.load(r.save(tmp_path / "r"))
    assert type(back).__name__ == "AttackResult" and back.target is None
    np.testing.assert_array_equal(back.x_adv, r.x_adv)
    r.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_min_eps_grid_and_bisection():
    model, X, y = _problem(_mlp(), n=40, seed=4)
    grid = [0.0, 0.05, 0.1, 0.2, 0.4]
    r = pgd(model, X, y, grid, steps=10, refine=5, seed=0)
    clean_wrong = r.clean_pred != y
    assert np.all(r.min_eps[clean_wrong] == 0)
    fin = np.isfinite(r.min_eps_grid) & ~clean_wrong
    assert fin.any()
    assert np.all(r.min_eps[fin] <= r.min_eps_grid[fin]) and np.all(r.min_eps[fin] > 0)
    k = np.searchsorted(np.asarray(grid), r.min_eps_grid[fin])
    assert np.all(r.success[k, np.flatnonzero(fin)])
    xm = r.x_min[fin].reshape(fin.sum(), -1)
    d = np.abs(xm.astype(np.float64) - X[fin].reshape(fin.sum(), -1)).max(1)
    assert np.all(d <= r.min_eps[fin] + NORM_SLACK)
    assert np.all(model.net.logits(model.theta, r.x_min[fin]).argmax(-1) != y[fin])


# ============================================================================ batching
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_batched_eps_restarts_equal_separate_runs(backend, norm):
    net = _mlp()
    model, X, y = _problem(net, n=12, seed=5)
    model = Model(net, model.theta, (0.0, 1.0), backend=backend)
    eps = [0.03, 0.3, 0.1] if norm == "linf" else [0.2, 1.0, 0.5]
    kw = dict(norm=norm, steps=5, restarts=2, seed=7, target="random")
    full = pgd(model, X, y, eps, **kw)
    for k, e in enumerate(eps):
        one = pgd(model, X, y, e, **kw)
        for f in ("x_adv", "x_best", "success", "margin", "margin_best", "restart_margin",
                  "chosen_restart", "norm_adv"):
            np.testing.assert_array_equal(getattr(full, f)[k], getattr(one, f)[0], err_msg=f)
    assert full.counts["grad_calls"] == 5          # ONE pass for 3 ε × 2 restarts


def test_rows_stacking_agrees_with_members():
    model, X, y = _problem(_mlp(), n=16, seed=6)
    a = pgd(model, X, y, [0.05, 0.2], steps=6, restarts=2, stack="members")
    b = pgd(model, X, y, [0.05, 0.2], steps=6, restarts=2, stack="rows")
    assert np.abs(a.x_adv - b.x_adv).max() < 0.05 + 1e-6     # identical up to BLAS blocking
    assert b.semantics["stack"] == "rows"


# ============================================================================ properties
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["linf", "l2"]), st.floats(0.0, 1.5),
       st.integers(1, 4), st.integers(1, 3), st.booleans(), st.sampled_from([None, "foolbox"]))
def test_perturbation_within_eps_and_inputs_within_bounds(seed, norm, eps, steps, restarts, rs, compat):
    net = Net([Dense(8), Tanh(), Dense(3)], input_shape=(6,))
    model, X, y = _problem(net, n=10, seed=seed, lo=-2.0, hi=3.0)
    restarts = restarts if rs else 1
    r = pgd(model, X, y, [eps, eps / 2], norm=norm, steps=steps, restarts=restarts,
            random_start=rs, seed=seed, compat=compat, refine=1)
    for xs, nm in ((r.x_adv, r.norm_adv), (r.x_best, r.norm_best)):
        assert xs.min() >= -2.0 and xs.max() <= 3.0
        assert np.all(nm <= np.array([eps, eps / 2])[:, None] + NORM_SLACK)
    assert r.x_min.min() >= -2.0 and r.x_min.max() <= 3.0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5))
def test_success_monotone_in_eps_with_shared_seeds(seed, steps):
    """Binary linear model: with restarts sharing their unit draws across ε, raw success is monotone."""
    net = Net([Dense(2)], input_shape=(5,))
    model, X, y = _problem(net, n=30, seed=seed)
    eps = np.array([0.4, 0.0, 0.05, 0.1, 0.2])
    r = pgd(model, X, y, eps, steps=steps, restarts=2, seed=seed)
    o = np.argsort(eps)
    assert np.all(np.diff(r.success[o].astype(int), axis=0) >= 0)
    assert np.all(np.diff(r.success_cum[o].astype(int), axis=0) >= 0)
    mlp = _problem(_mlp(), n=20, seed=seed)
    rc = pgd(mlp[0], mlp[1], mlp[2], eps, steps=steps, seed=seed)
    assert np.all(np.diff(rc.success_cum[o].astype(int), axis=0) >= 0)
    assert np.all(np.diff(rc.robust_accuracy[o]) <= 0)


def test_l2_random_start_distributions():
    """Pinned: uniform in the ball (radius ~ ε·U^(1/D)); torchattacks: radius ~ ε·U (not uniform)."""
    from scipy import stats
    D, n = 8, 4000
    x0 = np.full((n, D), 0.5, np.float32)
    ours = kernels.random_start(x0, 0.1, "l2", 0, 0.0, 1.0)
    r = np.linalg.norm(ours.astype(np.float64) - 0.5, axis=1) / 0.1
    assert stats.kstest(r ** D, "uniform").pvalue > 1e-3
    ta = C.ta_random_start_l2(x0, np.full(n, 0.1), np.random.default_rng(0), 0.0, 1.0)
    r = np.linalg.norm(ta.astype(np.float64) - 0.5, axis=1) / 0.1
    assert stats.kstest(r, "uniform").pvalue > 1e-3


def test_compat_defaults_and_foolbox_restart_choice():
    model, X, y = _problem(_mlp(), n=10)
    r = pgd(model, X, y, compat="torchattacks")
    assert r.eps[0] == pytest.approx(8 / 255) and r.semantics["alpha"] == pytest.approx(2 / 255)
    assert r.semantics["steps"] == 10 and r.semantics["random_start"]
    r = pgd(model, X, y, 0.3, norm="l2", compat="foolbox", restarts=3)
    assert r.semantics["rel_alpha"] == pytest.approx(0.025) and r.semantics["steps"] == 50
    s = r.restart_margin > 0
    first = np.where(s.any(1), s.argmax(1), 0)
    assert np.array_equal(r.chosen_restart, first)
    r = pgd(model, X, y, 0.3, restarts=3)
    s = r.restart_margin > 0
    best = np.where(s.any(1), np.where(s, r.restart_margin, -np.inf).argmax(1), r.restart_margin.argmax(1))
    assert r.semantics["rel_alpha"] == pytest.approx(2.5 / 40)
    assert np.array_equal(r.chosen_restart, best)


def test_logit_grad_matches_finite_differences():
    net = Net([Dense(7), Tanh(), Dense(4)], input_shape=(5,))
    model, X, y = _problem(net, n=6, seed=2, dtype=np.float64)
    c = np.array([0, 1, 2, 3, 1, 0])
    z, J = model.logit_grad(X, c)
    h = 1e-6
    fd = np.empty_like(X)
    for i in range(5):
        e = np.zeros(5)
        e[i] = h
        fd[:, i] = (net.logits(model.theta, X + e)[np.arange(6), c]
                    - net.logits(model.theta, X - e)[np.arange(6), c]) / (2 * h)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)


# ============================================================================ bad input
def test_bad_inputs_raise_clear_errors():
    model, X, y = _problem(_mlp(), n=6)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        pgd(model, X, y, -0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        pgd(model, X, y, [0.1, -1e-3])
    with pytest.raises(ValueError, match="outside the model's bounds"):
        pgd(model, X + 0.5, y, 0.1)
    with pytest.raises(ValueError, match="target equals the label"):
        pgd(model, X, y, 0.1, target=y)
    with pytest.raises(ValueError, match="unknown norm"):
        pgd(model, X, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match="unknown compat"):
        pgd(model, X, y, 0.1, compat="art")
    with pytest.raises(ValueError, match="restarts > 1 needs random_start"):
        bim(model, X, y, 0.1, restarts=2)
    with pytest.raises(ValueError, match="no FGSM with norm 'l2'"):
        fgsm(model, X, y, 0.1, norm="l2", compat="torchattacks")
    with pytest.raises(TypeError, match="eps is required"):
        pgd(model, X, y)
    with pytest.raises(ValueError, match="not both"):
        pgd(model, X, y, 0.1, alpha=0.01, rel_alpha=0.1)
    with pytest.raises(ValueError, match="target mode"):
        pgd(model, X, y, 0.1, target="most_likely")
    with pytest.raises(ValueError, match="shape"):
        pgd(model, X, y[:-1], 0.1)
    wide = Model(model.net, model.theta, (-1.0, 2.0))
    with pytest.raises(ValueError, match="clamps to \\[0, 1\\]"):
        pgd(wide, X, y, 0.1, compat="torchattacks")
    with pytest.raises(ValueError, match="refuse targeted"):
        fgsm(model, X, y, 0.1, compat="foolbox", target="random")
    with pytest.raises(TypeError, match="Model"):
        attack(model.net, X, y, 0.1)
    with pytest.raises(ValueError, match="lo < hi"):
        Model(model.net, model.theta, (1.0, 1.0))
