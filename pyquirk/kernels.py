"""The data-parallel kernels outside the network passes (DESIGN §3): public, validated entry points.

Each function validates its inputs (errors name the argument), normalises shapes, and dispatches to
one of two twins with the same name: the NumPy reference (:mod:`pyquirk.backends.reference_kernels`,
the specification) or the Numba kernel (:mod:`pyquirk.backends.numba_kernels`). Which one:

- the resolved backend is ``"reference"`` (``backend=``, :func:`pyquirk.use_backend`, or
  ``PYQUIRK_BACKEND``): the NumPy twin;
- ``"cpu"`` requested explicitly: the Numba twin, or ``RuntimeError`` with the remembered
  ImportError when numba is missing;
- ``"cuda"`` requested (no device kernels yet), or nothing requested: the Numba twin when numba
  imports, else the NumPy twin.

Formulas (exact definitions; docs/kernels.md has the same list):

- selection: prune the k entries of the scope with the smallest ``(|θ_i|, i)``; ties in magnitude
  fall by flat index, the lower index pruned first; ``+0`` and ``−0`` tie.
- ``apply_mask``: ``θ_i`` where kept, ``+0`` where pruned.
- ``project_linf``: ``clip(x0 + clip(x − x0, −ε, ε), lo, hi)``.
- ``project_l2``: ``clip(x0 + δ·s, lo, hi)``, ``δ = x − x0``, ``s = 1`` if ``‖δ‖₂ ≤ ε`` else ``ε/‖δ‖₂``.
- ``steepest_step``: L∞ ``x + α·sign(g)``; L2 ``x + g·α/max(‖g‖₂, 1e-12)``.
- ``random_start``: L∞ ``x0 + ε·u``, ``u ~ U[−1, 1)^D``; L2 ``x0 + z/‖z‖₂ · ε·U^(1/D)``,
  ``z ~ N(0, I_D)``, ``U ~ U[0, 1)``; then ``clip(·, lo, hi)``.
- ``grid_points``: ``(θ + α_t·d₁) + β_t·d₂`` for each t, fresh, in θ's dtype.
- ``filter_normalize``: per filter f, ``d_f · (‖θ_f‖ / (‖d_f‖ + 1e-10))`` (Li et al.'s code).

Element-wise arithmetic runs in the data's dtype (ε, α, lo, hi rounded to it); norms accumulate in
float64 and scale factors are computed in float64, then rounded to the dtype.
"""
from __future__ import annotations

import importlib
from typing import Sequence

import numpy as np

from . import backends
from ._validate import as_float_array, check_choice
from .backends import reference_kernels
from .seeds import Seeds, stream

__all__ = ["magnitude_select", "per_segment_select", "apply_mask", "project_linf", "project_l2",
           "steepest_step", "random_start", "grid_points", "filter_normalize"]

NORMS = ("linf", "l2")
L2_STEP_FLOOR = reference_kernels.L2_STEP_FLOOR
FILTER_NORM_EPS = reference_kernels.FILTER_NORM_EPS


class TwinDispatch:
    """Which twin module a kernel call runs, by the rule in this module's docstring.

    Args:
        reference: the NumPy twin module.
        numba_module: the dotted name of the Numba twin module, imported on first use; its
            ImportError is remembered (STYLE 4) and shown when ``"cpu"`` is asked for.
        what: the kernels' name in that error ("kernels", "the compression kernels").

    Calling it with ``backend`` gives the module whose functions the call should use.
    """

    def __init__(self, reference, numba_module: str, what: str):
        self.reference, self.numba_module, self.what = reference, numba_module, what
        self.numba = {"module": None, "error": None}

    def load_numba(self):
        """The Numba twin module, or None when numba does not import."""
        if self.numba["module"] is None and self.numba["error"] is None:
            try:
                self.numba["module"] = importlib.import_module(self.numba_module)
            except ImportError as e:  # STYLE 4: remembered, shown when asked for
                self.numba["error"] = e
        return self.numba["module"]

    def __call__(self, backend: str | None):
        name = backends.requested(backend)
        if name == "reference":
            return self.reference
        mod = self.load_numba()
        if mod is not None:
            return mod
        if name == "cpu":
            e = self.numba["error"]
            raise RuntimeError(f"backend 'cpu' is not available for {self.what}: numba failed to import "
                               f"({type(e).__name__}: {e})") from e
        return self.reference


