"""The reference engine against PyTorch (torch.func) on weights copied by ``to_torch``, and the
interop itself: layout contract, exact round trip, and clear errors for what the engine lacks.

PyTorch is an oracle nobody here wrote (STYLE 3). Every net in ``tests/nets.NETS`` is checked for
logits, mean and per-sample loss, gradient, a k=3 HVP block, and per-sample input gradients
(untargeted and targeted), in float64 and float32, plus the population axis and a dense Hessian.
"""
import os

import numpy as np
import pytest

from _tol import assert_close
from nets import NETS, problem


def _oracle():
    """torch, or a skip locally; under PYQUIRK_REQUIRE_ORACLES=1 a missing torch is a failure."""
    if os.environ.get("PYQUIRK_REQUIRE_ORACLES") == "1":
        import torch
        return torch
    return pytest.importorskip("torch")


torch = _oracle()
nn = torch.nn
from torch.func import functional_call, grad, jvp, vmap  # noqa: E402

from pyquirk.interop import from_torch, to_torch, torch_loss_fn, unflatten_torch  # noqa: E402
from pyquirk.nn import (GELU, AvgPool, Conv2d, Dense, Flatten, LeakyReLU, MaxPool, Net,  # noqa: E402
                        ReLU, Tanh)

# torch.func's first jvp scripts torch's own decompositions, which warns in torch >= 2.10
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

DTYPES = [np.float64, np.float32]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tensors are tiny: one intra-op thread is faster and immune to a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

T = {np.float64: torch.float64, np.float32: torch.float32}


# ------------------------------------------------------------------------------------------
# The oracle: torch.func on a function of the flat θ, through the module built by to_torch
# ------------------------------------------------------------------------------------------

class Oracle:
    """torch.func versions of the engine's passes, for one architecture (θ is a torch tensor [P])."""

    def __init__(self, net, theta):
        self.net, self.model = net, to_torch(net, theta)
        self.ce = net.loss_name == "ce"

    def logits(self, th, X):
        return functional_call(self.model, unflatten_torch(self.net, th), (X,))

    def per_sample(self, z, y):
        lf = torch_loss_fn(self.net, reduction="none")(z, y)
        return lf if self.ce else lf.mean(-1)  # MSELoss(none) is [N, C]; the engine averages C

    def loss(self, th, X, y):
        # per-sample then mean, not torch_loss_fn(net)(z, y): in torch 2.13 MSELoss(reduction="mean")
        # fails under forward-over-reverse ("ZeroTensors are immutable"); reduction="none" works.
        return self.per_sample(self.logits(th, X), y).mean()

    def grad(self, th, X, y):
        return grad(self.loss)(th, X, y)

    def hvp(self, th, X, y, V):  # forward-over-reverse, vmapped over the k tangents
        return vmap(lambda v: jvp(lambda t: grad(self.loss)(t, X, y), (th,), (v,))[1])(V)

    def input_grad(self, th, X, labels):  # ∂/∂X of Σ_i loss(x_i, label_i) = per-sample ∂loss_i/∂x_i
        return grad(lambda x: self.per_sample(self.logits(th, x), labels).sum())(X)


def _t(a, dtype):
    a = np.asarray(a)
    return torch.tensor(a) if a.dtype.kind in "iu" else torch.tensor(a, dtype=T[dtype])


def _np(t):
    return t.detach().numpy()


def _setup(name, dtype, seed=0):
    net, th, X, y = problem(name, n=5, dtype=dtype, seed=seed)
    return net, th, X, y, Oracle(net, th)


def _target(net, y, dtype, seed=3):
    """Targeted labels: another class for CE, other float targets for MSE."""
    if net.loss_name == "ce":
        return (y + 1) % net.n_outputs
    return np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)


