"""The MNIST-1D baseline (issue acceptance): accuracy floors, bit-for-bit runs, separate seed streams."""
import numpy as np
import pytest

from pyquirk.data import mnist1d
from pyquirk.report.baseline import TARGETS, baseline_models, model_inputs, train_baselines
from pyquirk.seeds import Seeds
from pyquirk.train import Adam, fit


@pytest.fixture(scope="module")
def quick_baseline():
    return train_baselines(Seeds(), quick=True, progress=False)


def test_baseline_meets_accuracy_floors(quick_baseline):
    """MLP ≥ 60 % and CNN ≥ 85 % test accuracy (the MNIST-1D authors report 68 % and 94 %)."""
    for model, floor in TARGETS.items():
        assert quick_baseline.final[model]["test_acc"] >= floor, (model, quick_baseline.final[model])


def _short_run(seeds, steps=120):
    ds = mnist1d(seed=42)
    net = baseline_models()["cnn"]
    return fit(net, net.init(seeds), model_inputs("cnn", ds.X_train), ds.y_train, Adam(1e-2),
               steps=steps, batch_size=100, seeds=seeds, eval_every=steps)


def test_two_runs_are_bit_for_bit_identical():
    a, b = _short_run(Seeds(init=3, order=5)), _short_run(Seeds(init=3, order=5))
    assert np.array_equal(a.theta, b.theta)
    for key in a.history:
        assert np.array_equal(a.history[key], b.history[key], equal_nan=True), key


def test_order_seed_changes_order_but_not_init():
    a, b = _short_run(Seeds(init=3, order=5)), _short_run(Seeds(init=3, order=6))
    assert np.array_equal(a.theta0, b.theta0)
    assert not np.array_equal(a.theta, b.theta)