#: The twin module a kernel call dispatches to (see the module docstring).
_twins = TwinDispatch(reference_kernels, f"{__package__}.backends.numba_kernels", "kernels")
_numba = _twins.numba


# ==================================================================================== validation
def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    return int(value)


def _count(k, n: int, name: str) -> int:
    k = _int(k, name)
    if not 0 <= k <= n:
        raise ValueError(f"{name} must lie in [0, {n}] (the scope size), got {k}")
    return k


def _segments(segments, P: int, name: str = "segments") -> list[tuple[int, int]]:
    """Normalise to a list of ``(offset, size)`` in [0, P], size ≥ 1, non-overlapping.

    Items may be ``(offset, size)`` pairs or objects with ``.offset`` and ``.size`` (``ParamSpec``).
    The result keeps the caller's order; :func:`_sorted` sorts by offset.
    """
    if segments is None:
        return [(0, P)]
    if isinstance(segments, (str, bytes)) or not hasattr(segments, "__iter__"):
        raise TypeError(f"{name} must be a list of (offset, size) pairs, got {type(segments).__name__}")
    out = []
    for j, seg in enumerate(segments):
        if hasattr(seg, "offset") and hasattr(seg, "size"):
            off, size = seg.offset, seg.size
        else:
            try:
                off, size = seg
            except (TypeError, ValueError):
                raise TypeError(f"{name}[{j}] must be an (offset, size) pair, got {seg!r}") from None
        off, size = _int(off, f"{name}[{j}] offset"), _int(size, f"{name}[{j}] size")
        if off < 0 or size < 1 or off + size > P:
            raise ValueError(f"{name}[{j}] = ({off}, {size}) must have offset >= 0, size >= 1 and lie "
                             f"within theta of length {P}")
        out.append((off, size))
    if not out:
        raise ValueError(f"{name} is empty")
    order = sorted(range(len(out)), key=lambda j: out[j][0])
    for a, b in zip(order, order[1:]):
        if out[a][0] + out[a][1] > out[b][0]:
            raise ValueError(f"{name}[{a}] = {out[a]} and {name}[{b}] = {out[b]} overlap")
    return out


def _c(a) -> np.ndarray:
    """C-contiguous, native byte order (the kernels read raw bits); no copy when already so."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def _theta_1d(theta, name="theta"):
    return _c(as_float_array(theta, name, ndim=1, finite=False))


def _per_row(value, M: int, name: str) -> np.ndarray:
    """A scalar or ``[M]`` array of non-negative finite numbers -> float64 ``[M]``."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 0:
        arr = np.full(M, float(arr))
    elif arr.shape != (M,):
        raise ValueError(f"{name} must be a scalar or have shape [{M}] (one value per sample row), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got min {arr.min()}")
    return arr


def _bounds(lo, hi) -> tuple[float, float]:
    vals = []
    for v, name in ((lo, "lo"), (hi, "hi")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
        if np.isnan(v):
            raise ValueError(f"{name} is NaN")
        vals.append(float(v))
    if vals[0] > vals[1]:
        raise ValueError(f"lo must be <= hi, got lo={vals[0]} > hi={vals[1]}")
    return vals[0], vals[1]


def _batch(x, name: str, dtype=None) -> np.ndarray:
    x = as_float_array(x, name, dtype=dtype)
    if x.ndim < 2 or x[0].size == 0:
        raise ValueError(f"{name} must have shape [M, *features] with at least one feature, got {x.shape}")
    return x


def _anchor(x0, x_shape, dtype) -> np.ndarray:
    """``x0: [N, *features]`` with N dividing M -> contiguous ``[N, D]``."""
    x0 = _batch(x0, "x0", dtype)
    if x0.shape[1:] != tuple(x_shape[1:]) or x_shape[0] % x0.shape[0]:
        raise ValueError(f"x0 must have shape [N, {', '.join(map(str, x_shape[1:]))}] with N dividing "
                         f"M={x_shape[0]} (row m of x belongs to x0[m % N]), got {x0.shape}")
    return _c(x0.reshape(x0.shape[0], -1))


def _out(out, shape, dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
                         f"got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")
    return out


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Seeds):
        return rng.rng("attack")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return stream("attack", int(rng))
    raise TypeError(f"rng must be a numpy Generator, a Seeds or an int seed, got {type(rng).__name__}")


