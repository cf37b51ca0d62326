"""Fidelity of pyquirk.adversarial on MNIST-1D (reduced versions of the tour's numbers).

The baseline MLP (40-100-100-10, Adam 1e-2, batch 100) trained for 1500 steps here (the tour trains
6000). Inputs live in the data's box (``data_bounds`` of train and test, about [−5.5, 4.5], width
≈ 10 standardised units); ε = 0.3 is 3 % of that width.
"""
import numpy as np
import pytest

from pyquirk.adversarial import Model, data_bounds, fgsm, pgd
from pyquirk.adversarial.curves import robust_accuracy_curve
from pyquirk.adversarial.fooling import evolve_fooling, fooling_images, tv_grad
from pyquirk.adversarial.spheres import cap_distance, spheres_experiment, theorem_bound
from pyquirk.adversarial.substitute import papernot_substitute
from pyquirk.adversarial.transfer import disjoint_subsets, train_disjoint, transfer_matrix
from pyquirk.nn import Dense, Net, ReLU

EPS = 0.3


@pytest.fixture(scope="module")
def mnist():
    from pyquirk.data import mnist1d
    from pyquirk.report.baseline import baseline_models
    from pyquirk.train import Adam, fit
    ds = mnist1d(seed=42)
    net = baseline_models()["mlp"]
    run = fit(net, net.init(0), ds.X_train, ds.y_train, Adam(1e-2), steps=1500, batch_size=100, seeds=0)
    model = Model(net, run.theta, data_bounds(ds.X_train, ds.X_test), name="mlp")
    return ds, model


def test_pgd_linf_small_eps_breaks_mlp(mnist):
    ds, model = mnist
    X, y = ds.X_test[:500], ds.y_test[:500]
    r = pgd(model, X, y, [0.1, EPS], steps=40, seed=0)
    assert r.clean_accuracy > 0.55
    assert r.robust_accuracy[1] < 0.10, r.robust_accuracy
    assert EPS <= 0.1 * (model.bounds[1] - model.bounds[0])
    f = fgsm(model, X, y, EPS)
    assert f.robust_accuracy[0] > r.robust_accuracy[1]       # PGD is the stronger attack


def test_robust_curve_one_call(mnist, tmp_path):
    ds, model = mnist
    X, y = ds.X_test[:200], ds.y_test[:200]
    c = robust_accuracy_curve(model, X, y, {"linf": np.linspace(0, 0.4, 5), "l2": np.linspace(0, 2, 5)},
                              steps=10)
    assert set(c.curves) == {"fgsm-linf", "pgd-linf", "fgsm-l2", "pgd-l2"}
    for key, cur in c.curves.items():
        assert cur["accuracy"][0] == pytest.approx(c.clean_accuracy)
        assert np.all(np.diff(cur["accuracy"]) <= 0)
    assert np.all(c.curves["pgd-linf"]["accuracy"] <= c.curves["fgsm-linf"]["accuracy"] + 0.03)
    assert c.counts["grad_calls"] == 2 * (1 + 10)           # 4 curves, each ONE pass over 5 ε
    c.plot(tmp_path / "curve.png")


def test_fooling_images_all_classes(mnist, tmp_path):
    ds, model = mnist
    f = fooling_images(model, steps=300, seed=0)
    assert f.confidence.shape == (10, 1)
    assert f.min_confidence >= 0.9999, f.confidence.ravel()
    assert np.all(f.steps_to_target >= 0)
    assert np.all(model.predict(f.images.reshape(10, 40)) == np.arange(10))
    lo, hi = model.bounds
    assert f.images.min() >= lo and f.images.max() <= hi
    e = evolve_fooling(model, generations=40, seed=0)
    assert e.counts["grad_calls"] == 0 and e.confidence.min() >= 0.99
    f.plot(tmp_path / "fool.png")


def test_tv_gradient_matches_finite_differences():
    x = np.random.default_rng(0).standard_normal((3, 1, 9))
    tv = lambda a: np.abs(np.diff(a, axis=2)).sum()
    g = tv_grad(x, (2,))
    h = 1e-6
    for j in range(9):
        e = np.zeros_like(x)
        e[1, 0, j] = h
        assert (tv(x + e) - tv(x - e)) / (2 * h) == pytest.approx(g[1, 0, j], abs=1e-6)


