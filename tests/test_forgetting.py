"""pyquirk.forgetting (issue 9): metrics against hand-worked matrices, scenarios, the head loss,
EWC's Fisher against single-example gradients, HAT's conditioning, replay memories, bad inputs.

The slow fidelity checks (naive forgets; EWC, replay and HAT cut forgetting) live in
tests/test_forgetting_fidelity.py.
"""
from fractions import Fraction

import numpy as np
import pytest
from _tol import assert_close

from pyquirk.data import mnist1d
from pyquirk.forgetting import metrics as M
from pyquirk.forgetting.loop import continual_mlp, head_cross_entropy, learn
from pyquirk.forgetting.scenarios import permuted, rotated, shifted, split
from pyquirk.forgetting.strategies import (EWC, HAT, Naive, Replay, conditioning, fisher_diagonal,
                                           hat_structure, make_strategy)
from pyquirk.forgetting.strategies.replay import class_balanced_update, reservoir_update
from pyquirk.nn import Dense, Gate, Net, ReLU
from pyquirk.train import SGD


@pytest.fixture(scope="module")
def ds():
    return mnist1d()


# ----------------------------------------------------------------------------------------------
# metrics: a hand-worked 3-task matrix with dyadic entries, so every value below is exact
# ----------------------------------------------------------------------------------------------
R3 = np.array([[0.75, 0.125, 0.25],
               [0.875, 0.5, 0.125],      # task 0 improves after task 1 (backward transfer) ...
               [0.5, 0.375, 0.625]])     # ... then is forgotten
B3 = np.array([0.125, 0.25, 0.125])       # accuracies at θ₀
J3 = np.array([[0.75, np.nan, np.nan],    # joint training on tasks 0..t
               [0.875, 0.625, np.nan],
               [0.875, 0.625, 0.75]])
A_R3 = np.array([0.5, 0.5, 0.25])


def test_metrics_hand_worked():
    F = Fraction
    # ACC = (0.5 + 0.375 + 0.625) / 3
    assert M.acc(R3) == float((F(1, 2) + F(3, 8) + F(5, 8)) / 3) == 0.5
    # BWT = ((0.5 − 0.75) + (0.375 − 0.5)) / 2 = −0.1875   (negative: forgetting)
    assert M.bwt(R3) == -0.1875
    # last-based forgetting (Avalanche) = ((0.75 − 0.5) + (0.5 − 0.375)) / 2 = +0.1875 = −BWT
    assert M.forgetting_last(R3) == 0.1875 == -M.bwt(R3)
    # max-based (Chaudhry): task 0 peaked at 0.875 after task 1: ((0.875 − 0.5) + (0.5 − 0.375)) / 2
    assert M.forgetting_max(R3) == 0.25
    assert M.forgetting_max(R3, k=1) == 0.75 - 0.875          # after task 1: task 0 improved
    assert M.per_task_forgetting(R3, "max").tolist() == [0.375, 0.125]
    # FWT = ((R[0,1] − b1) + (R[1,2] − b2)) / 2 = ((0.125 − 0.25) + (0.125 − 0.125)) / 2
    assert M.fwt(R3, B3) == -0.0625
    # ρ after the last task: τ0: (0.5−0.5)/(0.875−0.5) − 1 = −1; τ1: (0.375−0.5)/(0.625−0.5) − 1 = −2;
    # τ2: (0.625−0.25)/(0.75−0.25) − 1 = −0.25; mean −13/12
    assert M.forgetting_ratio(R3, J3, A_R3, per_task=True).tolist() == [-1.0, -2.0, -0.25]
    assert M.forgetting_ratio(R3, J3, A_R3) == float(F(-13, 12))
    # ρ after task 1 reads row 1 of the joint matrix: τ0: (0.875−0.5)/(0.875−0.5) − 1 = 0; τ1: −1
    assert M.forgetting_ratio(R3, J3, A_R3, t=1) == -0.5
    # intransigence against single-task accuracies (0.875, 0.625, 0.75): (0.125 + 0.125 + 0.125) / 3
    assert M.intransigence(R3, [0.875, 0.625, 0.75]) == 0.125
    s = M.summarize(R3, B3, J3, A_R3)
    assert s["acc"] == 0.5 and s["bwt"] == -0.1875 and s["final_task0"] == 0.5


