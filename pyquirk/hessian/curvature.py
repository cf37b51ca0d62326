"""The curvature operator: the Hessian (or Gauss-Newton matrix) of the mean loss over a stated data set.

Semantics (DESIGN §4, "Curvature"):

- ``L(θ) = (1/N) Σ_n ℓ(θ; x_n, y_n)`` over *all* N examples of the data given. The data are cut
  into batches of ``batch_size`` only to bound memory; batch b (``n_b`` examples) enters with the
  weight ``n_b / N``, so ``H v`` is the same (up to rounding) for every batch size, including a
  last, smaller batch. An unweighted mean of batch Hessians, or a sum, is a different matrix.
- ``params`` selects a block of coordinates S of θ (``"all"``, ``"weights"``, ``"biases"``, or
  parameter/layer names as in :meth:`pyquirk.nn.Net.param_mask`). The operator is ``H[S, S]``:
  the Hessian with respect to the selected parameters, the others held fixed. Vectors live in
  R^|S|, in θ's order.
- ``kind="hessian"`` is the exact Hessian (Pearlmutter's R-operator, ``net.hvp``);
  ``kind="ggn"`` is the generalised Gauss-Newton matrix ``G = (1/N) Σ_n J_nᵀ H_ℓ(z_n) J_n``
  (J_n = ∂logits/∂θ, H_ℓ the loss Hessian in the logits: ``diag(s) − s sᵀ`` for softmax CE,
  ``(2/C) I`` for MSE). G is positive semi-definite; it is H without the second-order terms of
  the network.

Every product goes through blocks: ``matmat(V)`` with ``V: [k, |S|]`` makes one engine call per
batch (per tangent chunk), in which the k tangents share one primal forward and backward pass.
Since θ and the data are fixed, the primal pass is the same for every call: with
``reuse_primal`` (on by default for MLPs on the CPU backends, see :func:`Curvature.__init__`) it is
computed once per batch (:class:`.primal.PrimalCache`) and each call runs the tangent pass alone.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import as_float_array, check_choice, check_positive_int
from .. import backends
from ..nn.net import Net
from .primal import PrimalCache, cache_bytes, measured_net

KINDS = ("hessian", "ggn")
#: bytes of tangent activations one engine call may hold (k × batch × activations × itemsize)
TANGENT_BYTES = 256 * 2 ** 20
#: most bytes of primal caches (all batches together) that ``reuse_primal=None`` will hold
PRIMAL_CACHE_BYTES = 512 * 2 ** 20


def split_data(data) -> tuple:
    """``(X, y)`` from a pair or from a :class:`pyquirk.data.Dataset` (its training split)."""
    if hasattr(data, "X_train") and hasattr(data, "y_train"):
        return data.X_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError("data must be a pair (X, y) or a Dataset (its training split is used), "
                    f"got {type(data).__name__}")


def _activation_size(net: Net) -> int:
    """Floats per example that one tangent carries through the network (every layer's input)."""
    return sum(math.prod(getattr(layer, "in_shape", ())) for layer in net.layers) + net.n_outputs


class Curvature:
    """``H`` (or the GGN) of the mean loss of ``net`` at ``θ`` over ``data``, as a block operator.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        theta: parameters ``[P]`` (float32 or float64; passes run in θ's dtype).
        data: ``(X, y)`` with ``X: [N, *input_shape]``, ``y: [N]`` (or ``[N, C]`` targets), or a
            ``Dataset`` (its training split).
        params: parameter selection (see module docstring); recorded in :meth:`semantics`.
        batch_size: examples per engine call (default: all N at once). Batches are size-weighted.
        kind: ``"hessian"`` or ``"ggn"``.
        weight_decay: adds ``(weight_decay/2)·‖θ_S‖²`` to the objective (so ``weight_decay·I`` to
            H); 0 by default. Recorded in :meth:`semantics`.
        max_tangents: tangents per engine call (default: from :data:`TANGENT_BYTES`).
        backend: engine backend for the Hessian passes (the GGN product uses the reference layers).
        reuse_primal: compute each batch's primal forward and backward once and run only the
            tangent pass per product (:class:`.primal.PrimalCache`, reference layers, NumPy BLAS).
            ``None`` (default): on for ``kind="hessian"`` when the backend resolves to a CPU one
            (``reference``/``cpu``), the net has only Dense and activation layers (where it
            was measured faster at every block size; docs/hessian.md §6) and the caches fit in
            :data:`PRIMAL_CACHE_BYTES`. ``True`` forces it (any net the reference engine runs).

    Attributes:
        dim: size of the operator, ``|S|``.
        index: ``[dim]`` positions of the selected parameters in θ.
        counts: ``{"hvps": tangents multiplied, "hvp_calls": engine calls, "grad_calls": ...}``.
    """

    def __init__(self, net: Net, theta, data, *, params="all", batch_size: int | None = None,
                 kind: str = "hessian", weight_decay: float = 0.0, max_tangents: int | None = None,
                 backend: str | None = None, reuse_primal: bool | None = None):
        if not isinstance(net, Net):
            raise TypeError(f"net must be a pyquirk.nn.Net, got {type(net).__name__}")
        self.net = net
        self.theta = as_float_array(theta, "theta", ndim=1)
        net._check_p(self.theta.shape, "theta")
        X, y = split_data(data)
        if np.ndim(X) == 0 or len(X) == 0 or np.ndim(y) == 0 or len(y) == 0:
            raise ValueError(f"data is empty: X has shape {np.shape(X)}, y has shape {np.shape(y)}")
        X = as_float_array(X, "X", dtype=self.theta.dtype)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"data: y has {len(y)} examples but X has {len(X)}")
        net.loss(self.theta, X[:1], y[:1])      # shape/label checks with the net's own messages
        self.X, self.y, self.N = X, y, len(X)
        self.kind = check_choice(kind, KINDS, "kind")
        if self.kind == "ggn" and net.loss_name not in ("ce", "cross_entropy", "mse"):
            raise ValueError(f"kind='ggn' needs a CE or MSE loss, got {net.loss_name!r}")
        wd = weight_decay
        if isinstance(wd, bool) or not isinstance(wd, (int, float, np.integer, np.floating)) \
                or not np.isfinite(wd) or wd < 0:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
        self.weight_decay = float(wd)
        self.params = params
        self.mask = net.param_mask(params)
        self.index = np.flatnonzero(self.mask)
        if self.index.size == 0:
            raise ValueError(f"params={params!r} selects no parameters")
        self.dim = int(self.index.size)
        self.batch_size = self.N if batch_size is None else min(check_positive_int(batch_size, "batch_size"), self.N)
        if max_tangents is None:
            per = _activation_size(net) * self.batch_size * 3 * self.theta.dtype.itemsize
            max_tangents = max(1, int(TANGENT_BYTES // max(per, 1)))
        self.max_tangents = check_positive_int(max_tangents, "max_tangents")
        self.backend = backend
        self.reuse_primal = self._choose_reuse(reuse_primal)
        self._primal = None                                  # [PrimalCache per batch], built on first use
        self.counts = {"hvps": 0, "hvp_calls": 0, "grad_calls": 0}
        self._grad = None

    def _choose_reuse(self, reuse_primal) -> bool:
        if reuse_primal is not None:
            if not isinstance(reuse_primal, (bool, np.bool_)):
                raise TypeError(f"reuse_primal must be True, False or None, got {reuse_primal!r}")
            if reuse_primal and self.kind != "hessian":
                raise ValueError("reuse_primal=True applies to kind='hessian' only")
            return bool(reuse_primal)
        return (self.kind == "hessian" and backends.resolve(self.backend) in ("reference", "cpu")
                and measured_net(self.net)
                and cache_bytes(self.net, self.N, self.dtype.itemsize) <= PRIMAL_CACHE_BYTES)

    # ---------------------------------------------------------------- description
    @property
    def dtype(self) -> np.dtype:
        return self.theta.dtype

    @property
    def batches(self) -> list[tuple[int, int]]:
        """``[(start, stop)]`` of each batch."""
        return [(s, min(s + self.batch_size, self.N)) for s in range(0, self.N, self.batch_size)]

    def semantics(self) -> dict:
        """What this operator is, as recorded in every result built on it."""
        p = self.params
        objective = f"mean {self.net.loss_name} over the N={self.N} examples given"
        if self.weight_decay:
            objective += f" + ({self.weight_decay:g}/2)·‖θ_S‖²"
        return {"operator": self.kind, "loss": self.net.loss_name, "objective": objective,
                "weight_decay": self.weight_decay,
                "params": p if isinstance(p, str) else [str(s) for s in p],
                "dim": self.dim, "n_params_total": int(self.net.n_params),
                "batch_size": self.batch_size, "batch_weighting": "n_b / N (size-weighted)",
                "dtype": self.dtype.name, "backend": self.backend or "default",
                "primal_pass": ("once per batch, reused by every product (reference layers)"
                                if self.reuse_primal else "recomputed by each engine call")}

    def __repr__(self):
        return (f"Curvature({self.kind}, dim={self.dim}, N={self.N}, batch_size={self.batch_size}, "
                f"params={self.params!r})")

    def at(self, theta) -> "Curvature":
        """The same operator (data, selection, batching, kind) at another θ."""
        return Curvature(self.net, theta, (self.X, self.y), params=self.params,
                         batch_size=self.batch_size, kind=self.kind, weight_decay=self.weight_decay,
                         max_tangents=self.max_tangents,
                         backend=self.backend, reuse_primal=self.reuse_primal)

    # ---------------------------------------------------------------- products
    def matmat(self, V) -> np.ndarray:
        """``H V`` for ``V: [k, dim]`` -> ``[k, dim]`` float64 (rows are vectors)."""
        V = np.asarray(V)
        if V.ndim != 2 or V.shape[1] != self.dim:
            raise ValueError(f"V must have shape [k, dim={self.dim}], got {V.shape}")
        if 0 < V.shape[0] <= self.max_tangents:              # one chunk: no copy into a second array
            return self._chunk(V)
        out = np.empty((V.shape[0], self.dim), dtype=np.float64)
        for c in range(0, V.shape[0], self.max_tangents):
            out[c:c + self.max_tangents] = self._chunk(V[c:c + self.max_tangents])
        return out

    def matvec(self, v) -> np.ndarray:
        """``H v`` for ``v: [dim]`` (one tangent; prefer :meth:`matmat` with a block)."""
        return self.matmat(np.asarray(v)[None])[0]

    def _chunk(self, V) -> np.ndarray:
        k, every = V.shape[0], self.dim == self.net.n_params
        if every:
            full = np.ascontiguousarray(V, dtype=self.dtype)
        else:
            full = np.zeros((k, self.net.n_params), dtype=self.dtype)
            full[:, self.index] = V
        acc = None
        if self.reuse_primal and self._primal is None:
            self._primal = [PrimalCache(self.net, self.theta, self.X[s:e], self.y[s:e]) for s, e in self.batches]
        for j, (s, e) in enumerate(self.batches):
            if self.reuse_primal:
                hv = self._primal[j].hvp(full)
            elif self.kind == "hessian":
                hv = self.net.hvp(self.theta, self.X[s:e], self.y[s:e], full, backend=self.backend)
            else:
                hv = ggn_product(self.net, self.theta, self.X[s:e], self.y[s:e], full)
            w = (e - s) / self.N
            if acc is None:                                  # float64 accumulation of the weighted sum
                acc = hv.astype(np.float64) if w == 1.0 else w * hv.astype(np.float64)
            else:
                acc += w * hv
            self.counts["hvp_calls"] += 1
        self.counts["hvps"] += k
        out = acc if every else acc[:, self.index]
        if self.weight_decay:
            out += self.weight_decay * V
        return out

    def loss_and_grad(self) -> tuple[float, np.ndarray]:
        """The objective (mean loss, plus the weight-decay term) and its gradient ``[dim]`` (float64)."""
        if self._grad is None:
            loss, grad = 0.0, np.zeros(self.net.n_params)
            for s, e in self.batches:
                lb, gb = self.net.loss_and_grad(self.theta, self.X[s:e], self.y[s:e], backend=self.backend)
                w = (e - s) / self.N
                loss, grad = loss + w * float(lb), grad + w * gb
                self.counts["grad_calls"] += 1
            th = self.theta[self.index].astype(np.float64)
            loss += 0.5 * self.weight_decay * float(th @ th)
            self._grad = (loss, grad[self.index] + self.weight_decay * th)
        return self._grad[0], self._grad[1].copy()

    def as_linear_operator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64) that calls :meth:`matmat`."""
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator((self.dim, self.dim), dtype=np.float64,
                              matvec=lambda v: self.matvec(np.ravel(v)),
                              matmat=lambda M: self.matmat(np.asarray(M).T).T)


def ggn_product(net: Net, theta, X, y, V) -> np.ndarray:
    """Generalised Gauss-Newton products ``G V`` of the mean loss, ``V: [k, P]`` -> ``[k, P]``.

    ``G = (1/N) Σ_n J_nᵀ H_ℓ J_n``: the R-operator of the forward pass gives ``J V`` at the logits,
    the loss's own R-operator applies ``H_ℓ`` (it does not depend on the labels for CE), and the
    ordinary reverse pass applies ``Jᵀ``. This is the Hessian pass of the reference backend with
    the logit cotangent of the second-order terms set to zero. Written with the reference layers.
    """
    t, X3, y3 = net._prepare(theta, X, y)                # [1, P], [1, N, ...], [1, N(, C)]
    V = np.asarray(V, dtype=t.dtype)
    params = net.layer_params(t[:, None, :])              # model dims (1, 1)
    dparams = net.layer_params(V[None])                   # model dims (1, k)
    x, caches, dx = X3[:, None], [], None
    for layer, p, dp in zip(net.layers, params, dparams):
        x, cache = layer.forward(p, x)
        dx = layer.jvp(p, dp, cache, dx)
        caches.append(cache)
    g = net.loss_fn.rgrad(x, y3[:, None], dx, 1.0 / x.shape[-2])   # H_ℓ J V / N  [1, k, N, C]
    grads = [None] * len(net.layers)
    for i in reversed(range(len(net.layers))):
        g, grads[i] = net.layers[i].vjp(params[i], caches[i], g, need_gx=i > 0)
    return net.flatten(grads, (1, V.shape[0]), t.dtype)[0]


def as_operator(op):
    """A :class:`Curvature`, or any object with ``dim`` and ``matmat``; a symmetric ndarray is wrapped."""
    if hasattr(op, "matmat") and hasattr(op, "dim"):
        return op
    if isinstance(op, np.ndarray):
        return DenseOperator(op)
    raise TypeError(f"expected a Curvature (or an operator with .dim and .matmat) or a symmetric "
                    f"ndarray, got {type(op).__name__}")


class DenseOperator:
    """A symmetric matrix as an operator (for tests, and to run estimators on a known matrix)."""

    kind = "dense"

    def __init__(self, A):
        A = as_float_array(A, "A", ndim=2)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        self.A = A.astype(np.float64)
        self.dim = A.shape[0]
        self.dtype = A.dtype
        self.counts = {"hvps": 0, "hvp_calls": 0, "grad_calls": 0}

    def matmat(self, V):
        V = np.asarray(V, dtype=np.float64)
        if V.ndim != 2 or V.shape[1] != self.dim:
            raise ValueError(f"V must have shape [k, dim={self.dim}], got {V.shape}")
        self.counts["hvps"] += V.shape[0]
        self.counts["hvp_calls"] += 1
        return V @ self.A.T

    def semantics(self) -> dict:
        return {"operator": "dense", "dim": self.dim, "dtype": np.dtype(self.dtype).name}


__all__ = ["Curvature", "ggn_product", "split_data", "as_operator", "DenseOperator", "KINDS"]