def test_transfer_between_disjoint_subset_models(mnist, tmp_path):
    ds, model = mnist
    parts = disjoint_subsets(4000, 2, seed=0)
    assert not set(parts[0]) & set(parts[1])
    wide = Net([Dense(256), ReLU(), Dense(10)], input_shape=(40,))
    models = train_disjoint([model.net, wide, wide], ds.X_train, ds.y_train, bounds=model.bounds,
                            parts=[0, 1, 0], steps=300, names=["mlp-A", "wide-B", "wide-A"])
    assert not np.intersect1d(models[0].train_idx, models[1].train_idx).size
    assert np.array_equal(models[0].train_idx, models[2].train_idx)
    tr = transfer_matrix(models, ds.X_test[:400], ds.y_test[:400], EPS, steps=20)
    assert tr.disjoint.tolist() == [[False, True, False], [True, False, True], [False, True, False]]
    assert np.all(np.diag(tr.matrix) > 0.9)
    assert np.all(tr.disjoint_pairs() >= 0.30), tr.matrix
    tr.plot(tmp_path / "transfer.png")


def test_substitute_beats_noise_of_equal_norm(mnist):
    ds, model = mnist
    sub = Net([Dense(100), ReLU(), Dense(100), ReLU(), Dense(10)], input_shape=(40,))
    r = papernot_substitute(model, sub, ds.X_test[:150], ds.X_test[150:650], ds.y_test[150:650], EPS,
                            rounds=5, lam=1.0, tau=3, epochs=10)
    assert list(r.queries) == [150, 300, 600, 1200, 2400]
    assert r.counts["oracle_label_queries"] == 2400      # the last round trains, no new labels
    assert list(r.lambdas) == [1.0, 1.0, 1.0, -1.0]
    assert r.target_error[-1] >= r.noise_error[-1] + 0.12, (r.target_error, r.noise_error)
    assert r.target_error[-1] >= 1.8 * r.noise_error[-1]


def test_sphere_bounds():
    from scipy import stats
    for n in (100, 500):
        for mu in (0.1, 0.01, 1e-4):
            a = stats.norm.ppf(1 - mu)
            asym = (a * stats.norm.cdf(a) + stats.norm.pdf(a)) / np.sqrt(n)
            assert cap_distance(mu, n) == pytest.approx(asym, rel=0.02)
            assert theorem_bound(mu, n) == pytest.approx(a / np.sqrt(n))


def test_spheres_distance_to_errors_within_bound():
    r = spheres_experiment(50, hidden=(128, 128), n_train=4000, steps=600, lr=1e-3, n_error=5000,
                           n_attack=40, attack_steps=20, refine=5, seeds=0)
    assert 0 < r.inner_error_rate < 0.5
    assert r.semantics["unattacked_failures"] == 0
    assert 0 < r.mean_distance <= r.bound_cap, (r.mean_distance, r.bound_cap)


def test_tour_section_smoke(tmp_path):
    import pyquirk.report.adversarial  # noqa: F401  (registers the section)
    from pyquirk.report import run_tour
    opts = dict(steps=300, n_eval=100, transfer_steps=100, rounds=2, curve_points=3, curve_steps=3,
                evolution_generations=5, fooling_steps=30)
    s = run_tour(tmp_path, quick=True, only=["dumb-errors"], options=opts, progress=False)
    sec = s["sections"]["dumb-errors"]
    assert sec["status"] == "ok", sec.get("error")
    assert len(sec["figures"]) == 6 and all((tmp_path / f).exists() for f in sec["figures"])
    m = sec["metrics"]
    assert set(m["checks"]) == {"pgd_adv_acc_below_10pct", "fooling_all_classes_9999",
                                "transfer_at_least_30pct", "substitute_beats_noise"}
    assert m["eps_linf"] == EPS and m["substitute_queries"] == 300          # rounds=2: 150 + 150
