"""Fidelity on MNIST-1D (reduced settings; the tour and docs/compression.md have the full figures), the
distillation gradient, the experiments' results and the tour section."""
import numpy as np
import pytest
from _tol import assert_close

from pyquirk.compression import (DistillationResult, PruningCurve, SizeReport, TicketResult, distill,
                                 distill_loss_grad, finetune_shared, lottery_ticket, per_round_fraction,
                                 pruning_curve, share_weights, size_report, train_ensemble, vjp_logits)
from pyquirk.data import mnist1d
from pyquirk.nn import Dense, Net, ReLU, Tanh
from pyquirk.results import Result
from pyquirk.seeds import Seeds


def mlp(width):
    return Net([Dense(width), ReLU(), Dense(width), ReLU(), Dense(10)], input_shape=(40,))


@pytest.fixture(scope="module")
def ds():
    return mnist1d(seed=42)


@pytest.fixture(scope="module")
def tickets(ds):
    """The baseline MLP (40-100-100-10), 'global' preset (output layer kept), 3 rounds to 90 %, for
    three initialisations: one run's accuracy moves by ±1.5 points with the rounding of the backend's
    GEMMs (training is chaotic), so the claim is on their mean (docs/compression.md)."""
    return [lottery_ticket(mlp(100), ds, 3, preset="global", p=per_round_fraction(0.9, 3), steps=1000,
                           controls=("reinit",), seeds=Seeds(init=s)) for s in range(3)]


def test_ticket_at_90_percent_global_sparsity_costs_at_most_one_point(tickets):
    for t in tickets:
        assert t.scope_sparsity[-1] == pytest.approx(0.9, abs=5e-4)
    dense = np.mean([t.test_acc["ticket"][0] for t in tickets])
    sparse = np.mean([t.test_acc["ticket"][-1] for t in tickets])
    assert sparse >= dense - 0.01, (dense, sparse)


def test_ticket_beats_random_reinit_at_high_sparsity(tickets):
    high = np.flatnonzero(tickets[0].scope_sparsity >= 0.8)
    ticket = np.mean([t.test_acc["ticket"][high] for t in tickets], axis=0)
    reinit = np.mean([t.test_acc["reinit"][high] for t in tickets], axis=0)
    assert np.all(ticket > reinit), (ticket, reinit)
    for t in tickets:
        assert np.all(np.diff(t.masks.sum(1)) < 0) and not (t.masks[1:] & ~t.masks[:-1]).any()


def test_distilled_student_beats_hard_labels_alone(ds):
    teacher_net = mlp(100)
    teacher = train_ensemble(teacher_net, ds, 3, steps=600, seeds=Seeds())
    res = distill(mlp(32), (teacher_net, teacher.theta), ds, temperatures=(2.0, 8.0), alpha=0.5, steps=600,
                  seeds=Seeds())
    assert res.teacher_acc > max(res.teacher_members_acc)          # the ensemble is the better teacher
    assert res.best_distilled[1] > res.hard_acc, res.test_acc
    assert np.array_equal(res.alphas, [0.0, 0.5, 0.5])


# ----------------------------------------------------------------------------------- distillation maths
def test_vjp_logits_equals_the_engine_gradient_for_hard_ce():
    net = Net([Dense(7), Tanh(), Dense(4)], input_shape=(5,))
    rng = np.random.default_rng(0)
    theta = np.stack([net.init(s, dtype=np.float64) for s in range(2)])
    X, y = rng.standard_normal((9, 5)), rng.integers(0, 4, 9)
    z, g = vjp_logits(net, theta, X, lambda z: (np.exp(z) / np.exp(z).sum(-1, keepdims=True) - np.eye(4)[y]) / 9)
    assert_close(g, net.grad(theta, X, y, backend="reference"), "exact", np.float64, "VJP vs grad")
    assert_close(z, net.logits(theta, X), "exact", np.float64, "logits")


