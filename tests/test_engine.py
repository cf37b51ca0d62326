"""The reference engine against finite differences, its own symmetries, and its batch axes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _tol import assert_close, rel_err, rtol
from nets import NETS, problem
from pyquirk.nn import Conv1d, Dense, Flatten, MaxPool, Net, ReLU, Tanh

H = 1e-5  # central-difference step, float64


def fd_directional(f, x, v, h=H):
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


@pytest.mark.parametrize("name", sorted(NETS))
def test_grad_matches_finite_differences(name):
    net, th, X, y = problem(name)
    g = net.grad(th, X, y)
    fd = np.array([fd_directional(lambda t: net.loss(t, X, y), th, e) for e in np.eye(net.n_params)])
    assert_close(g, fd, "fd", what=f"{name} grad")


@pytest.mark.parametrize("name", sorted(NETS))
def test_hvp_matches_finite_differences_of_grad(name):
    net, th, X, y = problem(name)
    V = np.random.default_rng(1).standard_normal((3, net.n_params))
    Hv = net.hvp(th, X, y, V)
    fd = np.array([fd_directional(lambda t: net.grad(t, X, y), th, v) for v in V])
    assert_close(Hv, fd, "fd", what=f"{name} hvp")


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("targeted", [False, True])
def test_input_grad_matches_finite_differences(name, targeted):
    net, th, X, y = problem(name)
    target = (y + 1) % net.n_outputs if targeted and net.loss_name == "ce" else None
    labels = y if target is None else target
    gx = net.input_grad(th, X, y, target=target)
    assert gx.shape == X.shape
    V = np.random.default_rng(2).standard_normal((4,) + X.shape)
    total = lambda Xp: net.loss(th, Xp, labels, per_sample=True).sum()  # each sample's own loss
    fd = np.array([fd_directional(total, X, v) for v in V])
    assert_close(np.tensordot(V, gx, axes=gx.ndim), fd, "fd", what=f"{name} input_grad")


@pytest.mark.parametrize("name", ["mlp-tanh", "mlp-mse", "cnn1d-gelu", "cnn2d-pools"])
def test_hessian_is_symmetric(name):
    net, th, X, y = problem(name)
    u, v = np.random.default_rng(4).standard_normal((2, net.n_params))
    Hu, Hv = net.hvp(th, X, y, np.stack([u, v]))
    assert abs(u @ Hv - v @ Hu) <= rtol("symmetry", np.float64) * abs(u @ Hv)
    dense = net.hvp(th, X, y, np.eye(net.n_params))  # column by column, as one block
    assert rel_err(dense, dense.T) <= rtol("symmetry", np.float64)


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_population_axis_is_exact(name, dtype):
    """E=3 members in one call equal three single calls, bit for bit, for every pass."""
    net, _, X, y = problem(name, dtype=dtype)
    rng = np.random.default_rng(5)
    T = rng.standard_normal((3, net.n_params)).astype(dtype)
    Xs = rng.standard_normal((3,) + X.shape).astype(dtype)
    V = rng.standard_normal((2, net.n_params)).astype(dtype)
    for data in (X, Xs):  # shared and per-member data
        pick = (lambda e: data) if data is X else (lambda e: data[e])
        loss, grad = net.loss_and_grad(T, data, y)
        hv = net.hvp(T, data, y, V)
        gx = net.input_grad(T, data, y)
        z = net.logits(T, data)
        for e in range(3):
            assert np.array_equal(z[e], net.logits(T[e], pick(e)))
            assert np.array_equal(loss[e], net.loss(T[e], pick(e), y))
            assert np.array_equal(grad[e], net.grad(T[e], pick(e), y))
            assert np.array_equal(hv[e], net.hvp(T[e], pick(e), y, V))
            assert np.array_equal(gx[e], net.input_grad(T[e], pick(e), y))
        assert grad.dtype == dtype and hv.dtype == dtype


@pytest.mark.parametrize("name", sorted(NETS))
def test_tangent_block_equals_single_hvps(name):
    net, th, X, y = problem(name)
    V = np.random.default_rng(6).standard_normal((5, net.n_params))
    block = net.hvp(th, X, y, V)
    for i in range(5):
        assert np.array_equal(block[i], net.hvp(th, X, y, V[i]))


def test_per_member_tangents():
    net, _, X, y = problem("mlp-gelu")
    rng = np.random.default_rng(7)
    T, V = rng.standard_normal((2, net.n_params)), rng.standard_normal((2, 3, net.n_params))
    out = net.hvp(T, X, y, V)
    assert out.shape == (2, 3, net.n_params)
    for e in range(2):
        assert np.array_equal(out[e], net.hvp(T[e], X, y, V[e]))


def test_per_member_labels_with_shared_inputs():
    net, th, X, y = problem("mlp-relu")
    T = np.stack([th, th])
    ys = np.stack([y, (y + 1) % 3])
    g = net.grad(T, X, ys)
    assert np.array_equal(g[1], net.grad(th, X, ys[1]))


def test_mse_accepts_class_labels_as_one_hot():
    net, th, X, _ = problem("mlp-mse")
    y = np.array([0, 2, 1, 1, 0])
    assert net.loss(th, X, y) == pytest.approx(net.loss(th, X, np.eye(3)[y]), rel=1e-15)


def test_layout_is_pytorch_order_and_unflatten_views():
    net = Net([Conv1d(4, 3), ReLU(), MaxPool(2), Flatten(), Dense(5)], input_shape=(2, 10))
    names = [(s.name, s.shape) for s in net.layout]
    assert names == [("0.weight", (4, 2, 3)), ("0.bias", (4,)), ("4.weight", (5, 16)), ("4.bias", (5,))]
    theta = np.arange(net.n_params, dtype=np.float64)
    views = net.unflatten(theta)
    views["0.bias"][:] = -1  # a view, not a copy
    assert np.all(theta[24:28] == -1)
    assert net.param_mask("weights").sum() == 24 + 80
    assert net.param_mask("biases").sum() == 4 + 5
    assert not (net.param_mask("weights") & net.param_mask("biases")).any()
    assert (net.param_mask("weights") | net.param_mask("biases")).all()
    assert net.param_mask(["4"]).sum() == 85


@pytest.mark.parametrize("scheme", ["lecun_normal", "glorot_uniform", "he_normal", "he_uniform", "orthogonal",
                                    "scaled_normal", "lecun_uniform", "glorot_normal"])
def test_init_schemes_scale(scheme):
    net = Net([Dense(400), Tanh(), Dense(300)], input_shape=(200,))
    th = net.init(0, scheme=scheme, gain=1.0, dtype=np.float64)
    w = net.unflatten(th)["0.weight"]
    fan_in, fan_out = 200, 400
    expected = {"lecun": 1 / fan_in, "scaled": 1 / fan_in, "glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in,
                "orthogonal": 1 / fan_out}[scheme.split("_")[0]]
    assert w.var() == pytest.approx(expected, rel=0.05)
    assert np.all(net.unflatten(th)["0.bias"] == 0)
    if scheme == "orthogonal":
        assert np.allclose(w.T @ w, np.eye(200), atol=1e-10)


def test_init_is_deterministic_and_stream_separated():
    net = Net([Dense(8), ReLU(), Dense(3)], input_shape=(5,))
    assert np.array_equal(net.init(3), net.init(3))
    assert not np.array_equal(net.init(3), net.init(4))
    assert net.init(0).dtype == np.float32


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def small():
    return problem("mlp-relu")


@pytest.mark.parametrize("call, err, match", [
    (lambda n, t, X, y: n.loss(t[:-1], X, y), ValueError, "theta"),
    (lambda n, t, X, y: n.loss(t.astype(int), X, y), TypeError, "theta"),
    (lambda n, t, X, y: n.loss(np.where(np.arange(t.size) == 0, np.nan, t), X, y), ValueError, "theta"),
    (lambda n, t, X, y: n.loss(t, X[:, :-1], y), ValueError, "X"),
    (lambda n, t, X, y: n.loss(t, X[:0], y[:0]), ValueError, "X"),
    (lambda n, t, X, y: n.loss(t, X, y[:-1]), ValueError, "y"),
    (lambda n, t, X, y: n.loss(t, X, y + 3), ValueError, "label"),
    (lambda n, t, X, y: n.loss(t, X, y.astype(float)), TypeError, "y"),
    (lambda n, t, X, y: n.loss(t, X, -y - 1), ValueError, "negative"),
    (lambda n, t, X, y: n.hvp(t, X, y, np.ones(3)), ValueError, "V"),
    (lambda n, t, X, y: n.hvp(t, X, y, np.full(t.size, np.inf)), ValueError, "V"),
    (lambda n, t, X, y: n.loss(np.stack([t, t]), np.stack([X, X, X]), y), ValueError, "X"),
    (lambda n, t, X, y: n.input_grad(t, X, y, target=y + 9), ValueError, "label"),
    (lambda n, t, X, y: n.param_mask(["nope"]), ValueError, "parameter selection"),
    (lambda n, t, X, y: n.init(0, scheme="xavier_magic"), ValueError, "init scheme"),
    (lambda n, t, X, y: n.init(0, gain=-1.0), ValueError, "gain"),
])
def test_bad_input_raises_clear_errors(small, call, err, match):
    with pytest.raises(err, match=match):
        call(*small)


@pytest.mark.parametrize("build, match", [
    (lambda: Net([], input_shape=(3,)), "empty"),
    (lambda: Net([Dense(3)], input_shape=(3,), loss="hinge"), "loss"),
    (lambda: Net(["softmaxx"], input_shape=(3,)), "layer name"),
    (lambda: Net([Dense(3, in_features=4)], input_shape=(3,)), "in_features"),
    (lambda: Net([Dense(0)], input_shape=(3,)), "out_features"),
    (lambda: Net([Conv1d(2, 5), Flatten(), Dense(2)], input_shape=(1, 3)), "does not fit"),
    (lambda: Net([Dense(2)], input_shape=(1, 3)), "Flatten"),
    (lambda: Net([ReLU()], input_shape=(3,)), "no parameters"),
    (lambda: Net(["dense"], input_shape=(3,)), "needs arguments"),
])
def test_bad_architectures_raise(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 4), extra=st.lists(st.integers(1, 3), max_size=2), feat=st.integers(1, 6))
def test_shape_validation_property(small, n, extra, feat):
    """For θ [P] (E = 1), any X not shaped [N, 4] or [1, N, 4] with N ≥ 1 is rejected naming X."""
    net, th, _, _ = small
    X = np.zeros(tuple(extra) + (n, feat))
    valid = feat == 4 and n >= 1 and extra in ([], [1])
    if valid:
        assert net.logits(th, X).shape == (n, 3)
    else:
        with pytest.raises(ValueError, match="X"):
            net.logits(th, X)


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(st.integers(-5, 8), min_size=5, max_size=5))
def test_label_range_property(small, labels):
    net, th, X, _ = small
    y = np.array(labels)
    if y.min() >= 0 and y.max() < 3:
        assert np.isfinite(net.loss(th, X, y))
    else:
        with pytest.raises(ValueError, match="label"):
            net.loss(th, X, y)


@pytest.mark.parametrize("name", ["mlp-gelu", "cnn1d-maxpool", "cnn2d-pools"])
def test_vjp_of_loss_cotangent_equals_grad(name):
    """Pulling ∂loss/∂logits back through vjp gives the engine's own gradient."""
    net, th, X, y = problem(name)
    z = net.logits(th, X)
    s = np.exp(z - z.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    g = (s - np.eye(net.n_outputs)[y]) / len(y)
    assert_close(net.vjp(th, X, g), net.grad(th, X, y), "exact", what=f"{name} vjp")
    T = np.stack([th, 2 * th])
    G = net.vjp(T, X, np.stack([g, -g]))
    assert np.array_equal(G[0], net.vjp(th, X, g))
    with pytest.raises(ValueError, match="g must have shape"):
        net.vjp(th, X, g[:-1])