# ------------------------------------------------------------------------------------------
# Every net, every pass, float64 and float32
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_logits_and_loss_match_torch(name, dtype):
    net, th, X, y, o = _setup(name, dtype)
    tt, Xt, yt = _t(th, dtype), _t(X, dtype), _t(y, dtype)
    assert_close(net.logits(th, X), _np(o.logits(tt, Xt)), "torch", dtype, f"{name} logits")
    assert_close(net.logits(th, X), _np(o.model(Xt)), "torch", dtype, f"{name} module logits")
    assert_close(net.loss(th, X, y), _np(o.loss(tt, Xt, yt)), "torch", dtype, f"{name} mean loss")
    assert_close(net.loss(th, X, y), _np(torch_loss_fn(net)(o.model(Xt), yt)), "torch", dtype,
                 f"{name} torch_loss_fn mean loss")
    assert_close(net.loss(th, X, y, per_sample=True), _np(o.per_sample(o.logits(tt, Xt), yt)),
                 "torch", dtype, f"{name} per-sample loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_grad_matches_torch(name, dtype):
    net, th, X, y, o = _setup(name, dtype)
    g = o.grad(_t(th, dtype), _t(X, dtype), _t(y, dtype))
    assert_close(net.grad(th, X, y), _np(g), "torch", dtype, f"{name} grad")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_hvp_block_matches_torch(name, dtype):
    net, th, X, y, o = _setup(name, dtype)
    V = np.random.default_rng(1).standard_normal((3, net.n_params)).astype(dtype)
    ours = net.hvp(th, X, y, V)
    ref = _np(o.hvp(_t(th, dtype), _t(X, dtype), _t(y, dtype), _t(V, dtype)))
    assert_close(ours, ref, "torch", dtype, f"{name} hvp")
    for k in range(3):  # per tangent too, so one small column cannot hide behind a large one
        assert_close(ours[k], ref[k], "torch", dtype, f"{name} hvp[{k}]")


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_input_grad_matches_torch(name, dtype, targeted):
    net, th, X, y, o = _setup(name, dtype)
    target = _target(net, y, dtype) if targeted else None
    labels = y if target is None else target
    ours = net.input_grad(th, X, y, target=target)
    ref = _np(o.input_grad(_t(th, dtype), _t(X, dtype), _t(labels, dtype)))
    assert ours.shape == X.shape
    assert_close(ours, ref, "torch", dtype, f"{name} input_grad targeted={targeted}")


# ------------------------------------------------------------------------------------------
# The population axis: θ [E, P] equals E single torch evaluations
# ------------------------------------------------------------------------------------------

#: one of each layer family and both losses (every net is already checked member by member above)
POPULATION_NETS = ["mlp-gelu", "mlp-mse", "cnn1d-maxpool", "cnn2d-pools"]


@pytest.mark.parametrize("per_member", [False, True], ids=["shared-data", "per-member-data"])
@pytest.mark.parametrize("name", POPULATION_NETS)
def test_population_equals_single_torch_evaluations(name, per_member):
    dtype, E, k = np.float64, 3, 2
    net, _, X, y = problem(name, n=4, dtype=dtype)
    rng = np.random.default_rng(7)
    th = (rng.standard_normal((E, net.n_params)) * 0.7).astype(dtype)
    if per_member:
        parts = [problem(name, n=4, dtype=dtype, seed=s) for s in range(E)]
        X, y = np.stack([p[2] for p in parts]), np.stack([p[3] for p in parts])
    V = rng.standard_normal((E, k, net.n_params)).astype(dtype)
    target = _target(net, y, dtype)
    o = Oracle(net, th[0])
    z, ls, g = net.logits(th, X), net.loss(th, X, y, per_sample=True), net.grad(th, X, y)
    hv, hv_shared = net.hvp(th, X, y, V), net.hvp(th, X, y, V[0])
    gx, gx_t = net.input_grad(th, X, y), net.input_grad(th, X, y, target=target)
    assert z.shape[0] == ls.shape[0] == g.shape[0] == hv.shape[0] == hv_shared.shape[0] == gx.shape[0] == E
    for e in range(E):
        Xe, ye, te = (X[e], y[e], target[e]) if per_member else (X, y, target)
        tt, Xt, yt = _t(th[e], dtype), _t(Xe, dtype), _t(ye, dtype)
        what = f"{name} member {e}"
        assert_close(z[e], _np(o.logits(tt, Xt)), "torch", dtype, f"{what} logits")
        assert_close(ls[e], _np(o.per_sample(o.logits(tt, Xt), yt)), "torch", dtype, f"{what} loss")
        assert_close(g[e], _np(o.grad(tt, Xt, yt)), "torch", dtype, f"{what} grad")
        assert_close(hv[e], _np(o.hvp(tt, Xt, yt, _t(V[e], dtype))), "torch", dtype, f"{what} hvp")
        assert_close(hv_shared[e], _np(o.hvp(tt, Xt, yt, _t(V[0], dtype))), "torch", dtype,
                     f"{what} hvp shared V")
        assert_close(gx[e], _np(o.input_grad(tt, Xt, yt)), "torch", dtype, f"{what} input_grad")
        assert_close(gx_t[e], _np(o.input_grad(tt, Xt, _t(te, dtype))), "torch", dtype,
                     f"{what} targeted input_grad")


# ------------------------------------------------------------------------------------------
# The dense Hessian, column by column, against torch.autograd.functional.hessian
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mlp-tanh", "cnn1d-gelu"])
def test_dense_hessian_matches_torch(name):
    dtype = np.float64
    net, th, X, y, o = _setup(name, dtype)
    Xt, yt = _t(X, dtype), _t(y, dtype)
    H_torch = _np(torch.autograd.functional.hessian(lambda t: o.loss(t, Xt, yt), _t(th, dtype)))
    H = net.hvp(th, X, y, np.eye(net.n_params, dtype=dtype))  # row i = H e_i = column i (H symmetric)
    assert H.shape == H_torch.shape == (net.n_params, net.n_params)
    assert_close(H, H_torch, "torch", dtype, f"{name} dense Hessian")
    assert_close(H, H.T, "symmetry", dtype, f"{name} Hessian symmetry")
    assert_close(np.linalg.eigvalsh(H), np.linalg.eigvalsh(H_torch), "torch", dtype, f"{name} spectrum")


def _assert_derivatives_match_torch(net, th, X, y, rng, dtype):
    """grad, input_grad and an HVP of two random directions (drawn from ``rng``) against torch."""
    o = Oracle(net, th)
    tt, Xt, yt = _t(th, dtype), _t(X, dtype), _t(y, dtype)
    assert_close(net.grad(th, X, y), _np(o.grad(tt, Xt, yt)), "torch", dtype, "grad")
    assert_close(net.input_grad(th, X, y), _np(o.input_grad(tt, Xt, yt)), "torch", dtype, "input_grad")
    V = rng.standard_normal((2, net.n_params))
    assert_close(net.hvp(th, X, y, V), _np(o.hvp(tt, Xt, yt, _t(V, dtype))), "torch", dtype, "hvp")


# ------------------------------------------------------------------------------------------
# MaxPool ties: the first maximum (row-major within the window) receives the gradient, as in torch
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", [
    Net([MaxPool(2), Flatten(), Dense(3)], input_shape=(2, 8)),
    Net([MaxPool(2, stride=1), Flatten(), Dense(3)], input_shape=(2, 3, 3)),  # overlapping windows
    Net([MaxPool((2, 3), stride=(1, 2)), Tanh(), Flatten(), Dense(3)], input_shape=(1, 4, 7)),
], ids=["1d", "2d-overlap", "2d-rect"])
def test_maxpool_ties_follow_torch(net):
    dtype = np.float64
    rng = np.random.default_rng(0)
    th = rng.standard_normal(net.n_params)
    X = rng.integers(0, 2, (6,) + net.input_shape).astype(dtype)  # many tied maxima
    y = rng.integers(0, 3, 6)
    _assert_derivatives_match_torch(net, th, X, y, rng, dtype)