def test_distill_loss_gradient_by_finite_differences():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 6, 5))
    y = rng.integers(0, 5, 6)
    q = rng.dirichlet(np.ones(5), size=(3, 6))
    T, a = np.array([1.0, 2.0, 7.0]), np.array([0.0, 0.5, 0.9])
    loss, g = distill_loss_grad(z, y, q, T, a)
    h = 1e-6
    fd = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        lp, lm = distill_loss_grad(zp, y, q, T, a)[0], distill_loss_grad(zm, y, q, T, a)[0]
        fd[idx] = (lp[idx[0]] - lm[idx[0]]) / (2 * h)
    assert_close(g, fd, "fd", np.float64, "∂L/∂z")
    # α = 0 is plain cross-entropy; the soft term at q = onehot and T = 1 is cross-entropy too
    ce = -np.log(np.exp(z[0]) / np.exp(z[0]).sum(-1, keepdims=True))[np.arange(6), y].mean()
    assert loss[0] == pytest.approx(ce)


def test_distill_validates(ds):
    net = mlp(8)
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        distill(net, (net, net.init(0)), ds, temperatures=(0.0,), steps=1)
    with pytest.raises(ValueError, match="alpha must lie in"):
        distill(net, (net, net.init(0)), ds, alpha=0.0, steps=1)


# ----------------------------------------------------------------------------------- results
def small_experiments(tmp_path):
    ds = mnist1d(seed=42)
    net = mlp(16)
    curve = pruning_curve(net, ds, [0.5, 0.9], dense_steps=40, retrain_steps=20)
    tk = lottery_ticket(net, ds, 2, preset="frankle-carbin", steps=30, rewind=10)
    sw = share_weights(net, tk.theta_ticket, tk.masks[-1], bits=3)
    sw = finetune_shared(net, sw, ds, steps=10)
    size = size_report(net, tk.masks[-1], sw)
    teacher = train_ensemble(net, ds, 2, steps=20)
    dist = distill(mlp(8), (net, teacher.theta), ds, temperatures=(2.0,), steps=20, eval_every=10)
    return {"curve": curve, "ticket": tk, "shared": sw, "size": size, "distillation": dist}


def test_results_save_load_and_plot(tmp_path):
    res = small_experiments(tmp_path)
    assert isinstance(res["curve"], PruningCurve) and isinstance(res["ticket"], TicketResult)
    assert isinstance(res["size"], SizeReport) and isinstance(res["distillation"], DistillationResult)
    tk = res["ticket"]
    assert tk.semantics["rewind"] == 10 and tk.semantics["round_steps"] == 20
    assert tk.semantics["scope"] == "layer" and tk.semantics["output_p"] == 0.1
    assert res["distillation"].history_test_acc.shape == (3, 2)
    for name, r in res.items():
        back = Result.load(r.save(tmp_path / name))
        assert type(back) is type(r)
        for k, v in r.to_dict().items():
            assert back.to_dict()[k] == v, (name, k)
        r.plot(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_lottery_ticket_validates(ds):
    net = mlp(8)
    with pytest.raises(ValueError, match="unknown preset"):
        lottery_ticket(net, ds, 1, preset="han")
    with pytest.raises(ValueError, match="rewind step must lie"):
        lottery_ticket(net, ds, 1, rewind=50, steps=10)
    with pytest.raises(ValueError, match=r"\bp must lie in"):
        lottery_ticket(net, ds, 1, p=1.0, steps=10)
    with pytest.raises(ValueError, match="unknown controls"):
        lottery_ticket(net, ds, 1, controls=("shuffle",), steps=10)


def test_tour_section_runs_quick(tmp_path, monkeypatch):
    from pyquirk.report import compression_section as sec
    from pyquirk.report.tour import TourContext
    monkeypatch.setitem(sec.SETTINGS, "quick_steps", 30)
    monkeypatch.setitem(sec.SETTINGS, "quick_rounds", 2)
    monkeypatch.setitem(sec.SETTINGS, "quick_finetune", 5)
    monkeypatch.setitem(sec.SETTINGS, "sparse_N", 8)
    ctx = TourContext(tmp_path, True, Seeds(), show_progress=False, section="compression")
    out = sec.compression_section(ctx)
    assert len(ctx.figures) == 4 and out.metrics["ticket_scope_sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert {"ratio_total", "student_distilled_acc", "ticket_test_acc", "reinit_test_acc"} <= set(out.metrics)
