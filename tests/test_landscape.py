"""pyquirk.landscape: directions, normalisation, grids (with and without the first-layer shortcut),
interpolation, trajectory projection, and regression tests for the anchors' known defects."""
import numpy as np
import pytest

from _tol import assert_close, rtol
from nets import problem
from pyquirk import landscape as ls
from pyquirk.landscape import evaluate as ev_mod
from pyquirk.nn import Conv1d, Dense, Flatten, Net, ReLU, Tanh

DTYPES = [np.float32, np.float64]
GRID_NETS = ["mlp-relu", "mlp-mse", "cnn1d-maxpool", "cnn2d-pools"]   # Dense-first and Conv-first
EPS = 1e-10


# ---------------------------------------------------------------------------- literal oracles
def literal_point(theta, d1, d2, a, b):
    """The pinned definition: (θ + α·d₁) + β·d₂ in θ's dtype, from scratch."""
    dt = theta.dtype.type
    return (theta + dt(a) * d1) + dt(b) * d2


def literal_filter_normalize(d, theta, net, keep_biases=False):
    """Li et al. (2018), one filter at a time, in plain loops."""
    out = np.array(d, dtype=np.float64)
    for spec in net.layout:
        sl = spec.slice
        if len(spec.shape) == 1:
            if not keep_biases:
                out[sl] = 0.0
            else:
                tb = theta[sl].astype(np.float64)
                out[sl] = out[sl] / (np.linalg.norm(out[sl]) + EPS) * np.linalg.norm(tb)
            continue
        dW = out[sl].reshape(spec.shape)
        tW = theta[sl].astype(np.float64).reshape(spec.shape)
        for f in range(spec.shape[0]):
            dW[f] = dW[f] / (np.linalg.norm(dW[f]) + EPS) * np.linalg.norm(tW[f])
        out[sl] = dW.reshape(-1)
    return out


def literal_layer_normalize(d, theta, net, keep_biases=False):
    out = np.array(d, dtype=np.float64)
    for spec in net.layout:
        sl = spec.slice
        if len(spec.shape) == 1 and not keep_biases:
            out[sl] = 0.0
        else:
            out[sl] = out[sl] / (np.linalg.norm(out[sl]) + EPS) * np.linalg.norm(theta[sl].astype(np.float64))
    return out


def per_point_close(got, want, dtype, what=""):
    """Every entry within the table's relative tolerance (not just the array as a whole)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-30))
    assert err <= rtol("exact", dtype), f"{what}: max relative error {err:.2e}"


# ---------------------------------------------------------------------------- grids
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", GRID_NETS)
@pytest.mark.parametrize("shortcut", [True, False])
def test_every_grid_point_equals_the_loss_of_that_point_alone(name, dtype, shortcut):
    net, theta, X, y = problem(name, n=9, dtype=dtype, seed=1)
    plane = ls.random_plane(net, theta, seed=3)
    alphas, betas = ls.grid_axis(-1, 1, 5), np.array([-0.7, 0.0, 0.4, 1.1])
    surf = ls.evaluate_grid(net, plane, X, y, alphas=alphas, betas=betas, shortcut=shortcut,
                            tile=3, chunk=4)   # tiles and chunks that do not divide the grid/data
    want_loss = np.empty((5, 4))
    want_acc = np.empty((5, 4))
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            pt = literal_point(plane.origin, plane.d1, plane.d2, a, b)
            want_loss[i, j] = net.loss(pt, X, y, backend="reference")
            want_acc[i, j] = net.accuracy(pt, X, y, backend="reference")
    per_point_close(surf.loss, want_loss, dtype, f"{name} shortcut={shortcut}")
    if dtype == np.float64:
        np.testing.assert_array_equal(surf.acc, want_acc)
    else:   # an arg-max may flip on a float32 near-tie; allow one example at one point at most
        assert np.sum(np.abs(surf.acc - want_acc) > 0) <= 1
    assert surf.semantics["shortcut"] is shortcut and surf.complete


@pytest.mark.parametrize("backend", ["reference", None])
def test_grid_on_each_backend_matches_the_reference_loop(backend):
    net, theta, X, y = problem("cnn1d-maxpool", n=6, dtype=np.float64, seed=2)
    plane = ls.random_plane(net, theta, seed=0, orthogonal=True)
    surf = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 3), betas=(-1.0, 1.0, 3), backend=backend)
    want = [[net.loss(literal_point(theta, plane.d1, plane.d2, a, b), X, y, backend="reference")
             for b in surf.betas] for a in surf.alphas]
    assert_close(surf.loss, np.array(want), "fast", np.float64, "grid vs loop")


def test_tail_net_pass_equals_the_layer_object_reference():
    """The shortcut's tail (an engine pass on a tail Net) against _tail_loss on the layer objects."""
    for name in ("mlp-relu", "cnn2d-pools"):
        net, theta, X, y = problem(name, n=5, dtype=np.float64)
        k = ev_mod.first_param_layer(net)
        tail = ev_mod.tail_net(net, k + 1)
        off = ev_mod._param_offset(net, k + 1)
        rng = np.random.default_rng(0)
        thetas = theta + 0.1 * rng.standard_normal((3, net.n_params))
        H = np.stack([net.layers[k].forward(tuple(v[None] for v in p), X[None])[0][0]
                      for p in (net.layer_params(t)[k] for t in thetas)])
        want = ev_mod._tail_loss(net, ev_mod.layer_views(net, k + 1, thetas[:, off:]), H, y)
        got = net.loss_fn.per_sample(ev_mod.tail_logits(tail, thetas[:, off:], H, "reference"), y[None])
        np.testing.assert_array_equal(got, want)
        full = net.loss(thetas, X, y, per_sample=True, backend="reference")
        assert_close(want, full, "exact", np.float64, f"{name}: tail from H vs whole net")


