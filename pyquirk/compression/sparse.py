"""Sparse inference: pruned Dense layers as CSR matrices, run by the native core.

A :class:`SparseNet` holds each Dense weight of a pruned θ in CSR (row = output unit; ``indptr``
int64 ``[out+1]``, ``indices`` int32 ``[nnz]``, ``data`` ``[nnz]`` in θ's dtype) and every other
layer as it is. Activations between CSR layers stay **feature-major** (``[features, N]``): one
output row of ``W x`` is then a sum of contiguous rows of the input, the loop the native kernel
``_core.csr_matmul`` runs over OpenMP threads (csrc/cpu/sparse.cpp). Element-wise activations work
in either layout, a ReLU right after a Dense layer is fused into the kernel, and any other layer
(Conv, pooling, Flatten, Gate) runs the reference layer in the usual ``[N, ...]`` layout.

Twins: ``backend="reference"`` runs :func:`._reference.csr_matmul` (NumPy, row by row);
``backend="cpu"`` requires the native kernel; by default the native kernel runs when this build of
``pyquirk._core`` has it, else the NumPy twin.

Memory: CSR costs ``nnz·(itemsize + 4) + 8·(out + 1)`` bytes against ``out·in·itemsize`` dense, so
it is smaller above 50 % sparsity in float32 (above 1/3 in float64).
"""
from __future__ import annotations

import numpy as np

from .. import backends
from .._native import load_core
from .._validate import as_float_array
from ..nn import layers as L
from . import _reference

#: layers that act element by element (any layout); ReLU after a Dense layer is fused
ELEMENTWISE = (L.ReLU, L.LeakyReLU, L.Tanh, L.Sigmoid, L.GELU, L.Identity)

_native = {"module": None, "reason": None}


def native_module():
    """The module with the native ``csr_matmul`` (``pyquirk._core``), or None; see :func:`native_reason`."""
    if _native["module"] is None and _native["reason"] is None:
        _core, e = load_core()
        if _core is None:
            _native["reason"] = f"pyquirk._core failed to import ({type(e).__name__}: {e})"
        else:
            if hasattr(_core, "csr_matmul"):
                _native["module"] = _core
            else:
                _native["reason"] = ("this build of pyquirk._core has no csr_matmul (csrc/sparse_bindings.cpp "
                                     "not compiled in); rebuild it")
    return _native["module"]


def native_reason() -> str | None:
    """None when the native CSR kernel is usable, else why not."""
    native_module()
    return _native["reason"]


def _kernel(backend):
    name = backends.resolve(backend) if backend is not None or backends._current.get() is not None else None
    if name == "reference":
        return _reference.csr_matmul, "reference"
    mod = native_module()
    if mod is not None:
        return mod.csr_matmul, "cpu"
    if name == "cpu":
        raise RuntimeError(f"backend 'cpu' is not available for sparse inference: {native_reason()}")
    return _reference.csr_matmul, "reference"


def to_csr(W: np.ndarray, keep: np.ndarray | None = None):
    """CSR of a 2-D weight: entries where ``keep`` (default: ``W != 0``), row-major order.

    Returns:
        (indptr int64 ``[out+1]``, indices int32 ``[nnz]``, data ``[nnz]`` in W's dtype).
    """
    keep = (W != 0) if keep is None else keep
    rows, cols = np.nonzero(keep)
    indptr = np.zeros(W.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=W.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int32), np.ascontiguousarray(W[rows, cols])