# ==================================================================================== pruning
def magnitude_select(theta, k: int, segments: Sequence | None = None, *,
                     backend: str | None = None) -> np.ndarray:
    """Global magnitude selection: the keep mask that prunes exactly k entries of a scope.

    The scope is the union of ``segments`` (default: all of θ). Its k entries with the smallest
    ``(|θ_i|, i)`` are pruned: equal magnitudes fall by flat index, lower index first, and ``+0``
    ties ``−0``. Entries outside the scope are kept. The Numba twin is an O(n) parallel radix
    select on the IEEE bits of |θ| (no sort, no concatenation); the reference twin argsorts.

    Args:
        theta: ``[P]`` float32/float64, the flat parameter vector (not a copy of the scope).
        k: number of entries to prune, in ``[0, n]`` with n the scope size.
        segments: ``(offset, size)`` pairs (or ``ParamSpec``s) of θ forming the scope, disjoint.
        backend: see the module docstring.

    Returns:
        mask: ``[P]`` bool, True = kept.

    Raises:
        ValueError: k outside ``[0, n]``, bad or overlapping segments, empty θ, or NaN/±inf in
            the scope (checked before any mask is written).
    """
    theta = _theta_1d(theta)
    segs = sorted(_segments(segments, theta.shape[0]))
    k = _count(k, sum(s for _, s in segs), "k")
    return _twins(backend).magnitude_select(theta, k, segs)


def per_segment_select(theta, ks: Sequence[int], segments: Sequence, *,
                       backend: str | None = None) -> np.ndarray:
    """Layer-wise magnitude selection: segment j loses its own ``ks[j]`` smallest ``(|θ_i|, i)``.

    Args:
        theta: ``[P]`` float32/float64.
        ks: ``[S]`` counts, ``0 <= ks[j] <= size of segment j``.
        segments: ``[S]`` ``(offset, size)`` pairs (or ``ParamSpec``s), disjoint.

    Returns:
        mask: ``[P]`` bool, True = kept (entries outside every segment are kept).
    """
    theta = _theta_1d(theta)
    segs = _segments(segments, theta.shape[0])
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__len__") or len(ks) != len(segs):
        raise ValueError(f"ks must hold one count per segment ({len(segs)}), got {ks!r}")
    ks = [_count(k, s, f"ks[{j}]") for j, (k, (_, s)) in enumerate(zip(ks, segs))]
    pairs = sorted(zip(segs, ks))
    return _twins(backend).per_segment_select(theta, [k for _, k in pairs], [s for s, _ in pairs])


def apply_mask(theta, mask, out: np.ndarray | None = None, *, backend: str | None = None) -> np.ndarray:
    """θ with the pruned entries set to ``+0`` (kept entries unchanged), in θ's dtype.

    Args:
        theta: ``[P]`` or ``[E, P]``.
        mask: ``[P]`` bool (shared by every row) or ``[E, P]``; True = kept.
        out: optional ``[P]``/``[E, P]`` C-contiguous array of θ's dtype; ``out=theta`` works in place.

    Returns:
        out: same shape and dtype as θ.
    """
    theta = as_float_array(theta, "theta", ndim=(1, 2), finite=False)
    P = theta.shape[-1]
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool, got {mask.dtype}")
    if mask.shape not in ((P,), theta.shape):
        raise ValueError(f"mask must have shape [{P}] or {list(theta.shape)}, got {list(mask.shape)}")
    out = _out(out, theta.shape, theta.dtype.newbyteorder("="))
    t2 = _c(theta).reshape(-1, P)
    m2 = _c(mask).reshape(-1, P)
    _twins(backend).apply_mask(t2, m2, out.reshape(-1, P))
    return out


# ==================================================================================== attacks
def _project(kind, x, x0, eps, lo, hi, backend):
    x = _batch(x, "x")
    x0 = _anchor(x0, x.shape, x.dtype)
    eps = _per_row(eps, x.shape[0], "eps")
    lo, hi = _bounds(lo, hi)
    x2 = _c(x.reshape(x.shape[0], -1))
    return getattr(_twins(backend), kind)(x2, x0, eps, lo, hi).reshape(x.shape)