def test_shortcut_needs_a_linear_first_parameter_layer_and_a_tail():
    assert ls.shortcut_supported(Net([Flatten(), Dense(3), Tanh(), Dense(2)], input_shape=(2, 3)))
    assert not ls.shortcut_supported(Net([Dense(3), Tanh()], input_shape=(4,)))
    net = Net([Dense(3), Tanh()], input_shape=(4,), loss="mse")
    theta = net.init(0)
    X, y = np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shortcut"):
        ls.evaluate_grid(net, ls.random_plane(net, theta), X, y, shortcut=True)
    s = ls.evaluate_grid(net, ls.random_plane(net, theta), X, y, alphas=(-1.0, 1.0, 3), betas=(-1.0, 1.0, 3))
    assert s.semantics["shortcut"] is False and np.isfinite(s.loss).all()


def test_default_grid_is_51_by_51_over_minus_one_one_with_the_origin():
    a = ls.grid_axis()
    assert a.shape == (51,) and a[0] == -1.0 and a[-1] == 1.0 and a[25] == 0.0
    assert np.allclose(np.diff(a), 0.04)
    net, theta, X, y = problem("mlp-relu", n=4, dtype=np.float32)
    s = ls.evaluate_grid(net, ls.random_plane(net, theta), X, y)
    assert s.loss.shape == (51, 51) and s.semantics["contains_origin"]
    assert s.origin_loss == pytest.approx(float(net.loss(theta, X, y)), rel=rtol("exact", np.float32))


def test_one_dimensional_slice_on_a_line():
    net, theta, X, y = problem("mlp-tanh", n=6, dtype=np.float64)
    d = ls.random_direction(net, theta, seed=4)
    s = ls.evaluate_grid(net, ls.Plane(theta, d), X, y, alphas=(-2.0, 2.0, 9))
    assert s.loss.shape == (9, 1) and np.array_equal(s.betas, [0.0])
    want = [net.loss(literal_point(theta, d, np.zeros_like(d), a, 0.0), X, y) for a in s.alphas]
    per_point_close(s.loss[:, 0], want, np.float64)


def test_stated_mini_batch_evaluates_a_fixed_recorded_subset():
    net, theta, X, y = problem("mlp-relu", n=40, dtype=np.float64)
    plane = ls.random_plane(net, theta, seed=1)
    s = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 3), betas=(-1.0, 1.0, 3), subset=15, seed=7)
    idx = s.data_indices
    assert idx.shape == (15,) and np.all(np.diff(idx) > 0) and idx.max() < 40
    assert "15 of 40" in s.semantics["data"] and s.semantics["subset_seed"] == 7
    s2 = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 3), betas=(-1.0, 1.0, 3), subset=15, seed=7)
    np.testing.assert_array_equal(idx, s2.data_indices)
    pt = literal_point(theta, plane.d1, plane.d2, 1.0, -1.0)
    per_point_close(s.loss[2, 0], net.loss(pt, X[idx], y[idx]), np.float64)