@pytest.mark.parametrize("act", [ReLU, lambda: LeakyReLU(0.1)], ids=["relu", "leaky_relu"])
def test_activation_kinks_follow_torch(act):
    """Pre-activations exactly 0: the derivative there is the left one (0, or the slope), as in torch."""
    dtype = np.float64
    net = Net([Dense(4), act(), Dense(3), act(), Dense(2)], input_shape=(3,))
    rng = np.random.default_rng(0)
    th = rng.standard_normal(net.n_params)
    views = net.unflatten(th)
    views["0.bias"][:2] = 0.0  # with x = 0 below, units 0 and 1 sit exactly on the kink
    X = np.zeros((2, 3))
    X[1] = rng.standard_normal(3)
    y = np.array([0, 1])
    _assert_derivatives_match_torch(net, th, X, y, rng, dtype)


# ------------------------------------------------------------------------------------------
# The interop contract: layout, round trip, modules built in torch, errors
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(NETS))
def test_layout_is_the_sequential_state_dict(name):
    net, th, *_ = problem(name)
    model = to_torch(net, th)
    assert [(n, tuple(p.shape)) for n, p in model.named_parameters()] == [(s.name, s.shape) for s in net.layout]
    views = net.unflatten(th)
    for n, p in model.state_dict().items():
        assert np.array_equal(p.numpy(), views[n]), n
    assert len(model) == len(net.layers)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_round_trip_is_exact(name, dtype):
    net, th, X, _ = problem(name, dtype=dtype)
    model = to_torch(net, th)
    assert all(p.dtype == T[dtype] for p in model.parameters())
    net2, th2 = from_torch(model, net.input_shape, net.loss_name)
    assert th2.dtype == th.dtype and np.array_equal(th2, th)
    assert [type(a) for a in net2.layers] == [type(b) for b in net.layers]
    assert [(s.name, s.shape, s.offset) for s in net2.layout] == [(s.name, s.shape, s.offset) for s in net.layout]
    assert net2.loss_name == net.loss_name
    assert np.array_equal(net2.logits(th2, X), net.logits(th, X))