def test_metric_sign_conventions_and_avalanche_oracle():
    """BWT (GEM) = −forgetting (Avalanche's last-based form) exactly; max-based ≥ last-based.

    The oracle re-implements avalanche.evaluation.functional.forgetting (the forgetting matrix
    acc[k, k] − acc[t, k] for t > k) and StreamForgetting's average over the experiences trained
    before the last one."""
    rng = np.random.default_rng(0)
    R = rng.integers(0, 65, size=(6, 5, 5)) / 64.0                    # dyadic: sums are exact
    for Ri in R:
        T = len(Ri)
        fmat = np.zeros_like(Ri)
        for k in range(T):
            fmat[k + 1:, k] = Ri[k, k] - Ri[k + 1:, k]
        stream = fmat[T - 1, :T - 1].mean()
        assert M.forgetting_last(Ri) == stream
        assert M.bwt(Ri) == -stream
        assert M.forgetting_max(Ri) >= M.forgetting_last(Ri)
    # leading axes are kept: [6, 5, 5] -> [6]
    assert np.array_equal(M.bwt(R), np.array([M.bwt(r) for r in R]))
    assert M.acc(R).shape == (6,)


def test_metric_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 tasks"):
        M.bwt(np.ones((1, 1)))
    with pytest.raises(ValueError, match="square"):
        M.acc(np.ones((2, 3)))
    with pytest.raises(ValueError, match="b must have"):
        M.fwt(R3, [0.1, 0.2])
    with pytest.raises(ValueError, match="k must be"):
        M.forgetting_max(R3, k=0)
    assert np.isnan(M.forgetting_ratio(R3, np.full((3, 3), 0.5), A_R3))     # joint ≤ random: undefined


def test_random_accuracy():
    # p_train = (3/4, 1/4), p_test = (1/2, 1/2): 3/8 + 1/8
    assert M.random_accuracy([0, 0, 0, 1], [0, 1]) == 0.5
    assert M.random_accuracy(np.arange(10).repeat(3), np.arange(10)) == pytest.approx(0.1)


# ----------------------------------------------------------------------------------------------
# scenarios
# ----------------------------------------------------------------------------------------------
def test_permuted(ds):
    sc = permuted(ds, 3, seed=4, n_train=50, n_test=20)
    p = np.asarray(sc.meta["permutations"])
    assert np.array_equal(sc.tasks[0].X_train, ds.X_train[:50])                  # identity first
    assert np.array_equal(sc.tasks[2].X_train, ds.X_train[:50][:, p[2]])
    assert np.array_equal(sc.tasks[1].y_test, ds.y_test[:20])
    assert not np.array_equal(p[1], p[2])
    longer = permuted(ds, 4, seed=4, n_train=50, n_test=20)                      # earlier tasks kept
    assert np.array_equal(longer.meta["permutations"][2], sc.meta["permutations"][2])
    # settings: heads and output units
    assert sc.n_outputs == 30 and sc.heads.tolist() == [[0, 10], [10, 20], [20, 30]]
    assert sc.with_setting("domain").n_outputs == 10
    assert sc.with_setting("class").heads.tolist() == [[0, 30]] * 3
    assert sc.with_setting("class").offsets.tolist() == [0, 10, 20]