def test_tile_and_chunk_sizes_do_not_change_results(monkeypatch):
    net, theta, X, y = problem("cnn1d-maxpool", n=11, dtype=np.float64)
    plane = ls.random_plane(net, theta, seed=2)
    base = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 4), betas=(-1.0, 1.0, 3))
    monkeypatch.setattr(ev_mod, "TILE_BYTES", 1)
    monkeypatch.setattr(ev_mod, "CHUNK_ROWS", 1)
    tiny = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 4), betas=(-1.0, 1.0, 3))
    assert tiny.semantics["tile"] == 1 and tiny.semantics["chunk"] == 1
    assert_close(tiny.loss, base.loss, "exact", np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_major_loss_and_hits_equal_per_sample_and_argmax(dtype):
    """The evaluator's cross-entropy epilogue against CrossEntropy.per_sample and argmax, ties
    included (arg-max takes the first maximum), and None on a non-finite logit."""
    from pyquirk.nn.losses import CrossEntropy
    rng = np.random.default_rng(0)
    z = (3 * rng.standard_normal((3, 7, 5))).astype(dtype)
    labels = rng.integers(0, 5, 7)
    z[0, 0], labels[0] = [1, 2, 2, 0, 0], 2        # tie, label second: a miss
    z[0, 1], labels[1] = [1, 2, 2, 0, 0], 1        # tie, label first: a hit
    z[1, 0] = 4.0                                  # all tied: a hit only for class 0
    z[1, 1] = 4.0
    labels[0:2] = (2, 1)
    loss, hits = ev_mod.ce_sums(z, labels)
    want = CrossEntropy().per_sample(z, labels[None]).sum(axis=-1, dtype=np.float64)
    assert_close(loss, want, "exact", dtype, "loss sums")
    np.testing.assert_array_equal(hits, (z.argmax(-1) == labels).sum(-1))
    for bad in (np.nan, np.inf, -np.inf):
        zb = z.copy()
        zb[2, 3, 1] = bad
        assert ev_mod.ce_sums(zb, labels) is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shortcut", [True, False])
def test_evaluator_fast_epilogue_and_reused_buffers_match_the_generic_path(monkeypatch, dtype, shortcut):
    net, theta, X, y = problem("mlp-relu", n=11, dtype=dtype, seed=4)
    plane = ls.random_plane(net, theta, seed=1)
    a, b = np.linspace(-1, 1, 7), np.linspace(1, -0.5, 7)
    ev = ev_mod.Evaluator(net, ev_mod.PlaneFamily(plane), X, y, shortcut=shortcut, tile=3, chunk=4)
    fast = ev(a, b)
    again = ev(a[:2], b[:2])                 # a smaller tile into the same buffers
    monkeypatch.setattr(ev_mod, "ce_sums", lambda z, labels: None)
    slow = ev_mod.Evaluator(net, ev_mod.PlaneFamily(plane), X, y, shortcut=shortcut, tile=3, chunk=4)(a, b)
    per_point_close(fast[0], slow[0], dtype, "fast vs generic loss")
    np.testing.assert_array_equal(fast[1], slow[1])
    np.testing.assert_array_equal(again[0], fast[0][:2])


# ---------------------------------------------------------------------------- normalisation
def _conv_dense_net():
    return Net([Conv1d(4, 3, padding=1), ReLU(), Flatten(), Dense(5), ReLU(), Dense(3)], input_shape=(2, 6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keep_biases", [False, True])
def test_filter_normalization_matches_a_literal_loop_on_dense_and_conv(dtype, keep_biases):
    net = _conv_dense_net()
    rng = np.random.default_rng(0)
    theta = (rng.standard_normal(net.n_params) * 0.5).astype(dtype)
    d = rng.standard_normal(net.n_params).astype(dtype)
    got = ls.normalize_direction(d, theta, net, "filter", keep_biases)
    assert_close(got, literal_filter_normalize(d, theta, net, keep_biases), "exact", dtype, "filter norm")
    for spec in net.layout:
        g = got[spec.slice].astype(np.float64)
        if len(spec.shape) == 1:
            assert (np.linalg.norm(g) > 0) == keep_biases
            continue
        rows = g.reshape(spec.shape[0], -1)
        trows = theta[spec.slice].astype(np.float64).reshape(spec.shape[0], -1)
        drows = np.linalg.norm(d[spec.slice].astype(np.float64).reshape(spec.shape[0], -1), axis=1)
        # each output unit/channel's norm is θ's (times ‖d_f‖/(‖d_f‖ + 1e-10), the code's epsilon)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1),
                                   np.linalg.norm(trows, axis=1) * drows / (drows + EPS),
                                   rtol=rtol("exact", dtype))


@pytest.mark.parametrize("keep_biases", [False, True])
def test_layer_normalization_matches_a_literal_loop(keep_biases):
    net = _conv_dense_net()
    rng = np.random.default_rng(1)
    theta, d = rng.standard_normal((2, net.n_params))
    got = ls.normalize_direction(d, theta, net, "layer", keep_biases)
    assert_close(got, literal_layer_normalize(d, theta, net, keep_biases), "exact", np.float64)


def test_directions_are_gaussian_not_uniform():
    """loss-landscapes #4 drew rand_u_like (uniform on [0, 1)): mean 1/2, kurtosis 1.8."""
    net = Net([Dense(200), ReLU(), Dense(10)], input_shape=(40,))
    theta = net.init(0)
    raw = ls.random_direction(net, theta, seed=5, norm="none").astype(np.float64)
    P = raw.size
    assert abs(raw.mean()) < 5 / np.sqrt(P)
    assert abs(raw.std() - 1) < 0.03
    kurt = np.mean((raw - raw.mean()) ** 4) / raw.var() ** 2
    assert abs(kurt - 3.0) < 0.2, kurt
    assert abs(np.mean(raw < 0) - 0.5) < 0.02
    # named stream: reproducible, d1 != d2, and independent of the init stream of the same seed
    np.testing.assert_array_equal(raw, ls.random_direction(net, theta, seed=5, norm="none"))
    assert not np.allclose(raw, ls.random_direction(net, theta, seed=5, index=1, norm="none"))
    assert abs(np.corrcoef(raw, net.init(5, scheme="he_normal"))[0, 1]) < 0.05


def test_biases_are_zero_by_default_and_normalised_once_as_a_vector_when_kept():
    """loss-landscapes #3 normalised each bias entry as its own 'filter' (|d_i| = |θ_i|)."""
    net = Net([Dense(30), ReLU(), Dense(4)], input_shape=(8,))
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(net.n_params)
    bias = net.param_mask("biases")
    d = ls.random_direction(net, theta, seed=1)
    assert np.all(d[bias] == 0) and np.any(d[~bias] != 0)
    raw = ls.random_direction(net, theta, seed=1, norm="none")
    kept = ls.random_direction(net, theta, seed=1, keep_biases=True)
    for spec in net.layout:
        if spec.kind != "bias":
            continue
        db, tb, rb = kept[spec.slice], theta[spec.slice], raw[spec.slice]
        assert np.linalg.norm(db) == pytest.approx(np.linalg.norm(tb), rel=1e-9)   # up to the 1e-10
        np.testing.assert_allclose(db / np.linalg.norm(db), rb / np.linalg.norm(rb), rtol=1e-12)
        assert not np.allclose(np.abs(db), np.abs(tb))      # not the per-entry normalisation


def test_orthogonalize_reports_the_cosine_and_keeps_filter_norms():
    net = _conv_dense_net()
    rng = np.random.default_rng(4)
    theta = rng.standard_normal(net.n_params)
    d1 = ls.normalize_direction(rng.standard_normal(net.n_params), theta, net)
    d2 = ls.normalize_direction(0.7 * d1 + rng.standard_normal(net.n_params), theta, net)
    cos = d1 @ d2 / np.linalg.norm(d1) / np.linalg.norm(d2)
    o, cos_before = ls.orthogonalize(d1, d2, net, "filter")
    assert cos_before == pytest.approx(cos, rel=1e-12) and cos_before > 0.3
    assert abs(d1 @ o) / np.linalg.norm(d1) / np.linalg.norm(o) < 1e-12
    np.testing.assert_allclose(o, literal_filter_normalize(o, theta, net), rtol=1e-9, atol=1e-12)
    plane = ls.random_plane(net, theta, seed=2, orthogonal=True)
    assert abs(plane.cosine) < 1e-6 and "cosine_before" in plane.info
    with pytest.raises(ValueError, match="parallel"):
        ls.orthogonalize(d1, 2 * d1)


# ---------------------------------------------------------------------------- regression: drift
def test_points_are_fresh_not_accumulated():
    """Every point is (θ + α·d₁) + β·d₂ from θ; stepping θ += Δα·d₁ drifts by many ulps."""
    rng = np.random.default_rng(0)
    theta = (1e3 * rng.standard_normal(5000)).astype(np.float32)
    d1, d2 = rng.standard_normal((2, 5000)).astype(np.float32)
    plane = ls.Plane(theta, d1, d2)
    alphas = ls.grid_axis(-1, 1, 51)
    pts = plane.points(alphas, np.full(51, 0.3))
    fresh = np.stack([literal_point(theta, d1, d2, a, 0.3) for a in alphas])
    assert pts.tobytes() == fresh.tobytes()
    acc = theta + np.float32(alphas[0]) * d1 + np.float32(0.3) * d2
    drifted = [acc.copy()]
    for step in np.diff(alphas):                  # the in-place walk the pinned semantics forbid
        acc += np.float32(step) * d1
        drifted.append(acc.copy())
    assert not np.array_equal(np.stack(drifted), fresh)   # so the check above has teeth


def test_far_corner_of_a_large_grid_is_the_fresh_point():
    net, theta, X, y = problem("mlp-relu", n=6, dtype=np.float32, seed=4)
    plane = ls.random_plane(net, theta, seed=1)
    s = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 41), betas=(-1.0, 1.0, 41), shortcut=False)
    corner = literal_point(theta, plane.d1, plane.d2, 1.0, 1.0)
    assert s.loss[-1, -1] == pytest.approx(float(net.loss(corner, X, y)), rel=rtol("exact", np.float32))


