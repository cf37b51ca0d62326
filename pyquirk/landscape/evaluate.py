"""Loss and accuracy of many parameter points at once: tiles on the population axis (DESIGN §5).

A *family* is a set of points that are affine in their coordinates, ``θ(c) = Σ_k c_k·B_k`` over a
small basis ``B: [K, P]``:

- a plane: basis ``(θ, d₁, d₂)``, coefficients ``(1, α, β)``, points ``(θ + α·d₁) + β·d₂`` from
  :func:`pyquirk.kernels.grid_points` (fresh per point);
- a segment: basis ``(θ_a, θ_b)``, coefficients ``(1 − α, α)``, points ``(1 − α)·θ_a + α·θ_b``.

**First-layer shortcut.** The first parameter layer (Dense or Conv; only parameter-free layers
before it) is linear in its weights, so its pre-activation is affine in the coordinates:
``op(X, Σ_k c_k W_k) + Σ_k c_k b_k = Σ_k c_k·(op(X, W_k) + b_k)``. The K products
``H_k = op(X, W_k) + b_k`` are computed once per data chunk; a tile's pre-activations are one small
product ``[T, K] @ [K, N·F]`` (``combine``, a kernel with twins in :mod:`._reference` and
:mod:`._numba`: one thread), and only the layers after it run per point, on
the population axis, with the tile's tail parameters (``θ_t`` from that layer's successor on; the first layer's
weights are never assembled). Without the shortcut each point is assembled in full and the whole
network runs on the population axis. The two agree to rounding (tests hold them to float32
tolerance against ``net.loss`` of each point alone).

The tail is an ordinary engine pass: ``layers[start:]`` form a Net of their own
(:func:`tail_net`) whose flat layout is θ's from ``tail_offset`` on, evaluated with per-member
data ``H: [T, N, *F]`` (one input per point) on the resolved backend, so a native backend serves it
with no new entry point. :func:`_tail_logits` / :func:`_tail_loss` state the same computation
with the layer objects directly; the tests hold the two equal.
"""
from __future__ import annotations

import contextlib
import copy
import math

import numpy as np

from .. import backends, kernels
from .._validate import as_float_array, as_labels, check_positive_int
from ..nn.layers import _Bilinear
from ._twins import twins as _twins

# Speed knobs only: results do not depend on them beyond rounding (the tests patch them to extremes).
#: bytes of the widest activation of one pass (tile points × chunk rows × widest layer): 20 points
#: of the 40-100-100-10 MLP at N = 1000, 4 of 784-512-512-10 at N = 1024 (flat between 4 and 32
#: points resp. 2 and 8 when measured; 1 point per call cost 20–50 % in call overhead)
TILE_BYTES = 8 * 2 ** 20
#: most points per tile
MAX_TILE = 64
#: data rows per pass (GEMMs of fewer rows lose efficiency: 128-row chunks ran the 40-100-100-10
#: grid 20–45 % slower than 1000-row ones)
CHUNK_ROWS = 1024


# ------------------------------------------------------------------------------- families
class PlaneFamily:
    """Points ``(θ + α·d₁) + β·d₂`` of a :class:`~pyquirk.landscape.Plane`."""

    def __init__(self, plane):
        self.basis = (plane.origin, plane.d1, plane.d2_or_zero())
        self.dtype = plane.origin.dtype

    def coeffs(self, a, b):
        return np.stack([np.ones_like(a), a, b], axis=1).astype(self.dtype)

    def points(self, a, b, lo: int = 0, out=None):
        o, d1, d2 = (v[lo:] for v in self.basis)
        return kernels.grid_points(o, d1, d2, a, b, out=out)


class SegmentFamily:
    """Points ``(1 − α)·θ_a + α·θ_b`` (α = 0 and α = 1 give θ_a and θ_b bit for bit)."""

    def __init__(self, theta_a, theta_b):
        self.basis = (theta_a, theta_b)
        self.dtype = theta_a.dtype

    def coeffs(self, a, b=None):
        return np.stack([1.0 - a, a], axis=1).astype(self.dtype)

    def points(self, a, b=None, lo: int = 0, out=None):
        c = self.coeffs(a)
        ta, tb = (v[lo:] for v in self.basis)
        out = np.multiply(c[:, :1], ta[None], out=out)     # (1 − α)·θ_a, rounded, then + α·θ_b
        out += c[:, 1:] * tb[None]
        return out