def test_split_shifted_rotated(ds):
    sc = split(ds, n_tasks=3)
    assert [t.classes for t in sc.tasks] == [(0, 1), (2, 3), (4, 5)]
    t1 = sc.task(1)
    assert set(np.unique(t1.y_train)) == {0, 1}
    assert np.array_equal(t1.X_train, ds.X_train[np.isin(ds.y_train, [2, 3])])
    assert sc.n_outputs == 6 and sc.heads.tolist() == [[0, 2], [2, 4], [4, 6]]
    sh = shifted(ds, 4, shifts=[0, 3, -5, 7], reverse=[False, False, False, True], n_train=10, n_test=5)
    assert np.array_equal(sh.tasks[1].X_train, np.roll(ds.X_train[:10], 3, axis=-1))
    assert np.array_equal(sh.tasks[3].X_test, np.roll(ds.X_test[:5, ::-1], 7, axis=-1))
    from pyquirk.data import Dataset
    rng = np.random.default_rng(0)       # flat 8×8 "images", as sklearn's digits are stored
    dg = Dataset(rng.random((30, 64)).astype(np.float32), rng.integers(0, 3, 30),
                 rng.random((10, 64)).astype(np.float32), rng.integers(0, 3, 10), 3)
    rot = rotated(dg, 2, angles=[0, 180], image_shape=(8, 8), n_train=20, n_test=10)
    img = dg.X_train[:20].reshape(-1, 8, 8)
    np.testing.assert_allclose(rot.tasks[1].X_train.reshape(-1, 8, 8), img[:, ::-1, ::-1], atol=1e-5)
    with pytest.raises(ValueError, match="shifted"):
        rotated(ds, 2)


def test_bad_inputs_name_the_argument(ds):
    with pytest.raises(ValueError, match=r"classes.*class 3.*disjoint"):
        split(ds, classes=[(0, 1), (3, 2), (3, 4)])
    with pytest.raises(ValueError, match=r"classes\[1\].*at least 2"):
        split(ds, classes=[(0, 1), (2,)])
    with pytest.raises(ValueError, match="outside"):
        split(ds, classes=[(0, 10)])
    sc = split(ds, n_tasks=2)
    with pytest.raises(ValueError, match=r"task ID 2 is out of range.*2 tasks"):
        sc.task(2)
    with pytest.raises(ValueError, match=r"task ID -1 is out of range"):
        sc.task(-1)
    with pytest.raises(ValueError, match="memory_size must be >= 0"):
        Replay(memory_size=-1)
    with pytest.raises(ValueError, match="setting"):
        permuted(ds, 2, setting="tasks")
    with pytest.raises(ValueError, match="HAT needs the task ID"):
        learn(sc.with_setting("class"), "hat", epochs=1)
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("gem")
    with pytest.raises(ValueError, match="lam"):
        EWC(lam=-1.0)


# ----------------------------------------------------------------------------------------------
# the head loss and EWC's Fisher
# ----------------------------------------------------------------------------------------------
def _small(ds, setting, dtype=np.float64, T=2):
    sc = permuted(ds, T, seed=1, n_train=40, n_test=20, setting=setting)
    net = continual_mlp(sc, hidden=(7,))
    theta = np.stack([net.init(s, dtype=dtype) for s in (0, 1)])
    return sc, net, theta


def test_head_cross_entropy_matches_engine_and_finite_differences(ds):
    sc, net, theta = _small(ds, "domain")
    X = sc.tasks[1].X_train[:8].astype(np.float64)
    y = sc.tasks[1].y_train[:8]
    z = net.logits(theta[0], X)
    lo, hi = np.zeros(8, np.int64), np.full(8, 10)
    loss, g = head_cross_entropy(z, y, lo, hi, 1 / 8)
    assert_close(loss, net.loss(theta[0], X, y, per_sample=True), "exact", what="full-head CE")
    assert_close(net.vjp(theta[0], X, g), net.grad(theta[0], X, y), "exact", what="vjp of the head cotangent")
    # a head [3, 7): finite differences of the mean loss in the logits
    lo, hi, yh = np.full(8, 3), np.full(8, 7), 3 + y % 4
    _, g = head_cross_entropy(z, yh, lo, hi, 1 / 8)
    eps, fd = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        up, down = head_cross_entropy(zp, yh, lo, hi, 1)[0], head_cross_entropy(zm, yh, lo, hi, 1)[0]
        fd[idx] = (up.mean() - down.mean()) / (2 * eps)
    assert_close(g, fd, "fd", what="head CE gradient")
    assert np.all(g[:, :3] == 0) and np.all(g[:, 7:] == 0)


