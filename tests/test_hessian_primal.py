"""The reused primal pass (pyquirk.hessian.primal) and the solver paths that run on it."""
import numpy as np
import pytest

from _tol import assert_close
from nets import NETS, problem
from pyquirk.hessian import Curvature, full_hessian, lanczos
from pyquirk.hessian.primal import PrimalCache, measured_net
from pyquirk.nn import Dense, Net, ReLU

#: issue 4 acceptance: eigenvalues against eigh, float64
EIG_RTOL = 1e-8


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("k", [1, 3])
def test_cached_tangent_pass_equals_the_engine(name, k):
    """Both paths (2-D MLP GEMMs, reference layers for the rest) give net.hvp, every layer type."""
    net, theta, X, y = problem(name, n=9, seed=4)
    V = np.random.default_rng(5).standard_normal((k, net.n_params))
    cache = PrimalCache(net, theta, X, y)
    expected = name.startswith("mlp-") and "gated" not in name        # Gate is not an activation
    assert cache.dense == measured_net(net) == expected
    ref = net.hvp(theta, X, y, V, backend="reference")
    assert_close(cache.hvp(V), ref, "fast", what=f"{name} cached, k={k}")
    assert_close(cache._layer_hvp(V), ref, "exact", what=f"{name} layer path, k={k}")
    assert_close(cache.hvp(V), ref, "fast", what="second call reuses the cache")


def test_cached_tangent_pass_float32_matches_float64():
    net, theta, X, y = problem("mlp-gelu", n=20, seed=1)
    V = np.random.default_rng(0).standard_normal((4, net.n_params))
    hv64 = PrimalCache(net, theta, X, y).hvp(V)
    hv32 = PrimalCache(net, theta.astype(np.float32), X.astype(np.float32), y).hvp(V.astype(np.float32))
    assert hv32.dtype == np.float32
    assert_close(hv32, hv64, "fast", np.float32)


@pytest.mark.parametrize("name, batch", [("mlp-relu", 7), ("mlp-mse", 64), ("cnn1d-maxpool", 13)])
def test_curvature_reuse_equals_engine_per_call(name, batch):
    net, theta, X, y = problem(name, n=70, seed=2)
    V = np.random.default_rng(3).standard_normal((5, net.n_params))
    fast = Curvature(net, theta, (X, y), batch_size=batch, reuse_primal=True)
    slow = Curvature(net, theta, (X, y), batch_size=batch, reuse_primal=False)
    assert_close(fast.matmat(V), slow.matmat(V), "fast")
    assert fast.counts == slow.counts
    assert "once per batch" in fast.semantics()["primal_pass"]
    assert "recomputed" in slow.semantics()["primal_pass"]
    assert fast.at(theta).reuse_primal


def test_reuse_primal_default_and_bad_values():
    net, theta, X, y = problem("mlp-tanh", n=10)
    assert Curvature(net, theta, (X, y), backend="reference").reuse_primal           # an MLP on a CPU backend
    conv, ct, cX, cy = problem("cnn1d-maxpool", n=10)
    assert not Curvature(conv, ct, (cX, cy)).reuse_primal                           # not measured: engine
    assert not Curvature(net, theta, (X, y), kind="ggn").reuse_primal
    with pytest.raises(ValueError, match="kind='hessian'"):
        Curvature(net, theta, (X, y), kind="ggn", reuse_primal=True)
    with pytest.raises(TypeError, match="reuse_primal"):
        Curvature(net, theta, (X, y), reuse_primal="yes")


@pytest.fixture(scope="module")
def relu_mlp():
    """A ReLU MLP (P = 1133, float64), its operator with the reused primal pass, exact eigenvalues."""
    net = Net([Dense(24), ReLU(), Dense(24), ReLU(), Dense(5)], input_shape=(16,))
    rng = np.random.default_rng(7)
    theta = net.init(1, dtype=np.float64) + 0.05 * rng.standard_normal(net.n_params)
    X, y = rng.standard_normal((200, 16)), rng.integers(0, 5, 200)
    curv = Curvature(net, theta, (X, y), batch_size=64, reuse_primal=True)
    H = full_hessian(curv)
    return curv, np.linalg.eigh(0.5 * (H + H.T))[0]


@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_lanczos_on_reused_primal_agrees_with_eigh(relu_mlp, which):
    curv, lam = relu_mlp
    exact = lam[::-1][:5] if which == "largest" else lam[:5]
    r = lanczos(curv, 5, which, seed=3)
    assert r.all_converged
    assert np.max(np.abs(r.eigenvalues - exact) / np.abs(exact)) <= EIG_RTOL


@pytest.mark.parametrize("block_size", [1, 2, 3, 5])
def test_top_eigenvalues_do_not_depend_on_block_size(relu_mlp, block_size):
    curv, lam = relu_mlp
    r = lanczos(curv, 5, "largest", block_size=block_size, seed=block_size)
    assert r.semantics["block_size"] == block_size and r.all_converged
    assert np.max(np.abs(r.eigenvalues - lam[::-1][:5]) / np.abs(lam[::-1][:5])) <= EIG_RTOL