# ---------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("shortcut", [True, False])
def test_interpolation_always_evaluates_both_end_points(shortcut):
    net, theta_b, X, y = problem("cnn1d-maxpool", n=8, dtype=np.float32, seed=5)
    theta_a = net.init(3)
    Xt, yt = X[:4] * 0.5, y[:4]
    axis = np.linspace(-0.3, 1.3, 7)                 # holds neither 0 nor 1
    assert not np.isin([0.0, 1.0], axis).any()
    r = ls.interpolate(net, theta_a, theta_b, (X, y), (Xt, yt), alphas=axis, shortcut=shortcut)
    assert r.alphas[0] == -0.3 and r.alphas[-1] == 1.3 and {0.0, 1.0} <= set(r.alphas.tolist())
    for end, th in ((0.0, theta_a), (1.0, theta_b)):
        m = r.at(end)
        assert m["train_loss"] == pytest.approx(float(net.loss(th, X, y)), rel=rtol("exact", np.float32))
        assert m["test_loss"] == pytest.approx(float(net.loss(th, Xt, yt)), rel=rtol("exact", np.float32))
        assert m["train_acc"] == float(net.accuracy(th, X, y))
    for a, loss in zip(r.alphas, r.train_loss):
        c = np.array([1.0 - a, a]).astype(np.float32)
        per_point_close(loss, net.loss(c[0] * theta_a + c[1] * theta_b, X, y), np.float32)