@pytest.mark.parametrize("kind", ["empirical", "true"])
def test_fisher_is_mean_of_squared_single_example_gradients(ds, kind):
    """Single head: F = mean_n (∇ℓ_n)² with ∇ℓ_n from a loop of one-example net.grad calls."""
    sc, net, theta = _small(ds, "domain")
    X = np.stack([sc.tasks[0].X_train[:12], sc.tasks[1].X_train[5:17]]).reshape(2, 12, -1).astype(np.float64)
    y = np.stack([sc.tasks[0].y_train[:12], sc.tasks[1].y_train[5:17]])
    lo, hi = np.zeros_like(y), np.full_like(y, 10)
    rngs = [np.random.default_rng(7), np.random.default_rng(8)]
    F, labels = fisher_diagonal(net, theta, X, y, lo, hi, kind=kind, rngs=rngs, chunk=5)
    if kind == "empirical":
        assert np.array_equal(labels, y)
    else:   # sampled from the model, reproducibly
        again = fisher_diagonal(net, theta, X, y, lo, hi, kind=kind,
                                rngs=[np.random.default_rng(7), np.random.default_rng(8)])[1]
        assert np.array_equal(labels, again) and not np.array_equal(labels, y)
    for e in range(2):
        G = np.stack([net.grad(theta[e], X[e, n:n + 1], labels[e, n:n + 1], backend="reference")
                      for n in range(12)])
        assert_close(F[e], (G ** 2).mean(axis=0), "exact", what=f"Fisher of member {e}")


def test_fisher_multi_head_against_a_sliced_net(ds):
    """Task-incremental: the Fisher of task 1's head CE equals that of a net holding only head 1."""
    sc, net, theta = _small(ds, "task")
    th = theta[:1]
    X = sc.tasks[1].X_train[:10].reshape(1, 10, -1).astype(np.float64)
    y = 10 + sc.tasks[1].y_train[:10][None]
    F, _ = fisher_diagonal(net, th, X, y, np.full_like(y, 10), np.full_like(y, 20), kind="empirical")
    single = Net([Dense(7), ReLU(), Dense(10)], input_shape=(40,))
    views = net.unflatten(th[0])
    ts = np.concatenate([views["0.weight"].ravel(), views["0.bias"], views["2.weight"][10:20].ravel(),
                         views["2.bias"][10:20]])
    G = np.stack([single.grad(ts, X[0, n:n + 1], y[0, n:n + 1] - 10) for n in range(10)])
    Fs = (G ** 2).mean(axis=0)
    Fv = net.unflatten(F[0])
    assert_close(np.concatenate([Fv["0.weight"].ravel(), Fv["0.bias"], Fv["2.weight"][10:20].ravel(),
                                 Fv["2.bias"][10:20]]), Fs, "exact", what="trunk and head 1")
    assert np.all(Fv["2.weight"][:10] == 0) and np.all(Fv["2.bias"][:10] == 0)


@pytest.mark.parametrize("gated", [False, True])
def test_head_view_equals_reference_path(ds, gated):
    """The fused path (one loss_and_grad on the head's view) against the reference path (logits,
    head cotangent, net.vjp): batch gradients and Fisher diagonals, float64."""
    from pyquirk.forgetting.loop import Run
    from pyquirk.seeds import as_seeds
    sc = permuted(ds, 3, seed=1, n_train=40, n_test=20)
    net = continual_mlp(sc, hidden=(7, 5), gated=gated)
    run = Run(net, sc, [as_seeds(0), as_seeds(1)], SGD(0.1), 8, 1, None, np.float64)
    theta = np.stack([net.init(s, dtype=np.float64) for s in (0, 1)])
    if gated:
        theta[:, net.param_mask("gates")] = np.random.default_rng(0).random((2, 12))
    rows = np.stack([run.task_rows[2][:8], run.task_rows[2][10:18]])
    fused = run.loss_grad(theta, rows)
    run.fused = False
    ref = run.loss_grad(theta, rows)
    assert_close(fused[0], ref[0], "exact", what="loss")
    assert_close(fused[1], ref[1], "exact", what="gradient")
    X, y, lo, hi = run.X[rows], run.y[rows], run.lo[rows], run.hi[rows]
    for kind in ("empirical", "true"):
        F1, l1 = fisher_diagonal(net, theta, X, y, lo, hi, kind=kind, rngs=[np.random.default_rng(3)] * 2)
        F0, l0 = fisher_diagonal(net, theta, X, y, lo, hi, kind=kind, rngs=[np.random.default_rng(3)] * 2,
                                 fused=False)
        assert np.array_equal(l1, l0)
        assert_close(F1, F0, "exact", what=f"{kind} Fisher")