def project_linf(x, x0, eps, lo: float = 0.0, hi: float = 1.0, *, backend: str | None = None) -> np.ndarray:
    """Projection onto the L∞ ε-ball around x0, then clipping: ``clip(x0 + clip(x − x0, −ε, ε), lo, hi)``.

    Args:
        x: ``[M, *features]`` float32/float64; rows are (ε value, restart, example) stacked.
        x0: ``[N, *features]`` with N dividing M: row m of x belongs to ``x0[m % N]``.
        eps: scalar or ``[M]`` (one radius per row), ``>= 0``; rounded to x's dtype.
        lo, hi: input bounds, ``lo <= hi`` (±inf allowed).

    Returns:
        ``[M, *features]`` in x's dtype.
    """
    return _project("project_linf", x, x0, eps, lo, hi, backend)


def project_l2(x, x0, eps, lo: float = 0.0, hi: float = 1.0, *, backend: str | None = None) -> np.ndarray:
    """Projection onto the L2 ε-ball around x0, then clipping.

    ``δ = x − x0``; ``s = 1`` if ``‖δ‖₂ ≤ ε`` else ``ε / ‖δ‖₂`` (float64, then rounded; ``‖δ‖ = 0``
    gives ``s = 1``); result ``clip(x0 + δ·s, lo, hi)``. The norm runs over all feature dims of a row.
    Shapes as in :func:`project_linf`.
    """
    return _project("project_l2", x, x0, eps, lo, hi, backend)


def steepest_step(x, g, alpha, norm: str = "linf", *, backend: str | None = None) -> np.ndarray:
    """One steepest-ascent step for the norm: L∞ ``x + α·sign(g)``; L2 ``x + g·α/max(‖g‖₂, 1e-12)``.

    Args:
        x: ``[M, *features]``; g: its gradient, same shape; alpha: scalar or ``[M]``, ``>= 0``.
        norm: ``"linf"`` or ``"l2"`` (the L2 norm runs over all feature dims of a row).

    Returns:
        ``[M, *features]`` in x's dtype (not projected: follow with a projection).
    """
    norm = check_choice(norm, NORMS, "norm")
    x = _batch(x, "x")
    g = as_float_array(g, "g", dtype=x.dtype)
    if g.shape != x.shape:
        raise ValueError(f"g must have the shape of x {x.shape}, got {g.shape}")
    alpha = _per_row(alpha, x.shape[0], "alpha")
    M = x.shape[0]
    x2, g2 = (_c(a.reshape(M, -1)) for a in (x, g))
    return _twins(backend).steepest_step(x2, g2, alpha, norm).reshape(x.shape)


def random_start(x0, eps, norm: str = "linf", rng=0, lo: float = 0.0, hi: float = 1.0, *,
                 backend: str | None = None) -> np.ndarray:
    """A random start uniform in the ε-ball around x0 (DESIGN §4), clipped to ``[lo, hi]``.

    L∞: uniform in the cube, ``x0 + ε·u`` with ``u ~ U[−1, 1)^D``. L2: uniform in the ball (not on
    the sphere), ``x0 + z/‖z‖ · ε·U^(1/D)`` with ``z ~ N(0, I_D)``, ``U ~ U[0, 1)``, D the number of
    features. The draws are made here, in float64, from ``rng`` in this order: L∞
    ``rng.uniform(-1, 1, (M, D))``; L2 ``rng.standard_normal((M, D))`` then ``rng.random(M)``; so
    both twins see the same numbers.

    Args:
        x0: ``[N, *features]`` float32/float64.
        eps: scalar (M = N rows) or ``[M]`` with N dividing M: row m starts around ``x0[m % N]``.
        norm: ``"linf"`` or ``"l2"``.
        rng: a numpy Generator, a :class:`~pyquirk.seeds.Seeds` (its ``attack`` stream) or an int
            seed of the ``attack`` stream.
        lo, hi: input bounds.

    Returns:
        ``[M, *features]`` in x0's dtype.
    """
    norm = check_choice(norm, NORMS, "norm")
    x0 = _batch(x0, "x0")
    N, feat = x0.shape[0], x0.shape[1:]
    M = N if np.ndim(eps) == 0 else int(np.shape(eps)[0])
    eps = _per_row(eps, M, "eps")
    if M % N:
        raise ValueError(f"eps has {M} rows, which N={N} (rows of x0) does not divide")
    lo, hi = _bounds(lo, hi)
    gen = _rng(rng)
    D = int(np.prod(feat))
    if norm == "linf":
        noise, radial = gen.uniform(-1.0, 1.0, (M, D)), np.empty(0)
    else:
        noise = gen.standard_normal((M, D))
        radial = gen.random(M)
    x02 = _c(x0.reshape(N, D))
    return _twins(backend).random_start(x02, eps, norm, noise, radial, lo, hi).reshape((M,) + feat)