class SparseNet:
    """A pruned :class:`pyquirk.nn.Net` for inference, Dense weights in CSR.

    Args:
        net: the architecture.
        theta: ``[P]`` parameters (pruned entries zero, or given by ``mask``).
        mask: ``[P]`` bool, True = kept; None keeps the nonzero entries of each Dense weight.

    Attributes:
        layers: per layer, ``("csr", indptr, indices, data, bias)``, or ``("layer", params)``.
    """

    def __init__(self, net, theta, mask=None):
        theta = as_float_array(theta, "theta", ndim=1)
        net._check_p(theta.shape, "theta")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != theta.shape:
                raise ValueError(f"mask must be bool [P={net.n_params}], got {mask.dtype} {mask.shape}")
        self.net, self.dtype = net, theta.dtype
        self.layers = []
        views = net.layer_params(theta)
        for i, (layer, p) in enumerate(zip(net.layers, views)):
            if type(layer) is L.Dense:
                keep = None
                if mask is not None:
                    w = next(s for s in net.layout if s.layer == i and s.kind == "weight")
                    keep = mask[w.slice].reshape(w.shape)
                self.layers.append(("csr",) + to_csr(p[0], keep) + (np.ascontiguousarray(p[1]),))
            else:
                self.layers.append(("layer", tuple(np.asarray(a)[None] for a in p)))

    # ------------------------------------------------------------------------------- inference
    def logits(self, X, *, backend: str | None = None) -> np.ndarray:
        """Logits ``[N, C]`` of ``X: [N, *input_shape]`` (cast to θ's dtype)."""
        X = as_float_array(X, "X", dtype=self.dtype)
        if X.shape[1:] != self.net.input_shape or X.ndim != len(self.net.input_shape) + 1:
            raise ValueError(f"X must have shape [N, {', '.join(map(str, self.net.input_shape))}], got {X.shape}")
        matmul, _ = _kernel(backend)
        N = X.shape[0]
        x, fm = X, False                      # fm: x is feature-major [F, N]
        layers, i = self.net.layers, 0
        while i < len(layers):
            kind, *args = self.layers[i]
            if kind == "csr":                  # sample-major input is transposed inside the kernel
                relu = i + 1 < len(layers) and type(layers[i + 1]) is L.ReLU
                xin = x if fm else np.ascontiguousarray(x.reshape(N, -1))
                x = matmul(*args, xin, relu, check=False, x_rows=not fm)   # CSR built (and checked) here
                fm = True
                i += 2 if relu else 1
                continue
            if type(layers[i]) not in ELEMENTWISE:
                if fm:
                    x, fm = np.ascontiguousarray(x.T).reshape((N,) + layers[i].in_shape), False
                x = layers[i].forward(args[0], x[None])[0][0]
            else:
                x = layers[i].forward((), x)[0]
            i += 1
        return np.ascontiguousarray(x.T) if fm else x.reshape(N, -1)

    # ---------------------------------------------------------------------------------- memory
    def memory(self) -> dict:
        """Bytes of the sparse model against dense θ.

        Returns:
            ``{"sparse_bytes", "dense_bytes", "ratio", "nnz", "dense_weights", "layers": {i: {...}}}``;
            sparse counts CSR arrays + biases + other layers' parameters; dense is ``P·itemsize``.
        """
        item = np.dtype(self.dtype).itemsize
        per, total, nnz, wsize = {}, 0, 0, 0
        for i, (kind, *args) in enumerate(self.layers):
            if kind == "csr":
                indptr, indices, data, bias = args
                b = indptr.nbytes + indices.nbytes + data.nbytes + bias.nbytes
                size = (indptr.size - 1) * self.net.layers[i].in_features
                per[i] = {"nnz": int(data.size), "size": int(size), "csr_bytes": int(b),
                          "dense_bytes": int((size + bias.size) * item)}
                nnz, wsize = nnz + data.size, wsize + size
            else:
                b = sum(a.nbytes for a in args[0])
            total += b
        dense = self.net.n_params * item
        return {"sparse_bytes": int(total), "dense_bytes": int(dense), "ratio": dense / total,
                "nnz": int(nnz), "dense_weights": int(wsize), "layers": per}


def time_logits(net, theta, X, mask=None, *, repeat: int = 5, backend: str | None = None) -> dict:
    """Median wall times of the dense logits pass and of the CSR path on the same pruned θ and X.

    The dense path is the engine backend's ``logits`` called directly (what ``net.logits`` runs after
    its input checks, which scan all of θ), so both sides time the product, not the validation.

    Args:
        theta: ``[P]`` pruned parameters (zeros where pruned, or given by ``mask``).
        X: ``[N, *input_shape]``.
        repeat: timed calls per path (after one warm-up call each).
        backend: the dense path's engine backend and the sparse path's kernel choice.

    Returns:
        ``{"dense_s", "sparse_s", "speedup", "kernel", "max_abs_diff"}`` plus :meth:`SparseNet.memory`'s keys.
    """
    import statistics
    import time

    sp = SparseNet(net, theta, mask)
    th = np.where(mask, theta, 0).astype(np.asarray(theta).dtype) if mask is not None else np.asarray(theta)
    X = np.ascontiguousarray(np.asarray(X, dtype=sp.dtype))
    dense = backends.get(backend)
    th3, X3 = np.ascontiguousarray(th[None]), X[None]
    out = {}
    for name, fn in (("dense_s", lambda: dense.logits(net, th3, X3)[0]),
                     ("sparse_s", lambda: sp.logits(X, backend=backend))):
        out[name.replace("_s", "")] = fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    diff = float(np.max(np.abs(out.pop("dense") - out.pop("sparse"))))
    return {**out, "speedup": out["dense_s"] / out["sparse_s"], "kernel": _kernel(backend)[1],
            "max_abs_diff": diff, **sp.memory()}


def sparse_logits(net, theta, X, mask=None, *, backend: str | None = None) -> np.ndarray:
    """``SparseNet(net, theta, mask).logits(X)``: logits ``[N, C]`` through the CSR path."""
    return SparseNet(net, theta, mask).logits(X, backend=backend)


__all__ = ["ELEMENTWISE", "SparseNet", "sparse_logits", "time_logits", "to_csr", "native_module", "native_reason"]