def test_ewc_penalty_separate_and_online():
    """Two tasks' Fishers and anchors by hand; separate (Kirkpatrick) and online (Schwarz, γ = 0.5)."""
    Fs, anchors = [np.array([[1.0, 2.0]]), np.array([[0.5, 4.0]])], [np.zeros((1, 2)), np.ones((1, 2))]
    theta = np.array([[1.0, 3.0]])
    for online, want_value, want_grad in [
            # λ/2·(1·1² + 2·3²) + λ/2·(0.5·0² + 4·2²) = 19 + 16 ;  λ·Σ F(θ − θ*) = [2 + 0, 12 + 16]
            (False, 35.0, [[2.0, 28.0]]),
            # F̃ = 0.5·F₀ + F₁ = [1, 5], anchor θ*₁: λ/2·(1·0² + 5·2²) = 20 ;  λ·F̃(θ − θ*₁) = [0, 20]
            (True, 20.0, [[0.0, 20.0]])]:
        ewc = EWC(lam=2.0, online=online, gamma=0.5)
        ewc.setup(None, None)
        for F, a in zip(Fs, anchors):     # what end_task does with each task's Fisher
            ewc.consolidate(F, a)
        value, grad = ewc.penalty(None, theta)
        assert value.tolist() == [want_value] and grad.tolist() == want_grad


# ----------------------------------------------------------------------------------------------
# HAT
# ----------------------------------------------------------------------------------------------
def test_hat_conditioning_factors():
    net = Net([Dense(3), ReLU(), Gate(), Dense(2), ReLU(), Gate(), Dense(4)], input_shape=(2,))
    layers, gidx = hat_structure(net)
    assert gidx.tolist() == np.flatnonzero(net.param_mask("gates")).tolist() and len(gidx) == 5
    assert layers[0]["in"].tolist() == [-1, -1] and layers[0]["out"].tolist() == [0, 1, 2]
    assert layers[1]["in"].tolist() == [0, 1, 2] and layers[1]["out"].tolist() == [3, 4]
    assert layers[2]["out"] is None                                            # the heads
    a = np.array([[1.0, 0.0, 0.25, 1.0, 0.5]])
    f = net.unflatten(conditioning(net, layers, a)[0])
    assert f["0.weight"].tolist() == [[0, 0], [1, 1], [0.75, 0.75]]           # 1 − a_out (data inputs)
    assert f["0.bias"].tolist() == [0, 1, 0.75]
    assert f["3.weight"].tolist() == [[0, 1, 0.75], [0.5, 1, 0.75]]           # 1 − min(a_out, a_in)
    assert f["3.bias"].tolist() == [0, 0.5]
    assert np.all(f["6.weight"] == 1) and np.all(f["2.gate"] == 1)


