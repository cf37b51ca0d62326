"""2-D (and 1-D) loss surfaces on a plane, evaluated tile by tile and resumable (DESIGN §4, §5).

Grid: ``loss[i, j] = L(θ + alphas[i]·d₁ + betas[j]·d₂)``, the mean loss over the evaluated
examples, each point computed fresh by :func:`pyquirk.kernels.grid_points` (never by accumulating
steps). The default axes are 51 points over [−1, 1] each, holding 0 exactly. Points run in tiles
of the row-major flattened grid on the population axis, with the first-layer shortcut
(:mod:`.evaluate`) unless ``shortcut=False``.

Data: every example given (``subset=None``), or a stated mini-batch: ``subset=m`` evaluates the
same m examples at every point, drawn without replacement from ``stream("probes", seed, 2)`` and
sorted; their indices are kept in the result.

Resuming: with ``out_dir``, ``grid_checkpoint.npz`` is rewritten (atomically) after every tile
with the values so far and a per-point ``done`` mask, under a fingerprint of everything that
defines the grid (net, θ, d₁, d₂, axes, data, shortcut). A later call with the same arguments
evaluates only the missing points; a different grid in the same folder is refused. The finished
:class:`Surface` is saved in ``out_dir`` too.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from .. import backends
from .._validate import as_float_array, check_positive_int
from .directions import SUBSET_KEY, STREAM, probes_rng, seed_value
from .evaluate import Evaluator, PlaneFamily, check_data, shortcut_supported
from .results import Plane, Surface

CHECKPOINT = "grid_checkpoint.npz"


def grid_axis(lo: float = -1.0, hi: float = 1.0, n: int = 51, *, name: str = "range") -> np.ndarray:
    """``n`` evenly spaced coordinates from ``lo`` to ``hi`` (both included), float64.

    ``lo + (hi − lo)·i/(n − 1)``; a value within 1e-12·(hi − lo) of 0 is set to exactly 0, so the
    origin is on the grid whenever the lattice passes through it (e.g. the default 51 over [−1, 1]).

    Raises:
        ValueError: non-finite or empty range, or n < 2, naming ``name``.
    """
    for v, which in ((lo, "lo"), (hi, "hi")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} {which} must be a number, got {type(v).__name__}")
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {which}={v}")
    if not lo < hi:
        raise ValueError(f"{name} must have lo < hi, got ({lo}, {hi})")
    n = check_positive_int(n, f"{name} points", minimum=2)
    axis = lo + (hi - lo) * (np.arange(n, dtype=np.float64) / (n - 1))
    axis[np.abs(axis) <= 1e-12 * (hi - lo)] = 0.0
    axis[-1] = hi
    return axis


def check_axis(values, name: str) -> np.ndarray:
    """A strictly increasing, finite 1-D float64 axis; errors name ``name``."""
    v = as_float_array(np.atleast_1d(np.asarray(values, dtype=np.float64)), name, ndim=1)
    if np.any(np.diff(v) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return v


def _axes(plane, alphas, betas):
    if alphas is None:
        alphas = grid_axis(name="alphas")
    elif isinstance(alphas, tuple) and len(alphas) in (2, 3):
        alphas = grid_axis(*alphas, name="alphas")
    if betas is None:
        betas = grid_axis(name="betas") if plane.d2 is not None else np.zeros(1)
    elif isinstance(betas, tuple) and len(betas) in (2, 3):
        betas = grid_axis(*betas, name="betas")
    a, b = check_axis(alphas, "alphas"), check_axis(betas, "betas")
    if plane.d2 is None and not np.array_equal(b, [0.0]):
        raise ValueError("plane is a line (d2 is None): betas must be [0.0]")
    return a, b


def select_subset(N: int, subset, seed):
    """Indices (sorted int64) of a stated evaluation subset, or None for all N examples."""
    if subset is None:
        return None
    m = check_positive_int(subset, "subset")
    if m > N:
        raise ValueError(f"subset={m} exceeds the {N} examples given")
    return np.sort(probes_rng(seed, SUBSET_KEY).choice(N, m, replace=False)).astype(np.int64)


def _fingerprint(net, plane, alphas, betas, X, y, shortcut) -> str:
    h = hashlib.sha256(b"pyquirk.landscape.grid/1")
    h.update(repr(net).encode())
    for arr in (plane.origin, plane.d1, plane.d2_or_zero(), alphas, betas, X, np.asarray(y)):
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(b"shortcut" if shortcut else b"full")
    return h.hexdigest()


def _load_checkpoint(path: Path, fp: str, shape):
    if not path.exists():
        return np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool)
    with np.load(path, allow_pickle=False) as z:
        if str(z["fingerprint"]) != fp:
            raise ValueError(f"{path} belongs to a different grid (net, plane, axes, data or shortcut "
                             "differ); use another out_dir or delete the checkpoint")
        return z["loss"].copy(), z["acc"].copy(), z["done"].copy()


def _save_checkpoint(path: Path, fp: str, loss, acc, done):
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, loss=loss, acc=acc, done=done, fingerprint=np.array(fp))
    os.replace(tmp, path)


def evaluate_grid(net, plane: Plane, X, y, *, alphas=None, betas=None, shortcut: bool | None = None,
                  subset: int | None = None, seed=0, tile: int | None = None, chunk: int | None = None,
                  out_dir=None, max_tiles: int | None = None, trajectory=None, trajectory_steps=None,
                  progress: bool = False, backend: str | None = None) -> Surface:
    """The loss surface of ``net`` on ``plane`` over the examples ``(X, y)``.

    Args:
        net: a :class:`pyquirk.nn.Net`; plane: a :class:`Plane` (a line gives a 1-D slice).
        X, y: ``[N, *in]`` and labels ``[N]`` (or ``[N, C]`` targets).
        alphas, betas: coordinates ``[A]``, ``[B]`` (strictly increasing), or ``(lo, hi[, n])``
            for :func:`grid_axis`; default 51 over [−1, 1] (betas ``[0.]`` for a line).
        shortcut: first-layer shortcut (default: on where supported).
        subset: evaluate a stated mini-batch of this many examples (see module doc).
        seed: ``probes`` seed of the subset draw.
        tile, chunk: points and data rows per pass (speed only; defaults from memory).
        out_dir: folder for the resumable checkpoint and the finished result.
        max_tiles: evaluate at most this many tiles in this call (the result is then partial:
            NaN where not done, ``complete=False``); call again with ``out_dir`` to continue.
        trajectory: optional ``[T, P]`` snapshots to overlay (see
            :func:`~pyquirk.landscape.overlay_trajectory`), evaluated on the same examples.
        trajectory_steps: ``[T]`` their training steps.
        progress: tqdm bar over tiles.

    Returns:
        :class:`Surface` with ``loss``/``acc`` ``[A, B]``.
    """
    t0 = time.perf_counter()
    if not isinstance(plane, Plane):
        raise TypeError(f"plane must be a pyquirk.landscape.Plane, got {type(plane).__name__}")
    if plane.n_params != net.n_params:
        raise ValueError(f"plane has P={plane.n_params} parameters but net has {net.n_params}")
    alphas, betas = _axes(plane, alphas, betas)
    shortcut = shortcut_supported(net) if shortcut is None else bool(shortcut)
    X = as_float_array(X, "X", dtype=plane.origin.dtype)
    check_data(net, X[:1], np.asarray(y)[:1], plane.origin.dtype)
    if len(np.asarray(y)) != len(X):
        raise ValueError(f"y has {len(np.asarray(y))} examples but X has {len(X)}")
    idx = select_subset(len(X), subset, seed)
    Xe, ye = (X, np.asarray(y)) if idx is None else (X[idx], np.asarray(y)[idx])
    ev = Evaluator(net, PlaneFamily(plane), Xe, ye, shortcut=shortcut, chunk=chunk, tile=tile,
                   backend=backend)

    shape = (len(alphas), len(betas))
    fp = _fingerprint(net, plane, alphas, betas, Xe, ye, shortcut)
    ckpt = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        ckpt = Path(out_dir) / CHECKPOINT
    loss, acc, done = (_load_checkpoint(ckpt, fp, shape) if ckpt is not None else
                       (np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool)))
    resumed = int(done.sum())
    todo = np.flatnonzero(~done.reshape(-1))
    tiles = [todo[s:s + ev.tile] for s in range(0, len(todo), ev.tile)]
    if max_tiles is not None:
        tiles = tiles[:check_positive_int(max_tiles, "max_tiles")]
    from tqdm.auto import tqdm
    for flat in tqdm(tiles, desc="landscape grid", disable=not progress, leave=False):
        i, j = np.unravel_index(flat, shape)
        loss[i, j], acc[i, j] = ev(alphas[i], betas[j])
        done[i, j] = True
        if ckpt is not None:
            _save_checkpoint(ckpt, fp, loss, acc, done)

    overlay = None
    if trajectory is not None:
        from .trajectory import overlay_with
        overlay = overlay_with(net, plane, trajectory, trajectory_steps, ev, backend=backend)
    wall = time.perf_counter() - t0
    n_new = int(sum(len(t) for t in tiles))
    semantics = {
        "points": "theta + alpha*d1 + beta*d2, each computed fresh in the origin's dtype "
                  "(pyquirk.kernels.grid_points), never accumulated",
        "indexing": "loss[i, j] at (alphas[i], betas[j])",
        "grid": list(shape), "alpha_range": [float(alphas[0]), float(alphas[-1])],
        "beta_range": [float(betas[0]), float(betas[-1])],
        "contains_origin": bool((alphas == 0).any() and (betas == 0).any()),
        "objective": f"mean {net.loss_name} over the {len(Xe)} evaluated examples",
        "accuracy": "fraction of arg-max predictions equal to the label",
        "data": "all examples given" if idx is None else
                f"stated subset: {len(idx)} of {len(X)} examples, drawn without replacement from "
                f"stream('{STREAM}', {seed_value(seed)}, {SUBSET_KEY}), sorted; indices in data_indices",
        "n_examples": int(len(Xe)), "n_given": int(len(X)),
        "shortcut": shortcut, "tile": ev.tile, "chunk": ev.chunk, "dtype": plane.origin.dtype.name,
        "backend": backends.resolve(backend), "net": repr(net),
        "plane_kind": plane.kind, "plane_norm": plane.info.get("norm"),
    }
    counts = {"points": int(done.sum()), "points_total": int(done.size), "points_this_call": n_new,
              "points_resumed": resumed, "tiles_this_call": len(tiles), "wall_time_s": wall,
              "points_per_s": n_new / wall if wall > 0 and n_new else None,
              "trajectory_points": 0 if overlay is None else 2 * len(overlay.steps)}
    if idx is not None:
        semantics["subset_seed"] = seed_value(seed)
    seeds = {STREAM: int(plane.info["seed"])} if "seed" in plane.info else {}
    result = Surface(alphas, betas, loss, acc, plane, data_indices=idx, trajectory=overlay,
                     complete=bool(done.all()), semantics=semantics, seeds=seeds, counts=counts)
    if out_dir is not None and result.complete:
        result.save(out_dir)
    return result


__all__ = ["evaluate_grid", "grid_axis", "check_axis", "select_subset", "CHECKPOINT"]