def test_to_torch_copies_and_converts():
    net, th, X, _ = problem("cnn1d-maxpool", dtype=np.float64)
    model = to_torch(net, th, dtype=np.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert_close(_np(model(_t(X, np.float32))), net.logits(th, X), "torch", np.float32)
    with torch.no_grad():
        model[0].weight.zero_()
    assert np.abs(net.unflatten(th)["0.weight"]).min() > 0  # θ untouched: the module holds copies
    assert to_torch(net, torch.tensor(th), dtype=torch.float64)[0].weight.dtype == torch.float64
    state = torch.random.get_rng_state()
    to_torch(net, th)
    assert torch.equal(state, torch.random.get_rng_state())  # building does not draw from torch's RNG


def test_from_torch_on_a_model_built_in_torch():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.GELU()),
        nn.MaxPool2d(2), nn.Conv2d(4, 3, (2, 1), stride=(1, 2), padding="valid"), nn.LeakyReLU(0.2),
        nn.AvgPool2d((1, 2), stride=1), nn.Flatten(), nn.Linear(3 * 3 * 1, 5), nn.Sigmoid(), nn.Linear(5, 4),
        nn.Identity(),
    )
    net, th = from_torch(model, (1, 8, 8))
    assert th.dtype == np.float32 and th.shape == (sum(p.numel() for p in model.parameters()),)
    assert isinstance(net.layers[1], GELU) and isinstance(net.layers[3], Conv2d)
    X = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    assert_close(net.logits(th, X), _np(model(torch.tensor(X))), "torch", np.float32, "logits")
    net64, th64 = from_torch(model.double(), (1, 8, 8), dtype=np.float64)
    assert th64.dtype == np.float64
    assert_close(net64.logits(th64, X.astype(np.float64)), _np(model(torch.tensor(X, dtype=torch.float64))),
                 "torch", np.float64, "logits float64")


def test_from_torch_1d_and_mse():
    model = nn.Sequential(nn.Conv1d(2, 3, 3, stride=2, padding=1), nn.Tanh(), nn.AvgPool1d(2),
                          nn.MaxPool1d(2, stride=1), nn.Flatten(), nn.Linear(9, 2)).double()
    net, th = from_torch(model, (2, 17), loss="mse")
    assert net.loss_name == "mse" and isinstance(torch_loss_fn(net), nn.MSELoss)
    assert isinstance(net.layers[2], AvgPool) and net.layers[2].d == 1 and isinstance(net.layers[3], MaxPool)
    X = np.random.default_rng(0).standard_normal((3, 2, 17))
    assert_close(net.logits(th, X), _np(model(torch.tensor(X))), "torch", np.float64)
    assert isinstance(torch_loss_fn(Net([Dense(2)], (3,))), nn.CrossEntropyLoss)


