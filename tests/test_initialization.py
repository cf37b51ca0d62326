"""Initialization: scale/scheme outcomes, signal statistics, the divergence guard, transfer and
pre-training."""
import numpy as np
import pytest

from pyquirk.initialization import (InitSweepResult, PretrainResult, TransferResult, init_sweep,
                                    pretraining, signal_stats, transfer)
from pyquirk.memorization._runs import DivergenceGuard, diverged, mlp
from pyquirk.results import Result
from pyquirk.seeds import Seeds
from pyquirk.train import SGD, fit


@pytest.fixture(scope="module")
def sweep():
    return init_sweep(schemes=["glorot_normal", "he_normal"], gains=[0.05, 1.0, 20.0],
                      depths=[6], width=32, n_train=500, n_test=1000, steps=150)


def test_extreme_scales_stay_at_chance_while_he_and_glorot_learn(sweep):
    acc = sweep.test_acc.mean(-1)                                     # [acts, D, A, G]
    print("test acc [act, scheme, gain]:", acc[:, 0].round(3).tolist(), "chance", sweep.chance)
    assert (acc[..., 1] > sweep.chance + 0.12).all()                 # gain 1 learns
    assert (acc[..., 0] < sweep.chance + 0.04).all()                 # too small: chance
    assert (acc[..., 2] < sweep.chance + 0.04).all()                 # too large: chance
    relu = sweep.acts.index("relu")
    assert sweep.diverged[relu, ..., 2, :].all()                     # ReLU explodes
    assert not sweep.diverged[..., 1, :].any()
    assert sweep.learned()[..., 1].all() and not sweep.learned()[..., 0].any()


def test_sweep_result_roundtrip_and_maps(sweep, tmp_path):
    assert isinstance(sweep, InitSweepResult) and sweep.test_acc.shape == (2, 1, 2, 3, 1)
    back = Result.load(sweep.save(tmp_path / "s"))
    np.testing.assert_array_equal(back.diverged, sweep.diverged)
    np.testing.assert_array_equal(back.train_loss, sweep.train_loss)        # NaN where diverged
    assert sweep.cell("relu", 6, "he_normal", 1.0)["diverged"] == 0.0
    from matplotlib.figure import Figure
    for metric in ("test_acc", "train_loss"):
        fig = Figure()
        sweep.draw(fig, metric)
        assert len(fig.axes) == 5                                      # 2×2 maps + colour bar