# ------------------------------------------------------------------------------- data
def check_data(net, X, y, dtype, names=("X", "y")):
    """Validated ``(X [N, *in] in dtype, loss targets, labels for accuracy)``."""
    nx, ny = names
    X = as_float_array(X, nx, dtype=dtype)
    if X.shape[1:] != net.input_shape or X.ndim != len(net.input_shape) + 1:
        raise ValueError(f"{nx} must have shape [N, {', '.join(map(str, net.input_shape))}], got {X.shape}")
    y = np.asarray(y)
    if net.loss_fn.label_kind == "class" or y.dtype.kind in "iu":
        labels = as_labels(y, ny, net.n_outputs)
        target = labels if net.loss_fn.label_kind == "class" else np.eye(net.n_outputs, dtype=dtype)[labels]
    else:
        target = as_float_array(y, ny, dtype=dtype)
        if target.shape[1:] != (net.n_outputs,):
            raise ValueError(f"{ny} targets must have shape [N, {net.n_outputs}], got {target.shape}")
        labels = target.argmax(-1)
    if len(labels) != len(X):
        raise ValueError(f"{ny} has {len(labels)} examples but {nx} has {len(X)}")
    return X, target, labels


def _widest(net, start: int = 0) -> int:
    """Floats per example of the widest activation of ``layers[start:]`` (im2col patches counted)."""
    w = net.n_outputs
    for layer in net.layers[start:]:
        size = math.prod(layer.in_shape)
        if hasattr(layer, "kernel") and hasattr(layer, "out_spatial") and layer.param_shapes:
            size = max(size, math.prod(layer.out_spatial) * layer.in_shape[0] * math.prod(layer.kernel))
        w = max(w, size)
    return w


def first_param_layer(net) -> int:
    return next(i for i, layer in enumerate(net.layers) if layer.param_shapes)


def shortcut_supported(net) -> bool:
    """True when the first parameter layer is Dense/Conv (bilinear), only parameter-free layers
    precede it, and parameter layers follow it."""
    k = first_param_layer(net)
    return isinstance(net.layers[k], _Bilinear) and _param_offset(net, k + 1) < net.n_params


def _param_offset(net, start: int) -> int:
    """Offset in θ of the first parameter of ``layers[start:]`` (P if none)."""
    return next((s.offset for s in net.layout if s.layer >= start), net.n_params)


def layer_views(net, start: int, theta_tail) -> list[tuple]:
    """Per layer of ``layers[start:]``, its parameters as ``[T, *shape]`` views of ``theta_tail``."""
    lo, T = _param_offset(net, start), theta_tail.shape[0]
    views = []
    for i in range(start, len(net.layers)):
        specs = [s for s in net.layout if s.layer == i]
        views.append(tuple(theta_tail[:, s.offset - lo:s.offset - lo + s.size].reshape((T,) + s.shape)
                           for s in specs))
    return views


# ------------------------------------------------------------------------------- the tail
def _tail_logits(net, start: int, params: list, H) -> np.ndarray:
    """Reference: ``layers[start:]`` on ``H: [T, N, *F]`` with per-point parameters -> ``[T, N, C]``."""
    x = H
    for layer, p in zip(net.layers[start:], params):
        x, _ = layer.forward(p, x)
    return x


def _tail_loss(net, tile_params: list, H0, y, start: int | None = None) -> np.ndarray:
    """Per-sample losses ``[T, N]`` from the first layer's pre-activations ``H0: [T, N, *F]``.

    ``tile_params`` are the per-layer parameters of ``layers[start:]`` (default: after the first
    parameter layer), ``[T, *shape]`` each; ``y`` the loss targets ``[N]`` (or ``[N, C]``).
    """
    start = first_param_layer(net) + 1 if start is None else start
    return net.loss_fn.per_sample(_tail_logits(net, start, tile_params, H0), y[None])


def tail_net(net, start: int):
    """``layers[start:]`` of ``net`` as a Net of its own (copied layers, input shape of
    ``layers[start]``, same loss), or None when that tail has no parameters. Its flat layout is
    θ's layout from the tail's first parameter on, so ``θ[..., offset:]`` is its parameter vector."""
    if start >= len(net.layers) or _param_offset(net, start) == net.n_params:
        return None
    from ..nn import Net
    return Net(copy.deepcopy(net.layers[start:]), input_shape=net.layers[start].in_shape, loss=net.loss_name)


def tail_logits(tail, theta_tail, H, backend: str | None = None) -> np.ndarray:
    """The tail network's logits ``[T, N, C]`` for ``theta_tail: [T, P_tail]`` on per-point inputs
    ``H: [T, N, *F]``: an ordinary population pass (per-member data) of the resolved backend."""
    return backends.get(backend).logits(tail, theta_tail, H)