def test_interpolation_default_axis_and_end_points_are_exact():
    a = ls.interpolation_axis()
    assert a[0] == -0.5 and a[-1] == 1.5 and len(a) == 41 and 0.0 in a and 1.0 in a
    a2 = ls.interpolation_axis([0.1, 1e-13, 0.5, 1 - 1e-12])     # near-ends snap to the ends
    assert a2.tolist() == [0.0, 0.1, 0.5, 1.0]


# ---------------------------------------------------------------------------- trajectories
def test_trajectory_projection_uses_the_contours_coordinates():
    """loss-landscape #1: the overlay must sit where the surface has the path's own loss.

    A path inside the plane, with non-orthogonal d₁, d₂: least squares recovers its (α, β)
    exactly and the surface's loss there equals the snapshots' own loss; the per-axis
    projection x·dᵢ/‖dᵢ‖ would not."""
    net, theta, X, y = problem("mlp-relu", n=10, dtype=np.float64, seed=6)
    d1 = ls.random_direction(net, theta, seed=0)
    d2 = 0.6 * d1 + 0.8 * ls.random_direction(net, theta, seed=0, index=1)
    plane = ls.Plane(theta, d1, d2)
    ab = np.array([[-0.8, 0.5], [-0.3, 0.2], [0.1, -0.4], [0.0, 0.0], [0.9, 0.7]])
    traj = np.stack([literal_point(theta, d1, d2, a, b) for a, b in ab])
    coords, resid = plane.project(traj)
    np.testing.assert_allclose(coords, ab, atol=1e-10)
    assert np.max(resid) < 1e-10
    naive = np.stack([(traj - theta) @ d / np.linalg.norm(d) for d in (d1, d2)], axis=1)
    assert not np.allclose(naive, ab, atol=1e-3)
    s = ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, 1.0, 5), betas=(-1.0, 1.0, 5), trajectory=traj,
                         trajectory_steps=np.arange(5) * 10)
    t = s.trajectory
    np.testing.assert_allclose(t.surface_loss, t.own_loss, rtol=1e-10)
    np.testing.assert_array_equal(t.steps, [0, 10, 20, 30, 40])
    assert s.loss[2, 2] == pytest.approx(t.own_loss[3], rel=1e-10)   # (0, 0): a node and a snapshot