def test_divergence_guard_leaves_other_members_exact():
    """A member that overflows is NaN; the others compute exactly what they would alone."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)).astype(np.float32), rng.integers(0, 3, 64)
    net = mlp(5, [16, 16, 16], 3)
    good = net.init(Seeds(init=1))
    bad = net.init(Seeds(init=2), gain=300.0)
    kw = dict(steps=12, batch_size=16, eval_every=4, backend="reference")
    with np.errstate(all="ignore"):
        pop = fit(DivergenceGuard(net), np.stack([good, bad]), X, y, SGD(0.5), seeds=[0, 0], **kw)
    alone = fit(net, good, X, y, SGD(0.5), seeds=0, **kw)
    assert diverged(pop.theta).tolist() == [False, True]
    np.testing.assert_array_equal(pop.theta[0], alone.theta)
    np.testing.assert_array_equal(pop.history["train_loss"][:, 0], alone.history["train_loss"])
    assert np.isnan(pop.history["train_loss"][-1, 1])


def test_signal_stats_follow_the_gain():
    s = signal_stats(schemes=["he_normal", "lecun_normal"], gains=[0.5, 1.0, 2.0], acts=["relu", "tanh"],
                     depth=8, width=64, n_probe=200, n_seeds=2)
    relu, tanh = s.acts.index("relu"), s.acts.index("tanh")
    f = np.log(s.forward_std)                                         # [acts, A, G, L]
    slope = np.diff(f[..., :-1], axis=-1).mean(-1)                    # per-layer log growth
    # He at gain 1 preserves the ReLU signal; gain g multiplies it by about g per layer
    assert abs(slope[relu, 0, 1]) < 0.05
    np.testing.assert_allclose(slope[relu, 0, [0, 2]], np.log([0.5, 2.0]), atol=0.07)
    # LeCun at gain 1 halves the ReLU variance per layer: std × 1/√2
    assert slope[relu, 1, 1] == pytest.approx(np.log(np.sqrt(0.5)), abs=0.07)
    # tanh with a small gain: vanishing like g per layer; gradients shrink towards the input too
    assert slope[tanh, 1, 0] == pytest.approx(np.log(0.5), abs=0.1)
    b = np.log(s.backward_rms[relu, 0])                               # [G, L]
    assert b[0, 0] < b[0, -2] - 1 and b[2, 0] > b[2, -2] + 1          # vanishing / exploding backward
    assert abs(b[1, 0] - b[1, -2]) < 1                                # He at gain 1: preserved
    assert np.isfinite(s.grad_norm).all()
    assert s.backward_rms.shape == s.forward_std.shape == (2, 2, 3, 9)
    assert len(s.plot().axes) == 4


def test_transfer_copies_and_freezes(tmp_path):
    r = transfer(hidden=(16, 16), n_train_a=200, n_train_b=100, n_seeds=2, steps=40, base_steps=40,
                 batch_size=50)
    assert isinstance(r, TransferResult)
    assert r.n_layers.tolist() == [0, 1, 1, 2, 2] and r.frozen.tolist() == [False, True, False, True, False]
    net = mlp(40, (16, 16), 5)
    first = net.param_mask(["0"])
    both = net.param_mask(["0", "2"])
    for k, (n, fz) in enumerate(zip(r.n_layers, r.frozen)):
        sel = first if n == 1 else both
        if n and fz:      # frozen copies end exactly where the task-A nets ended
            np.testing.assert_array_equal(r.theta[k][:, sel], r.base_theta[:, sel])
        elif n:
            assert not np.array_equal(r.theta[k][:, sel], r.base_theta[:, sel])
    nn, acc = r.curve(frozen=True)
    assert nn.tolist() == [0, 1, 2] and acc.shape == (3, 2)
    back = Result.load(r.save(tmp_path / "t"))
    np.testing.assert_array_equal(back.test_acc, r.test_acc)
    assert len(r.plot().axes) == 1


def test_pretraining_smoke():
    r = pretraining(hidden=(16, 16), n_train=100, n_test=100, n_seeds=3, steps=30, pretrain_steps=30,
                    batch_size=50)
    assert isinstance(r, PretrainResult) and r.test_acc.shape == (2, 3) and r.recon_loss.shape == (2, 3)
    assert 0 <= r.levene_p <= 1 and 0 <= r.welch_p <= 1
    assert np.isfinite(r.recon_loss).all()
    assert len(r.plot().axes) == 1


@pytest.mark.parametrize("kw, err, match", [
    (dict(schemes=["xavier"]), ValueError, "unknown scheme 'xavier'"),
    (dict(gains=[-1.0]), ValueError, "gains must hold positive"),
    (dict(acts=["gelu"]), ValueError, "unknown act 'gelu'"),
    (dict(depths=[0]), ValueError, "depths must hold positive"),
    (dict(n_train=10 ** 6), ValueError, "n_train=1000000"),
])
def test_init_sweep_bad_input(kw, err, match):
    with pytest.raises(err, match=match):
        init_sweep(**{"n_train": 50, "steps": 1, "depths": [1], "gains": [1.0], **kw})


def test_signal_stats_bad_input():
    with pytest.raises(ValueError, match="n_probe=99999"):
        signal_stats(n_probe=99999)
    with pytest.raises(ValueError, match="two halves"):
        from pyquirk.data import Dataset
        rng = np.random.default_rng(0)
        ds = Dataset(rng.random((30, 4)).astype(np.float32), rng.integers(0, 3, 30),
                     rng.random((9, 4)).astype(np.float32), rng.integers(0, 3, 9), n_classes=3)
        transfer(ds)
