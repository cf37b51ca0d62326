"""Sparse inference: CSR logits equal dense logits (tolerance table), twins agree, memory figures."""
import numpy as np
import pytest
from _tol import assert_close

from pyquirk.compression import SparseNet, apply_mask, prune_magnitude, sparse_logits
from pyquirk.compression import _reference as ref
from pyquirk.compression.sparse import native_module, native_reason, to_csr
from pyquirk.nn import GELU, Conv1d, Dense, Flatten, Gate, MaxPool, Net, ReLU, Tanh

NATIVE = pytest.param("cpu", marks=pytest.mark.skipif(
    native_module() is None, reason=f"native CSR kernel unavailable: {native_reason()}"))
KERNELS = ["reference", NATIVE]
DTYPES = [np.float32, np.float64]

NETS = {
    "mlp-relu": lambda: Net([Dense(40), ReLU(), Dense(30), ReLU(), Dense(5)], input_shape=(17,)),
    "mlp-tanh-gelu": lambda: Net([Dense(20), Tanh(), Dense(20), GELU(), Dense(4)], input_shape=(9,)),
    "cnn": lambda: Net([Conv1d(4, 3, padding=1), ReLU(), MaxPool(2), Flatten(), Dense(12), ReLU(), Dense(3)],
                       input_shape=(2, 10)),
    "gated": lambda: Net([Dense(16), Gate(), ReLU(), Dense(3)], input_shape=(6,)),
}


def pruned(name, dtype, p=0.8, seed=0):
    net = NETS[name]()
    theta = net.init(seed, dtype=dtype)
    mask = prune_magnitude(net, theta, p)
    X = np.random.default_rng(seed).standard_normal((33,) + net.input_shape).astype(dtype)
    return net, apply_mask(theta, mask), mask, X


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(NETS))
def test_csr_logits_equal_dense_logits(name, dtype, kernel):
    net, theta, mask, X = pruned(name, dtype)
    dense = net.logits(theta, X, backend="reference")
    out = sparse_logits(net, theta, X, backend=kernel)
    assert out.dtype == dtype and out.shape == dense.shape
    assert_close(out, dense, "fast", dtype, f"{name} CSR logits")
    assert_close(SparseNet(net, theta, mask).logits(X, backend=kernel), dense, "fast", dtype, "with mask")


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("p", [0.0, 0.5, 0.98, 0.999])
def test_csr_logits_across_sparsities_and_batch_sizes(kernel, p):
    net = Net([Dense(300), ReLU(), Dense(200), ReLU(), Dense(10)], input_shape=(50,))
    theta = net.init(1, dtype=np.float64)
    theta = apply_mask(theta, prune_magnitude(net, theta, p))
    for N in (1, 7, 300, 600):           # one sample, and more than one sample block
        X = np.random.default_rng(N).standard_normal((N, 50))
        assert_close(sparse_logits(net, theta, X, backend=kernel), net.logits(theta, X, backend="reference"),
                     "fast", np.float64, f"p={p} N={N}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_native_kernel_matches_its_numpy_twin(dtype, relu):
    mod = native_module()
    if mod is None:
        pytest.skip(f"native CSR kernel unavailable: {native_reason()}")
    rng = np.random.default_rng(2)
    W = rng.standard_normal((70, 90)).astype(dtype)
    W[rng.random(W.shape) < 0.85] = 0
    W[5] = 0                                                    # an empty row: bias only
    indptr, indices, data = to_csr(W)
    b = rng.standard_normal(70).astype(dtype)
    Xt = rng.standard_normal((90, 513)).astype(dtype)
    assert_close(mod.csr_matmul(indptr, indices, data, b, Xt, relu), ref.csr_matmul(indptr, indices, data, b, Xt, relu),
                 "fast", dtype, "csr_matmul")
    assert_close(mod.csr_matmul(indptr, indices, data, None, Xt, False), W @ Xt, "fast", dtype, "no bias")
    for N in (1, 5, 513):                                       # sample-major input, one or several blocks
        X = np.ascontiguousarray(Xt[:, :N].T)
        assert_close(mod.csr_matmul(indptr, indices, data, b, X, relu, x_rows=True),
                     ref.csr_matmul(indptr, indices, data, b, X, relu, x_rows=True), "fast", dtype, f"x_rows N={N}")


def test_native_kernel_validates_its_inputs():
    mod = native_module()
    if mod is None:
        pytest.skip(f"native CSR kernel unavailable: {native_reason()}")
    indptr, indices, data = to_csr(np.eye(3, dtype=np.float32))
    Xt = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"indices\[2\] = 7 lies outside"):
        mod.csr_matmul(indptr, np.array([0, 1, 7], np.int32), data, None, Xt)
    with pytest.raises(ValueError, match="indptr must start at 0"):
        mod.csr_matmul(indptr + 1, indices, data, None, Xt)
    with pytest.raises(TypeError, match="indices must be int32"):
        mod.csr_matmul(indptr, indices.astype(np.int64), data, None, Xt)
    with pytest.raises(TypeError, match="data must have Xt's dtype"):
        mod.csr_matmul(indptr, indices, data.astype(np.float64), None, Xt)
    with pytest.raises(ValueError, match="C-contiguous"):
        mod.csr_matmul(indptr, indices, data, None, np.ones((4, 3), np.float32).T)
    with pytest.raises(ValueError, match="bias must have"):
        mod.csr_matmul(indptr, indices, data, np.ones(2, np.float32), Xt)


def test_mask_keeps_explicit_zeros_and_memory_figures():
    net, theta, mask, X = pruned("mlp-relu", np.float32, p=0.9)
    w0 = next(s for s in net.layout if s.name == "0.weight")
    theta[w0.offset + np.flatnonzero(mask[w0.slice])[0]] = 0.0     # a kept weight that happens to be 0
    by_mask, by_value = SparseNet(net, theta, mask), SparseNet(net, theta)
    assert by_mask.memory()["nnz"] == by_value.memory()["nnz"] + 1
    assert_close(by_mask.logits(X), by_value.logits(X), "exact", np.float32, "explicit zero")
    mem = by_mask.memory()
    n_w = int((mask & net.param_mask("weights")).sum())
    n_rows = sum(s.shape[0] + 1 for s in net.layout if s.kind == "weight")
    n_b = sum(s.size for s in net.layout if s.kind == "bias")
    assert mem["nnz"] == n_w and mem["dense_bytes"] == 4 * net.n_params
    assert mem["sparse_bytes"] == n_w * (4 + 4) + 8 * n_rows + 4 * n_b
    assert mem["ratio"] > 3


def test_bad_inputs():
    net, theta, mask, X = pruned("mlp-relu", np.float32)
    with pytest.raises(ValueError, match="theta must have 1 dimensions"):
        SparseNet(net, np.stack([theta, theta]))
    with pytest.raises(ValueError, match="X must have shape"):
        SparseNet(net, theta).logits(X[:, :5])
    with pytest.raises(ValueError, match="mask must be bool"):
        SparseNet(net, theta, mask.astype(int))