def test_off_plane_trajectory_reports_its_residual_and_the_loss_gap():
    net, theta, X, y = problem("mlp-tanh", n=10, dtype=np.float64, seed=7)
    plane = ls.random_plane(net, theta, seed=1)
    rng = np.random.default_rng(0)
    traj = theta + 0.3 * rng.standard_normal((4, net.n_params))
    t = ls.overlay_trajectory(net, plane, traj, X, y)
    assert np.all(t.residual > 0.5)
    own = [net.loss(th, X, y) for th in traj]
    per_point_close(t.own_loss, own, np.float64)
    pts = plane.points(t.coords[:, 0], t.coords[:, 1])
    per_point_close(t.surface_loss, [net.loss(p, X, y) for p in pts], np.float64)
    assert t.max_loss_gap == pytest.approx(np.max(np.abs(t.surface_loss - t.own_loss)))


def test_pca_plane_recovers_a_planar_trajectory_with_explained_variance():
    net, theta, X, y = problem("mlp-relu", n=5, dtype=np.float64, seed=8)
    rng = np.random.default_rng(1)
    e, _ = np.linalg.qr(rng.standard_normal((net.n_params, 2)))
    uv = np.array([[3.0, 1.0], [2.0, -0.5], [1.2, 0.4], [0.5, 0.1], [0.0, 0.0]])
    traj = theta + uv @ e.T
    plane = ls.pca_plane(traj)
    assert plane.kind == "pca" and np.array_equal(plane.origin, traj[-1])
    ratio = plane.info["explained_variance_ratio"]
    assert ratio.sum() == pytest.approx(1.0) and ratio[0] >= ratio[1]
    _, resid = plane.project(traj)
    assert np.max(resid) < 1e-10
    assert np.all(plane.project(traj[:1])[0] >= 0)       # signed: the start has positive coordinates
    centred = ls.pca_plane(traj, center=True)
    assert centred.info["center"] is True
    with pytest.raises(ValueError, match="two directions"):
        ls.pca_plane(np.stack([theta, theta + e[:, 0], theta]))


def test_solutions_plane_puts_the_second_solution_at_alpha_one():
    net, t1, X, y = problem("mlp-relu", n=6, dtype=np.float64, seed=9)
    t2 = net.init(1).astype(np.float64)
    line = ls.solutions_plane(t1, t2)
    assert line.d2 is None and np.allclose(line.points([1.0])[0], t2, rtol=0, atol=1e-14)
    plane = ls.solutions_plane(t1, t2, net=net, seed=3, orthogonal=True)
    assert plane.dims == 2 and abs(plane.cosine) < 1e-10 and plane.info["d2"] == "random"
    t3 = net.init(2).astype(np.float64)
    tri = ls.solutions_plane(t1, t2, theta3=t3)
    coords, resid = tri.project(np.stack([t1, t2, t3]))
    np.testing.assert_allclose(coords, [[0, 0], [1, 0], [0, 1]], atol=1e-10)