def test_hat_embedding_gradient_and_compensation(ds):
    """∂(CE + c·R)/∂e against central differences, and the compensation's closed form
    s_max·σ'(s e)·[...] = s_max / (2(cosh e + 1))·∂L/∂a."""
    from pyquirk.forgetting.loop import Run
    from pyquirk.forgetting.strategies.hat import sigmoid
    from pyquirk.seeds import as_seeds
    sc = split(ds, n_tasks=2, n_train=30, n_test=10)
    net = continual_mlp(sc, hidden=(6, 5), gated=True)
    run = Run(net, sc, [as_seeds(0)], SGD(0.1), 8, 1, "reference", np.float64)
    hat = HAT(c=0.5)
    hat.setup(run, None)
    hat.a_prev[:] = np.linspace(0, 1, hat.a_prev.shape[1])                 # a partly used net
    theta = net.init(0, dtype=np.float64)[None]
    rows = run.task_rows[1][:8][None]
    s = 3.0
    L, _, g_e = hat.loss_and_grads(run, theta, rows, 1, s)
    fd = np.zeros_like(g_e)
    for u in range(g_e.shape[1]):
        for d, sign in ((1e-6, 1), (-1e-6, -1)):
            hat.e[0, 1, u] += d
            fd[0, u] += sign * hat.loss_and_grads(run, theta, rows, 1, s)[0][0] / 2e-6
            hat.e[0, 1, u] -= d
    assert_close(g_e, fd, "fd", what="∂L/∂e")
    e = np.linspace(-2, 2, 9)        # |s·e| ≤ 6: 1 − σ(s e) keeps its digits
    comp = sigmoid(s * e) * (1 - sigmoid(s * e)) * s * hat.compensation(e, s)
    assert_close(comp, hat.s_max / (2 * (np.cosh(e) + 1)), "exact", what="compensated σ'")


def test_hat_freezes_task_1_exactly(ds):
    """With binary masks (s_max reached at the last batch of every epoch), training task 2 leaves
    task 1's logits unchanged to float tolerance: every weight between units task 1 uses is frozen
    by the conditioning, and every other weight only meets units task 1 multiplies by 0."""
    sc = split(ds, n_tasks=2, n_train=320, n_test=200)
    hat = HAT(binary=True)
    res = learn(sc, hat, seeds=[0, 1], hidden=(32, 32), epochs=2, batch_size=32, keep_theta=True,
                optimizer=SGD(0.1, momentum=0.9))
    th1, th2 = res.thetas[0], res.thetas[1]
    assert not np.allclose(th1, th2)                                      # task 2 did train
    X0 = sc.tasks[0].X_test.reshape(len(sc.tasks[0].X_test), -1)
    net = continual_mlp(sc, (32, 32), gated=True)
    z1 = net.logits(hat.eval_theta(None, th1, 0), X0, backend="reference")[..., :2]    # task 1's head
    z2 = net.logits(hat.eval_theta(None, th2, 0), X0, backend="reference")[..., :2]
    assert_close(z2, z1, "exact", np.float32, what="task-1 logits")
    assert np.array_equal(res.R[:, 1, 0], res.R[:, 0, 0])                   # accuracy unchanged
    assert np.all(np.isin(hat.masks, [0.0, 1.0]))
    # naive fine-tuning on the same problem does move task 1
    naive = learn(sc, "naive", seeds=[0, 1], hidden=(32, 32), epochs=2, batch_size=32,
                  optimizer=SGD(0.1, momentum=0.9))
    assert not np.array_equal(naive.R[:, 1, 0], naive.R[:, 0, 0])


# ----------------------------------------------------------------------------------------------
# replay
# ----------------------------------------------------------------------------------------------
def test_reservoir_is_uniform_and_class_balanced_quotas():
    rng = np.random.default_rng(0)
    hits = np.zeros(20)
    for _ in range(3000):
        mem = []
        seen = reservoir_update(mem, range(12), 0, 5, rng)
        seen = reservoir_update(mem, range(12, 20), seen, 5, rng)         # a second task
        assert seen == 20 and len(mem) == 5 and len(set(mem)) == 5
        hits[mem] += 1
    np.testing.assert_allclose(hits / 3000, 5 / 20, atol=0.035)           # every example: M/k
    per = {}
    mem = class_balanced_update(per, {(0, 0): list(range(10)), (0, 1): list(range(10, 20))}, 10)
    assert mem == list(range(5)) + list(range(10, 15))
    mem = class_balanced_update(per, {(1, 0): list(range(20, 30)), (1, 1): list(range(30, 40))}, 10)
    assert [len(v) for v in per.values()] == [3, 3, 2, 2] and mem[:3] == [0, 1, 2]