# ==================================================================================== landscape
def grid_points(theta, d1, d2, alphas, betas, out: np.ndarray | None = None, *,
                backend: str | None = None) -> np.ndarray:
    """A tile of landscape points ``out[t] = (θ + α_t·d₁) + β_t·d₂``, each computed fresh.

    Every point is assembled from θ, never accumulated from a neighbour, in θ's dtype (α, β rounded
    to it first, this operation order), so both twins give bitwise-equal points.

    Args:
        theta, d1, d2: ``[P]`` (the directions are cast to θ's dtype).
        alphas, betas: ``[T]`` coordinates (scalars count as T = 1).
        out: optional ``[T, P]`` C-contiguous array of θ's dtype.

    Returns:
        out: ``[T, P]``.
    """
    theta = _c(as_float_array(theta, "theta", ndim=1))
    P = theta.shape[0]
    dirs = []
    for d, name in ((d1, "d1"), (d2, "d2")):
        d = _c(as_float_array(d, name, dtype=theta.dtype))
        if d.shape != (P,):
            raise ValueError(f"{name} must have shape [{P}] like theta, got {d.shape}")
        dirs.append(d)
    coords = []
    for c, name in ((alphas, "alphas"), (betas, "betas")):
        c = as_float_array(np.atleast_1d(np.asarray(c)), name, dtype=np.float64, ndim=1)
        coords.append(_c(c))
    if coords[0].shape != coords[1].shape:
        raise ValueError(f"alphas and betas must have the same length, got {coords[0].shape[0]} "
                         f"and {coords[1].shape[0]}")
    out = _out(out, (coords[0].shape[0], P), theta.dtype)
    return _twins(backend).grid_points(theta, dirs[0], dirs[1], coords[0], coords[1], out)


def filter_normalize(direction, theta, net, keep_biases: bool = False, *,
                     backend: str | None = None) -> np.ndarray:
    """Filter-normalise a direction (Li et al. 2018), per output unit/channel of each weight.

    For each parameter of ``net.layout`` with at least two dims, each filter f (a slice along dim 0,
    i.e. one output unit of a Dense or one output channel of a Conv) becomes
    ``d_f · (‖θ_f‖ / (‖d_f‖ + 1e-10))``, the form of Li et al.'s code (``d.mul_(w.norm() /
    (d.norm() + 1e-10))``); norms in float64, the factor rounded to the dtype. 1-D parameters
    (biases) get a zero direction (loss-landscape's default ``ignore='biasbn'``), or with
    ``keep_biases=True`` each bias vector is normalised as a whole: ``d_b · (‖θ_b‖ / (‖d_b‖ + 1e-10))``.
    (loss-landscape's non-default mode instead copies θ_b into d_b; we do not reproduce that.)

    Args:
        direction: ``[P]`` or ``[E, P]``.
        theta: ``[P]`` (shared) or ``[E, P]``; cast to the direction's dtype.
        net: a :class:`pyquirk.nn.Net` (anything with ``layout`` and ``n_params``).
        keep_biases: see above.

    Returns:
        a new array, shape and dtype of ``direction``.
    """
    if not hasattr(net, "layout") or not hasattr(net, "n_params"):
        raise TypeError(f"net must be a pyquirk.nn.Net (with .layout and .n_params), got {type(net).__name__}")
    if not isinstance(keep_biases, (bool, np.bool_)):
        raise TypeError(f"keep_biases must be a bool, got {type(keep_biases).__name__}")
    d = as_float_array(direction, "direction", ndim=(1, 2))
    t = as_float_array(theta, "theta", dtype=d.dtype, ndim=(1, 2))
    P = net.n_params
    for a, name in ((d, "direction"), (t, "theta")):
        if a.shape[-1] != P:
            raise ValueError(f"{name} must have last dimension P={P}, got shape {a.shape}")
    d2, t2 = _c(d.reshape(-1, P)), _c(t.reshape(-1, P))
    if t2.shape[0] not in (1, d2.shape[0]):
        raise ValueError(f"theta must have shape [{P}] or [{d2.shape[0]}, {P}] to match direction, "
                         f"got {t.shape}")
    return _twins(backend).filter_normalize(d2, t2, net, bool(keep_biases)).reshape(d.shape)
