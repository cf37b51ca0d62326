"""pyquirk.train: optimizers against torch.optim, masked updates, the loop's order/population rules."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _tol import assert_close
from nets import cnn1d, mlp
from pyquirk.results import Result
from pyquirk.seeds import Seeds
from pyquirk.train import SGD, Adam, TrainResult, fit, make_optimizer


def _torch():
    """torch as an oracle: skipped when missing, unless PYQUIRK_REQUIRE_ORACLES=1 (then it must import)."""
    if os.environ.get("PYQUIRK_REQUIRE_ORACLES") == "1":
        import torch
        return torch
    return pytest.importorskip("torch")


def _data(net, n=24, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n,) + net.input_shape).astype(dtype)
    return X, rng.integers(0, net.n_outputs, n)


def _bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


OPTS = {
    "sgd": (SGD(0.1), lambda t, p: t.optim.SGD(p, lr=0.1)),
    "momentum": (SGD(0.1, momentum=0.9), lambda t, p: t.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov-wd": (SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                    lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "adam": (Adam(0.01), lambda t, p: t.optim.Adam(p, lr=0.01)),
    "adam-wd": (Adam(0.003, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1),
                lambda t, p: t.optim.Adam(p, lr=0.003, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
}


# ------------------------------------------------------------------------------------ optimizers
@pytest.mark.parametrize("name", sorted(OPTS))
def test_optimizer_matches_torch(name):
    torch = _torch()
    ours, make_theirs = OPTS[name]
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((3, 11))                       # a population [E, P]: elementwise anyway
    grads = rng.standard_normal((6, 3, 11))
    p = torch.nn.Parameter(torch.tensor(theta))
    theirs = make_theirs(torch, [p])
    state = ours.init(theta)
    for g in grads:
        theta, state = ours.step(theta, g, state)
        p.grad = torch.tensor(g)
        theirs.step()
        assert_close(theta, p.detach().numpy(), "torch", np.float64, what=name)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), name=st.sampled_from(sorted(OPTS)), pop=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_masked_entries_bitwise_unchanged(seed, name, pop, dtype):
    opt = OPTS[name][0]
    rng = np.random.default_rng(seed)
    shape = (3, 17) if pop else (17,)
    theta0 = rng.standard_normal(shape).astype(dtype)
    mask = rng.random(shape if pop and seed % 2 else shape[-1:]) < 0.5
    m = np.broadcast_to(mask, shape)
    theta, state = theta0, opt.init(theta0)
    ref, ref_state = theta0, opt.init(theta0)
    for _ in range(3):
        g = rng.standard_normal(shape).astype(dtype)
        g_frozen = np.where(m, g, np.nan).astype(dtype)        # frozen gradients are never read
        theta, state = opt.step(theta, g_frozen, state, mask)
        ref, ref_state = opt.step(ref, g, ref_state)
    assert _bits_equal(theta[~m], theta0[~m])
    assert _bits_equal(theta[m], ref[m])                       # trainable entries: the unmasked update
    for key, val in state.items():
        if isinstance(val, np.ndarray):
            assert np.all(val[~m] == 0), key


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans(),
       wd=st.sampled_from([0.0, 0.01]), dtype=st.sampled_from([np.float32, np.float64]))
def test_sgd_step_is_the_literal_update_bitwise(seed, momentum, nesterov, wd, dtype):
    """SGD.step's fused form (one array per operation) gives the bits of the docstring's equations."""
    nesterov = nesterov and momentum > 0
    rng = np.random.default_rng(seed)
    theta, v = (rng.standard_normal((2, 4, 33)) * 10.0 ** rng.integers(-3, 4, (2, 1, 33))).astype(dtype)
    g = rng.standard_normal((4, 33)).astype(dtype)
    opt = SGD(0.037, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    new, state = opt.step(theta, g, {"t": 0, "velocity": v if momentum else None})
    g = g + wd * theta if wd else g
    v = momentum * v + g
    d = (g + momentum * v if nesterov else v) if momentum else g
    assert _bits_equal(new, theta - 0.037 * d)
    assert state["velocity"] is None if not momentum else _bits_equal(state["velocity"], v)


@pytest.mark.parametrize("bad, err, word", [
    (lambda: SGD(0.0), ValueError, "lr"), (lambda: SGD(float("nan")), ValueError, "lr"),
    (lambda: SGD("0.1"), TypeError, "lr"), (lambda: SGD(0.1, momentum=1.0), ValueError, "momentum"),
    (lambda: SGD(0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: SGD(0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda: Adam(betas=(0.9, 1.0)), ValueError, "betas"), (lambda: Adam(eps=0), ValueError, "eps"),
    (lambda: make_optimizer("sgd", lr=0.1, momentun=0.9), TypeError, "momentun"),
    (lambda: make_optimizer("rmsprop", lr=0.1), ValueError, "optimizer"),
    (lambda: SGD(0.1).step(np.zeros(3), np.zeros(3), SGD(0.1).init(np.zeros(3)), np.ones(4, bool)),
     ValueError, "mask"),
    (lambda: SGD(0.1).step(np.zeros(3), np.zeros(3), SGD(0.1).init(np.zeros(3)), np.ones(3)),
     TypeError, "mask"),
])
def test_optimizer_bad_inputs(bad, err, word):
    with pytest.raises(err, match=word):
        bad()


def test_make_optimizer_round_trips_config():
    for opt in (SGD(0.1, momentum=0.5, nesterov=True), Adam(0.01, betas=(0.8, 0.99))):
        assert make_optimizer(opt.config()) == opt


# ------------------------------------------------------------------------------------ the loop
REF = "reference"   # the exactness claims are about the reference backend


@pytest.mark.parametrize("arch, dtype", [("mlp", np.float64), ("mlp", np.float32), ("cnn1d", np.float32),
                                         ("cnn1d", np.float64)])
def test_population_equals_separate_runs_bitwise(arch, dtype):
    net = mlp("relu") if arch == "mlp" else cnn1d("tanh")
    X, y = _data(net, n=22, dtype=dtype)                        # 22 = 3 batches of 8, the last partial
    E = 3
    theta0 = np.stack([net.init(Seeds(init=e), dtype=dtype) for e in range(E)])
    y_member = np.stack([np.random.default_rng(e).permutation(y) for e in range(E)])
    mask = np.random.default_rng(5).random((E, net.n_params)) < 0.8
    seeds = [Seeds(order=10 + e) for e in range(E)]
    opt = SGD(0.05, momentum=0.9)
    pop = fit(net, theta0, X, y_member, opt, epochs=2, batch_size=8, seeds=seeds, mask=mask,
              eval_data=(X[:5], y[:5]), record_every=2, backend=REF)
    assert pop.theta.shape == (E, net.n_params) and pop.history["train_acc"].shape == (3, E)
    for e in range(E):
        one = fit(net, theta0[e], X, y_member[e], opt, epochs=2, batch_size=8, seeds=seeds[e],
                  mask=mask[e], eval_data=(X[:5], y[:5]), record_every=2, backend=REF)
        assert _bits_equal(one.theta, pop.theta[e]), f"member {e}"
        assert _bits_equal(one.trajectory, pop.trajectory[:, e])
        for key in ("train_loss", "train_acc", "test_loss", "batch_loss"):
            assert _bits_equal(one.history[key], pop.history[key][:, e]), key


def test_population_equals_separate_runs_bitwise_wider_conv():
    from pyquirk.nn import Conv1d, Dense, Flatten, MaxPool, Net, ReLU
    net = Net([Conv1d(16, 5, padding=2), ReLU(), MaxPool(2), Flatten(), Dense(3)], input_shape=(1, 40))
    X, y = _data(net, n=40)
    theta0 = np.stack([net.init(e, dtype=np.float64) for e in range(3)])
    pop = fit(net, theta0, X, y, SGD(0.1), batch_size=20, seeds=[0, 1, 2], backend=REF)
    for e in range(3):
        one = fit(net, theta0[e], X, y, SGD(0.1), batch_size=20, seeds=e, backend=REF)
        assert _bits_equal(one.theta, pop.theta[e]), f"member {e}"


def test_single_run_is_member_zero_and_members_differ():
    net = mlp("relu")
    X, y = _data(net)
    theta0 = net.init(0)
    opt = Adam(0.01)
    pop = fit(net, np.stack([theta0] * 3), X, y, opt, epochs=2, batch_size=5, seeds=Seeds(order=7), backend=REF)
    one = fit(net, theta0, X, y, opt, epochs=2, batch_size=5, seeds=Seeds(order=7), backend=REF)
    assert _bits_equal(one.theta, pop.theta[0])
    assert not np.array_equal(pop.theta[0], pop.theta[1])     # different order streams


def test_reproducible_and_order_seed_leaves_init_alone():
    net = mlp("tanh")
    X, y = _data(net)
    s = Seeds(init=3, order=4)
    runs = [fit(net, net.init(s), X, y, SGD(0.1, momentum=0.9), epochs=3, batch_size=7, seeds=s,
                record_every=1) for _ in range(2)]
    assert _bits_equal(runs[0].theta, runs[1].theta)
    assert _bits_equal(runs[0].trajectory, runs[1].trajectory)
    s2 = s.replace(order=5)
    assert _bits_equal(net.init(s2), net.init(s))
    other = fit(net, net.init(s2), X, y, SGD(0.1, momentum=0.9), epochs=3, batch_size=7, seeds=s2)
    assert _bits_equal(other.theta0, runs[0].theta0) and not np.array_equal(other.theta, runs[0].theta)


def test_given_order_is_honoured_with_partial_last_batch():
    net = mlp("relu")
    X, y = _data(net, n=10)
    rng = np.random.default_rng(0)
    order = np.stack([rng.permutation(10) for _ in range(2)])  # [epochs=2, N]
    opt = SGD(0.1, momentum=0.5)
    res = fit(net, net.init(0), X, y, opt, batch_size=4, order=order, backend=REF)
    assert res.steps_done == 6 and res.semantics["drop_last"] is False   # 4 + 4 + 2 per epoch
    theta, state = net.init(0), opt.init(net.init(0))
    for row in order:
        for j in range(0, 10, 4):
            idx = row[j:j + 4]
            theta, state = opt.step(theta, net.grad(theta, X[idx], y[idx], backend=REF), state)
    assert _bits_equal(res.theta, theta)
    # per-member orders [E, epochs, N]: member e equals a single run with order[e]
    E_order = np.stack([order, order[::-1]])
    pop = fit(net, np.stack([net.init(0)] * 2), X, y, opt, batch_size=4, order=E_order, backend=REF)
    assert _bits_equal(pop.theta[0], theta)
    assert _bits_equal(pop.theta[1], fit(net, net.init(0), X, y, opt, batch_size=4, order=order[::-1],
                                         backend=REF).theta)
    # one order shared by all members (the batch itself is shared, [b, ...], and broadcast)
    shared = fit(net, np.stack([net.init(1), net.init(0)]), X, y, opt, batch_size=4, order=order, backend=REF)
    assert _bits_equal(shared.theta[1], theta)


def test_steps_override_epochs_and_1d_order_repeats():
    net = mlp("relu")
    X, y = _data(net, n=10)
    res = fit(net, net.init(0), X, y, SGD(0.1), steps=7, batch_size=4, order=np.arange(10), eval_every=3)
    assert res.steps_done == 7
    np.testing.assert_array_equal(res.history["steps"], [0, 3, 6, 7])
    with pytest.raises(ValueError, match="order covers 1 epoch"):
        fit(net, net.init(0), X, y, SGD(0.1), steps=7, batch_size=4, order=np.arange(10)[None])


def _blobs(n=40):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, 4)) * 0.3 + 2.0 * np.eye(4)[y]
    return X, y


def test_stop_at_time_to_fit():
    net = mlp("tanh")
    X, y = _blobs()
    one = fit(net, net.init(0, dtype=np.float64), X, y, SGD(0.05, momentum=0.9), epochs=50, batch_size=10,
              eval_every=2, stop_at=1.0)
    assert one.time_to_fit > 0 and one.steps_done == one.time_to_fit and one.steps_done % 2 == 0
    assert one.history["train_acc"][-1] == 1.0 and one.history["train_acc"][-2] < 1.0
    theta0 = np.stack([net.init(s, dtype=np.float64) for s in range(3)])
    pop = fit(net, theta0, X, y, SGD(0.05, momentum=0.9), epochs=50, batch_size=10, eval_every=2,
              stop_at=1.0, seeds=[0, 1, 2])
    assert pop.time_to_fit.shape == (3,) and np.all(pop.time_to_fit > 0)
    assert pop.steps_done == pop.time_to_fit.max() and pop.time_to_fit[0] == one.time_to_fit
    never = fit(net, net.init(0), X, y, SGD(1e-4), steps=2, stop_at=1.0)
    assert never.time_to_fit == -1 and never.steps_done == 2


def test_history_trajectory_save_load_plot(tmp_path):
    net = mlp("relu")
    X, y = _data(net, n=20)
    E = 2
    res = fit(net, np.stack([net.init(e) for e in range(E)]), X, y, {"name": "sgd", "lr": 0.1}, epochs=3,
              batch_size=8, eval_data=(X[:6], y[:6]), eval_every=4, record_every=3)
    h = res.history
    np.testing.assert_array_equal(h["steps"], [0, 4, 8, 9])
    assert h["train_loss"].shape == h["test_acc"].shape == (4, E) and np.all(np.isnan(h["batch_loss"][0]))
    np.testing.assert_array_equal(res.trajectory_steps, [0, 3, 6, 9])
    assert res.trajectory.shape == (4, E, net.n_params) and res.trajectory.dtype == np.float32
    assert _bits_equal(res.trajectory[-1], res.theta) and _bits_equal(res.trajectory[0], res.theta0)
    assert res.counts["grad_calls"] == 9 and res.wall_time > 0 and res.population == E
    assert _bits_equal(h["train_loss"][-1], net.loss(res.theta, X, y))       # one forward, same values
    assert _bits_equal(h["test_acc"][-1], net.accuracy(res.theta, X[:6], y[:6]))
    back = Result.load(res.save(tmp_path / "r"))
    assert isinstance(back, TrainResult) and _bits_equal(back.theta, res.theta)
    assert back.semantics == res.to_dict()["semantics"]
    res.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_mse_targets_and_per_member_data():
    net = mlp("tanh", loss="mse")
    X, y = _data(net, n=12)
    T = np.eye(3)[y]                                           # float targets [N, C]
    res = fit(net, net.init(0, dtype=np.float64), X, T, Adam(0.01), epochs=2, batch_size=5)
    assert _bits_equal(res.history["train_loss"][-1], net.loss(res.theta, X, T))
    assert res.history["train_acc"][-1] == net.accuracy(res.theta, X, y)
    Xe = np.stack([X, X[::-1]])                                # per-member inputs [E, N, ...]
    pop = fit(net, np.stack([net.init(0, dtype=np.float64)] * 2), Xe, y, SGD(0.1), batch_size=5,
              seeds=np.array([3, 4]), backend=REF)
    one = fit(net, net.init(0, dtype=np.float64), X[::-1], y, SGD(0.1), batch_size=5, seeds=4, backend=REF)
    assert _bits_equal(pop.theta[1], one.theta) and pop.seeds["order"] == [3, 4]


# ------------------------------------------------------------------------------------ bad inputs
def _fit_bad(**kw):
    net = mlp("relu")
    X, y = _data(net, n=10)
    args = dict(net=net, theta0=net.init(0), X=X, y=y, optimizer=SGD(0.1))
    args.update(kw)
    return fit(args.pop("net"), args.pop("theta0"), args.pop("X"), args.pop("y"), args.pop("optimizer"), **args)


@pytest.mark.parametrize("kw, err, word", [
    (dict(optimizer="sgd"), TypeError, "lr"),                              # sgd without lr
    (dict(mask=np.ones(5, bool)), ValueError, "mask"),
    (dict(order=np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 8])), ValueError, "order"),
    (dict(order=np.arange(9)), ValueError, "order"),
    (dict(order=np.arange(10.0)), TypeError, "order"),
    (dict(order=np.zeros((2, 2, 10), int)), ValueError, "order"),          # per-member order, single θ
    (dict(X=np.zeros((0, 4))), ValueError, "X"),
    (dict(y=np.full(10, 3)), ValueError, "y"),
    (dict(y=np.zeros(9, int)), ValueError, "y"),
    (dict(y=np.zeros(10)), TypeError, "y"),
    (dict(theta0=np.zeros(7)), ValueError, "theta0"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(steps=1.5), TypeError, "steps"),
    (dict(seeds=[0, 1]), ValueError, "seeds"),
    (dict(eval_data=np.zeros((3, 4))), TypeError, "eval_data"),
    (dict(eval_data=(np.zeros((3, 5)), np.zeros(3, int))), ValueError, "eval_data"),
    (dict(stop_metric="acc"), ValueError, "stop_metric"),
    (dict(stop_at=1.0, stop_metric="test_acc"), ValueError, "eval_data"),
    (dict(stop_at=float("nan")), ValueError, "stop_at"),
    (dict(backend="gpu"), ValueError, "backend"),
])
def test_fit_bad_inputs(kw, err, word):
    with pytest.raises(err, match=word):
        _fit_bad(**kw)