# ------------------------------------------------------------------------------- evaluator
class Evaluator:
    """Mean loss and accuracy of tiles of a family's points on fixed data.

    Args:
        net: a :class:`pyquirk.nn.Net`; family: :class:`PlaneFamily` or :class:`SegmentFamily`.
        X, y: the evaluated examples (all of them: the mean is over every row given).
        shortcut: use the first-layer shortcut (needs :func:`shortcut_supported`).
        chunk: data rows per pass (default :data:`CHUNK_ROWS`); exact (a size-weighted mean),
            not a mini-batch.
        tile: points per pass (default: from :data:`TILE_BYTES`).
    """

    def __init__(self, net, family, X, y, *, shortcut: bool = True, chunk: int | None = None,
                 tile: int | None = None, backend: str | None = None, names=("X", "y")):
        self.net, self.family, self.backend = net, family, backend
        self.dtype = family.dtype
        self.X, self.target, self.labels = check_data(net, X, y, self.dtype, names)
        self.N = len(self.X)
        if shortcut and not shortcut_supported(net):
            raise ValueError(f"shortcut=True needs a Dense or Conv first parameter layer followed by "
                             f"more parameter layers; {net.layers[first_param_layer(net)]!r} is not "
                             "one (use shortcut=False)")
        self.shortcut = bool(shortcut)
        per_row = _widest(net, first_param_layer(net) + 1 if shortcut else 0) * self.dtype.itemsize
        self.chunk = (min(self.N, CHUNK_ROWS) if chunk is None
                      else min(check_positive_int(chunk, "chunk"), self.N))
        self.tile = (min(MAX_TILE, max(1, TILE_BYTES // (per_row * self.chunk))) if tile is None
                     else check_positive_int(tile, "tile"))
        self.spans = [(s, min(s + self.chunk, self.N)) for s in range(0, self.N, self.chunk)]
        self.points_evaluated = 0
        self._buffers = [np.empty(0, self.dtype), np.empty(0, self.dtype)]   # see _buffer
        self.H, self.tail_offset = [None] * len(self.spans), 0                 # shortcut: set below
        if self.shortcut:
            self._prepare_shortcut()

    def _prepare_shortcut(self):
        net = self.net
        k = first_param_layer(net)
        self.start, self.tail_offset = k + 1, _param_offset(net, k + 1)
        self.tail = tail_net(net, k + 1)
        layer = net.layers[k]
        specs = [s for s in net.layout if s.layer == k]
        params = tuple(np.stack([v[s.slice].reshape(s.shape) for v in self.family.basis]) for s in specs)
        self.H = []
        for s0, s1 in self.spans:
            x = self.X[None, s0:s1]
            for pre in net.layers[:k]:                       # parameter-free: shared by all points
                x, _ = pre.forward((), x)
            H, _ = layer.forward(params, x)                # [K, n, *F]: K products, once
            self.H.append(np.ascontiguousarray(H.reshape(H.shape[0], -1)))
        self.F = H.shape[2:]

    def __call__(self, a, b=None) -> tuple[np.ndarray, np.ndarray]:
        """Mean loss and accuracy ``[T]`` (float64) at coordinates ``a`` (and ``b``), in tiles."""
        a = np.asarray(a, dtype=np.float64)
        b = np.zeros_like(a) if b is None else np.asarray(b, dtype=np.float64)
        loss, acc = np.empty(len(a)), np.empty(len(a))
        for s in range(0, len(a), self.tile):
            sl = slice(s, s + self.tile)
            loss[sl], acc[sl] = self._tile(a[sl], b[sl])
        self.points_evaluated += len(a)
        return loss, acc

    def _buffer(self, which: int, shape) -> np.ndarray:
        """A reused C-contiguous scratch array (no allocation or page faults per tile): 0 the tile's
        points, 1 its first-layer pre-activations; sized for the largest tile and chunk."""
        size = math.prod(shape)
        if self._buffers[which].size < size:
            self._buffers[which] = np.empty(size, self.dtype)
        return self._buffers[which][:size].reshape(shape)

    def _tile(self, a, b):
        T = len(a)
        loss_sum, correct = np.zeros(T), np.zeros(T)
        lo = self.tail_offset if self.shortcut else 0
        with _serial_numba():
            pts = self.family.points(a, b, lo, out=self._buffer(0, (T, self.net.n_params - lo)))
        C = self.family.coeffs(a, b) if self.shortcut else None                    # [T, K]
        combine = _twins(self.backend).combine
        for (s0, s1), H in zip(self.spans, self.H):
            if self.shortcut:       # [T, K] @ [K, n·F] on one thread, never a BLAS pool
                H0 = combine(C, H, self._buffer(1, (T, H.shape[1])))
                z = tail_logits(self.tail, pts, H0.reshape((T, s1 - s0) + self.F), self.backend)
            else:
                z = backends.get(self.backend).logits(self.net, pts, self.X[None, s0:s1])
            ls, hits = self._sums(z, s0, s1)
            loss_sum += ls
            correct += hits
        return loss_sum / self.N, correct / self.N

    def _sums(self, z, s0: int, s1: int):
        """Per point: the chunk's loss sum (float64) and number of arg-max hits."""
        if self.net.loss_fn.name == "ce":
            fast = ce_sums(z, self.labels[s0:s1])
            if fast is not None:
                return fast
        per_sample = self.net.loss_fn.per_sample(z, self.target[None, s0:s1])
        hits = (z.argmax(-1) == self.labels[None, s0:s1]).sum(axis=-1)
        return per_sample.sum(axis=-1, dtype=np.float64), hits


@contextlib.contextmanager
def _serial_numba():
    """Numba's parallel launches off for the calling thread (``set_num_threads`` is thread-local).

    The native pass owns the parallelism of a tile; the per-tile NumPy/Numba work around it runs on
    one thread. Another thread pool spinning between tiles (Numba's, or a multi-threaded BLAS for
    the ``[T, K] @ [K, n·F]`` product) competes with the native team for the same cores: with the
    default pools on the 2-core machine, the two together halved the 784-512-512-10 grid's points
    per second (40 vs 85 measured in one process).
    """
    try:
        import numba
        n = numba.get_num_threads()
    except Exception:                      # no numba: the kernels use their NumPy twins
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)


def ce_sums(z, labels):
    """Cross-entropy sums (float64) and arg-max hits per point from logits ``z: [T, n, C]`` and
    class labels ``[n]``; ``None`` if a logit is not finite (the caller then takes the generic path).

    Same quantities as ``CrossEntropy.per_sample(z, y).sum(-1)`` and ``(z.argmax(-1) == y).sum(-1)``
    (the arg-max's first-index rule on ties included), computed class-major (``[C, T, n]``) so that
    every reduction runs over whole rows instead of the short class axis: 2.5× faster than the
    generic pair on 10-class logits (1.7 vs 4.2 ms for 20 points × 1000 examples, float32), which
    matters once the tail pass is native (about 0.1 ms per point saved on the 40-100-100-10 MLP).
    """
    T, n, C = z.shape
    zc = np.ascontiguousarray(np.moveaxis(z, -1, 0))                      # [C, T, n]
    if not np.isfinite(zc).all():
        return None
    m = zc.max(axis=0)                                                    # [T, n]
    zy = zc[labels[None], np.arange(T)[:, None], np.arange(n)[None]]      # label logit [T, n]
    hits = zy == m
    tied = np.flatnonzero(hits & (np.count_nonzero(zc == m, axis=0) > 1))  # exact ties: rare
    if tied.size:                                                         # arg-max's first index
        t, i = np.divmod(tied, n)
        hits[t, i] = z[t, i].argmax(-1) == labels[i]
    np.subtract(zc, m, out=zc)
    np.exp(zc, out=zc)
    loss = (m + np.log(zc.sum(axis=0))) - zy                              # log-sum-exp − z_y
    return loss.sum(axis=-1, dtype=np.float64), hits.sum(axis=-1)


def evaluate_thetas(net, thetas, X, y, *, tile: int | None = None, chunk: int | None = None,
                    backend: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and accuracy ``[T]`` (float64) of given parameter vectors ``thetas: [T, P]``,
    on the population axis in tiles (no shortcut: the points are not a family)."""
    thetas = as_float_array(thetas, "thetas", ndim=2)
    net._check_p(thetas.shape, "thetas")
    fam = _Given(thetas)
    ev = Evaluator(net, fam, X, y, shortcut=False, chunk=chunk, tile=tile, backend=backend)
    return ev(np.arange(len(thetas), dtype=np.float64))


class _Given:
    """Stored points, addressed by index (passed as the α coordinate)."""

    def __init__(self, thetas):
        self.thetas, self.dtype = thetas, thetas.dtype

    def points(self, a, b=None, lo: int = 0, out=None):
        return np.take(self.thetas[:, lo:], a.astype(np.int64), axis=0, out=out)


__all__ = ["Evaluator", "PlaneFamily", "SegmentFamily", "evaluate_thetas", "shortcut_supported", "ce_sums",
           "tail_logits", "tail_net", "layer_views", "check_data", "TILE_BYTES", "MAX_TILE", "CHUNK_ROWS"]
