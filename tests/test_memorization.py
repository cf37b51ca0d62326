"""Memorization (Zhang et al. 2017) and double descent: fidelity, exactness, results, errors."""
import numpy as np
import pytest

from pyquirk.data import mnist1d
from pyquirk.memorization import (DoubleDescentResult, MemorizationResult, double_descent,
                                  first_reached, member_seeds, memorization)
from pyquirk.results import Result
from pyquirk.seeds import Seeds
from pyquirk.train import SGD, fit


@pytest.fixture(scope="module")
def zhang():
    """Label noise 0 … 1 on 1000 MNIST-1D examples, MLP 40-128-128-10, SGD, until all fit."""
    return memorization(corruptions=["true", "partial:0.25", "partial:0.5", "partial:0.75",
                                     "random_labels"],
                        n_train=1000, n_test=1000, hidden=(128, 128), n_seeds=1, batch_size=50,
                        steps=2000, eval_every=20)


def test_random_labels_are_memorized_but_do_not_generalize(zhang):
    k = zhang.index("random labels")
    assert (zhang.time_to_fit >= 0).all(), zhang.time_to_fit
    assert zhang.train_acc[zhang.steps == zhang.time_to_fit[k, 0], k, 0] == 1.0
    assert zhang.final_test_acc[k].mean() <= 0.15


def test_time_to_fit_ratio_in_zhang_range(zhang):
    ratio = zhang.time_to_fit_ratio("random_labels", "true")
    print(f"time-to-fit random/true = {ratio:.2f} ({zhang.summary()})")
    assert 1.2 <= ratio <= 10


def test_test_error_rises_with_p(zhang):
    curve = zhang.label_noise_curve()
    np.testing.assert_allclose(curve["p"], [0, 0.25, 0.5, 0.75, 1.0])
    err = curve["test_error"].mean(axis=1)
    assert np.all(np.diff(err) >= -0.03), err          # monotone within noise (SE ~ 1.5 %)
    assert err[-1] - err[0] > 0.2


def test_population_equals_separate_runs_exactly():
    """K corruptions × S seeds in one population = K·S separate fits, bit for bit (reference)."""
    kw = dict(corruptions=["partial:0.5", "random_pixels"], n_train=100, n_test=50, hidden=(16,),
              n_seeds=2, steps=25, eval_every=5, stop_when_fit=False, backend="reference")
    pop = memorization(population=True, **kw)
    loop = memorization(population=False, **kw)
    for f in ("train_loss", "train_acc", "final_train_acc", "final_test_acc", "time_to_fit"):
        np.testing.assert_array_equal(getattr(pop, f), getattr(loop, f), err_msg=f)
    assert pop.train_loss.shape == (6, 2, 2)


def test_member_rule_reproduces_a_single_run():
    """Member (k, s) is fit(net.init(run_s), corrupted data, seeds=run_s) on its own."""
    from pyquirk.data.corruptions import make_corruption
    from pyquirk.memorization import mlp
    ds = mnist1d().subset(n_train=80, n_test=40)
    res = memorization(ds, ["gaussian"], hidden=(8,), n_seeds=2, steps=10, eval_every=5,
                       stop_when_fit=False, backend="reference")
    run = member_seeds(Seeds(), 2)[1]
    d = make_corruption("gaussian")(ds, run)
    net = mlp(40, (8,), 10)
    single = fit(net, net.init(run), d.X_train, d.y_train, SGD(0.05, momentum=0.9), steps=10,
                 batch_size=50, seeds=run, eval_every=5, backend="reference")
    np.testing.assert_array_equal(res.train_loss[:, 0, 1], single.history["train_loss"])


def test_result_roundtrip_and_plot(tmp_path):
    r = memorization(corruptions=["true", "random_labels", "gaussian"], n_train=60, n_test=30,
                     hidden=(8,), n_seeds=2, steps=20, eval_every=5)
    assert isinstance(r, MemorizationResult)
    back = Result.load(r.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.time_to_fit, r.time_to_fit)
    assert back.conditions == r.conditions
    assert np.isnan(r.p[r.index("gaussian")]) and r.p[r.index("random_labels")] == 1.0
    fig = r.plot(tmp_path / "m.png")
    assert len(fig.axes) == 3 and (tmp_path / "m.png").stat().st_size > 1000
    assert set(r.summary()) == {"true", "random labels", "gaussian"}
    with pytest.raises(KeyError, match="no condition"):
        r.index("shuffled pixels")


def test_first_reached():
    steps = np.array([0, 10, 20, 30])
    acc = np.array([[0.1, 0.2], [0.5, 1.0], [1.0, 0.9], [1.0, 1.0]])
    np.testing.assert_array_equal(first_reached(steps, acc, 1.0), [20, 10])
    np.testing.assert_array_equal(first_reached(steps, acc[:, :1] * 0.5, 1.0), [-1])


@pytest.mark.parametrize("kw, err, match", [
    (dict(corruptions=["partial:1.5"]), ValueError, "p must lie in"),
    (dict(corruptions=["flip"]), ValueError, "unknown corruption 'flip'"),
    (dict(corruptions=[]), ValueError, "corruptions is empty"),
    (dict(threshold=0.0), ValueError, "threshold"),
    (dict(threshold=1.5), ValueError, "threshold must lie in"),
    (dict(n_train=10 ** 6), ValueError, "n_train=1000000"),
    (dict(steps=0), ValueError, "steps must be >= 1"),
])
def test_memorization_bad_input(kw, err, match):
    with pytest.raises(err, match=match):
        memorization(**{"n_train": 50, "n_test": 20, "steps": 2, **kw})


# --------------------------------------------------------------------------- double descent
def test_double_descent_peak_at_interpolation_threshold():
    """Random features, 15 % label noise: the test-error peak sits at h = N (#params/C = #train)."""
    N = 100
    widths = [10, 40, 70, 90, 100, 110, 130, 200, 400]
    r = double_descent(widths=widths, n_train=N, n_test=400, noise=0.15, n_seeds=3)
    s = r.summary()
    print(s)
    assert 0.85 * N <= s["peak_width"] <= 1.15 * N
    assert s["peak_n_params"] == s["peak_width"] * r.n_classes
    assert s["interpolation_threshold"]["width"] <= N     # fits the noisy labels from h ≈ N on
    err = r.test_error.mean(axis=1)
    assert err[r.peak] > err[-1] + 0.05 and err[r.peak] > err[:r.peak].min() + 0.05
    assert r.train_error[-1].max() == 0


def test_double_descent_mlp_and_result(tmp_path):
    r = double_descent(model="mlp", widths=[2, 8], n_train=60, n_test=40, n_seeds=2, steps=30)
    assert isinstance(r, DoubleDescentResult) and r.train_error.shape == (2, 2)
    np.testing.assert_array_equal(r.n_params, [51 * 2 + 10 + 2 * 0, 51 * 8 + 10])
    back = Result.load(r.save(tmp_path / "dd"))
    np.testing.assert_array_equal(back.test_error, r.test_error)
    assert len(r.plot().axes) == 1


@pytest.mark.parametrize("kw, match", [
    (dict(noise=-0.1), "noise must lie in"), (dict(model="rbf"), "unknown model 'rbf'"),
    (dict(widths=[5, 3]), "strictly increasing"), (dict(widths=[0, 3]), "positive integers"),
    (dict(n_train=10 ** 6), "n_train=1000000"),
])
def test_double_descent_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        double_descent(**{"widths": [4, 8], "n_train": 30, "n_seeds": 1, **kw})