@pytest.mark.parametrize("module, word", [
    (nn.Conv2d(1, 2, 3, dilation=2), "dilation"),
    (nn.Conv2d(2, 2, 3, groups=2), "groups"),
    (nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), "padding_mode"),
    (nn.Conv2d(1, 2, 2, padding="same"), "same"),
    (nn.Conv2d(1, 2, 3, bias=False), "bias=False"),
    (nn.Linear(4, 2, bias=False), "bias=False"),
    (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
    (nn.MaxPool2d(2, padding=1), "padding"),
    (nn.MaxPool2d(2, dilation=2), "dilation"),
    (nn.MaxPool2d(2, return_indices=True), "return_indices"),
    (nn.AvgPool2d(2, padding=1, count_include_pad=False), "padding"),
    (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
    (nn.AvgPool2d(2, divisor_override=3), "divisor_override"),
    (nn.GELU(approximate="tanh"), "approximate"),
    (nn.Flatten(start_dim=2), "start_dim"),
])
def test_from_torch_rejects_unsupported_options(module, word):
    in_shape = (4,) if isinstance(module, nn.Linear) else (2, 6, 6)
    with pytest.raises(ValueError, match=word):
        from_torch(nn.Sequential(module), in_shape)


@pytest.mark.parametrize("module", [nn.BatchNorm1d(4), nn.Dropout(), nn.Softmax(dim=1), nn.ELU(),
                                    nn.ConvTranspose1d(1, 1, 2), nn.Bilinear(2, 2, 2)])
def test_from_torch_names_unsupported_module_types(module):
    with pytest.raises(TypeError, match=type(module).__name__):
        from_torch(nn.Sequential(nn.Linear(4, 4), module, nn.Linear(4, 2)), (4,))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch([nn.Linear(4, 2)], (4,))


def test_from_torch_checks_shapes_against_input_shape():
    with pytest.raises(ValueError, match="in_channels"):
        from_torch(nn.Sequential(nn.Conv1d(3, 2, 2), nn.Flatten(), nn.Linear(10, 2)), (2, 6))
    with pytest.raises(ValueError, match="in_features"):
        from_torch(nn.Sequential(nn.Linear(5, 2)), (4,))
    with pytest.raises(ValueError, match="1-D"):
        from_torch(nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(8, 2)), (1, 5, 5))


def test_to_torch_rejects_populations_and_bad_theta():
    net, th, *_ = problem("mlp-relu")
    with pytest.raises(ValueError, match=r"theta\[e\]"):
        to_torch(net, np.stack([th, th]))
    with pytest.raises(ValueError, match="P="):
        to_torch(net, th[:-1])
    with pytest.raises(ValueError, match="float32 or float64"):
        to_torch(net, th, dtype=np.float16)
    with pytest.raises(ValueError, match="reduction"):
        torch_loss_fn(net, reduction="batchmean")


def test_unflatten_torch_is_differentiable_views():
    net = Net([Dense(3), LeakyReLU(0.3), Dense(2)], (4,))
    th = torch.arange(net.n_params, dtype=torch.float64, requires_grad=True)
    views = unflatten_torch(net, th)
    assert list(views) == [s.name for s in net.layout]
    sum(v.sum() * (i + 1) for i, v in enumerate(views.values())).backward()
    expect = np.concatenate([np.full(s.size, i + 1.0) for i, s in enumerate(net.layout)])
    assert np.array_equal(th.grad.numpy(), expect)
    assert unflatten_torch(net, th.detach().expand(2, -1))["2.weight"].shape == (2, 2, 3)
    with pytest.raises(ValueError, match="P="):
        unflatten_torch(net, th[:-1])