def test_hessian_plane_gives_the_top_eigenvectors():
    from pyquirk.hessian import Curvature
    from pyquirk.hessian.exact import full_hessian
    net, theta, X, y = problem("mlp-tanh", n=12, dtype=np.float64, seed=10)
    plane = ls.hessian_plane(net, theta, (X, y), seed=0)
    w, V = np.linalg.eigh(full_hessian(Curvature(net, theta, (X, y))))
    np.testing.assert_allclose(plane.info["eigenvalues"], w[::-1][:2], rtol=1e-8)
    for d, v in ((plane.d1, V[:, -1]), (plane.d2, V[:, -2])):
        assert abs(d @ v) / np.linalg.norm(d) == pytest.approx(1.0, abs=1e-8)
    assert plane.kind == "hessian" and plane.info["converged"].all()


def test_hessian_plane_names_a_missing_hessian_package(monkeypatch):
    import builtins
    real = builtins.__import__

    def fake(name, globals=None, locals=None, fromlist=(), level=0):
        if name.endswith("hessian") and level > 0 or name == "pyquirk.hessian":
            raise ImportError("pretend it is not built yet")
        return real(name, globals, locals, fromlist, level)
    monkeypatch.setattr(builtins, "__import__", fake)
    net, theta, X, y = problem("mlp-tanh", n=4)
    with pytest.raises(ImportError, match="pyquirk.hessian"):
        ls.hessian_plane(net, theta, (X, y))


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_errors_naming_the_argument():
    net, theta, X, y = problem("mlp-relu", n=4, dtype=np.float32)
    P = net.n_params
    d = ls.random_direction(net, theta)
    with pytest.raises(ValueError, match=r"d1 must have shape \[%d\]" % P):
        ls.Plane(theta, d[:-1], d)
    with pytest.raises(ValueError, match="d2 has zero norm"):
        ls.Plane(theta, d, np.zeros(P))
    with pytest.raises(ValueError, match="d1 contains NaN"):
        ls.Plane(theta, np.full(P, np.nan), d)
    with pytest.raises(ValueError, match="direction has zero norm"):
        ls.normalize_direction(np.zeros(P), theta, net)
    with pytest.raises(ValueError, match="zero after filter normalisation"):
        ls.random_plane(net, np.zeros(P, np.float32))
    with pytest.raises(ValueError, match="theta must have last dimension"):
        ls.random_plane(net, theta[:-2])
    plane = ls.Plane(theta, d, -d[::-1])
    with pytest.raises(ValueError, match="alphas must be finite"):
        ls.evaluate_grid(net, plane, X, y, alphas=(-1.0, np.inf))
    with pytest.raises(ValueError, match="betas contains NaN"):
        ls.evaluate_grid(net, plane, X, y, betas=[0.0, np.nan])
    with pytest.raises(ValueError, match="alphas must be strictly increasing"):
        ls.evaluate_grid(net, plane, X, y, alphas=[0.5, 0.0])
    with pytest.raises(ValueError, match="range must be finite"):
        ls.grid_axis(-np.inf, 1.0)
    with pytest.raises(ValueError, match="alpha_range must be finite"):
        ls.interpolate(net, theta, theta, (X, y), alpha_range=(np.nan, 1.0))
    with pytest.raises(ValueError, match="theta_b must have last dimension"):
        ls.interpolate(net, theta, theta[:3], (X, y))
    with pytest.raises(ValueError, match="plane has P="):
        ls.evaluate_grid(problem("cnn1d-maxpool")[0], plane, X, y)
    with pytest.raises(ValueError, match="subset=9 exceeds"):
        ls.evaluate_grid(net, plane, X, y, subset=9)
    with pytest.raises(ValueError, match="trajectory must have shape"):
        ls.overlay_trajectory(net, plane, np.ones((3, P + 1), np.float32), X, y)
    with pytest.raises(ValueError, match="unknown norm"):
        ls.random_direction(net, theta, norm="unit")