def test_replay_memory_zero_is_naive_and_memory_holds_past_tasks(ds):
    sc = split(ds, n_tasks=3, n_train=96, n_test=50)
    kw = dict(seeds=[3], hidden=(16,), epochs=1, batch_size=32, backend="reference")
    a, b = learn(sc, Naive(), **kw), learn(sc, Replay(memory_size=0), **kw)
    assert np.array_equal(a.R, b.R) and np.array_equal(a.theta, b.theta)
    r = learn(sc, Replay(memory_size=40, policy="class"), **kw)
    assert r.extras["memory_per_task"].tolist() == [[20, 20, 0]] or r.extras["memory_per_task"][0, 2] > 0
    r = learn(sc, Replay(memory_size=40, policy="reservoir"), **kw)
    assert r.extras["memory_rows"].shape == (1, 40)


# ----------------------------------------------------------------------------------------------
# the loop: population = per-seed runs; results save, load and plot
# ----------------------------------------------------------------------------------------------
def test_population_equals_separate_runs(ds):
    sc = permuted(ds, 2, n_train=64, n_test=50)
    kw = dict(hidden=(16,), epochs=1, batch_size=16, backend="reference", optimizer=SGD(0.05))
    for strat in (lambda: EWC(lam=5.0, n_samples=20), lambda: Replay(memory_size=16)):
        pop = learn(sc, strat(), seeds=[0, 1], **kw)
        for e in range(2):
            one = learn(sc, strat(), seeds=[e], **kw)
            assert_close(pop.theta[e], one.theta[0], "fast", np.float32, what=f"member {e}")
            assert np.abs(pop.R[e] - one.R[0]).max() <= 2 / 50


def test_experiment_result_roundtrip(ds, tmp_path):
    from pyquirk.forgetting.experiment import run_experiment
    from pyquirk.results import Result
    sc = split(ds, n_tasks=2, n_train=64, n_test=40)
    res = run_experiment(sc, {"naive": {}, "hat": {}}, seeds=[0, 1], hidden=(8,), epochs=1, batch_size=32)
    assert set(res.runs) == {"naive", "hat", "joint", "single"}
    assert np.isnan(res.runs["joint"].R[:, 0]).all() and np.isfinite(res.runs["joint"].R[:, 1]).all()
    m = res.table["naive"]
    assert {"acc", "bwt", "forgetting_max", "rho", "single_gap", "intransigence"} <= set(m)
    assert m["single_gap"] == pytest.approx(m["intransigence"] + m["forgetting_last"] / 2, abs=1e-12)
    assert set(res.table["joint"]) == {"acc", "acc_std", "rho", "rho_std"} and res.table["joint"]["rho"] == 0
    back = Result.load(res.save(tmp_path / "r"))
    assert np.array_equal(back.runs["hat"].R, res.runs["hat"].R)
    np.testing.assert_equal(back.table, res.table)                          # NaN == NaN here
    res.plot(tmp_path / "f.png")
    res.runs["naive"].plot(tmp_path / "g.png")
    assert (tmp_path / "f.png").stat().st_size > 0


def test_tour_section_smoke(tmp_path):
    """The tour section on tiny settings: it runs, writes its figures, results and metrics."""
    import json

    import pyquirk.report.forgetting_section  # noqa: F401  (registers the section)
    from pyquirk.report import run_tour
    summary = run_tour(tmp_path, quick=True, only=["forgetting"], progress=False,
                       options={"epochs": 1, "n_train": 100, "seeds": 1})
    entry = summary["sections"]["forgetting"]
    assert entry["status"] == "ok", entry.get("error")
    assert {"figures/forgetting-permuted.png", "figures/forgetting-split.png"} <= set(entry["figures"])
    m = entry["metrics"]
    assert {"permuted_naive_bwt", "split_hat_forgetting_max", "permuted_ewc_halves_forgetting"} <= set(m)
    assert (tmp_path / "results" / "forgetting" / "split" / "result.json").exists()
    assert json.loads((tmp_path / "results.json").read_text())["sections"]["forgetting"]["status"] == "ok"
