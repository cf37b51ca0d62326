"""Pruning masks over the flat θ: magnitude (global / per layer), random, and structured.

The semantics are pinned by DESIGN §4 "Pruning" (docs/compression.md has the full statement):

- A mask is a boolean vector over θ, ``[P]`` (or ``[E, P]`` for a population); True = kept.
- A call prunes a fraction ``p ∈ [0, 1)`` of the entries of its **scope** that are still kept:
  ``k = round(p·n)`` entries exactly, with ``n`` the surviving entries of the scope (all of it on
  the first call). ``round`` is Python's (half to even), as in ``torch.nn.utils.prune``.
- Scope: ``"global"`` pools every tensor of the scope; ``"layer"`` prunes each parameter tensor
  by its own ``round(p·n_j)``.
- Magnitude order: the k entries with the smallest ``(|θ_i|, i)`` go; equal magnitudes fall by
  flat index, lower first (``pyquirk.kernels.magnitude_select``: an O(n) radix select, no sort).
- Defaults: weights only (biases kept; ``biases=True`` adds them), and the output layer is pruned
  unless ``keep_output=True`` (``output_p`` gives it its own fraction in layer scope).
- Masks only grow: an entry pruned by ``mask`` stays pruned. Training honours a mask through
  ``fit(..., mask=mask)``, which freezes pruned entries; start it from ``apply_mask(θ, mask)`` so
  they are frozen at exactly zero.
"""
from __future__ import annotations

import zlib
from typing import Iterable

import numpy as np

from .. import kernels
from .._validate import as_float_array, check_choice, check_fraction
from ..seeds import Seeds, stream

SCOPES = ("global", "layer")

#: sub-stream keys of the ``init`` stream used by the random controls (DESIGN §4 Seeds)
MASK_KEY = zlib.crc32(b"pyquirk.compression.random-mask")
REINIT_KEY = zlib.crc32(b"pyquirk.compression.reinit")


# ============================================================================================ scope
def output_layer(net) -> int:
    """Index (in ``net.layers``) of the output layer: the last layer that has a weight."""
    return max(s.layer for s in net.layout if s.kind == "weight")


def scope_specs(net, *, biases: bool = False, keep_output: bool = False,
                layers: Iterable | None = None) -> list:
    """The ``ParamSpec``s a pruning call may touch, in θ order.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        biases: include bias tensors (default: weights only).
        keep_output: exclude the output layer (weight and bias).
        layers: restrict to these parameter names (``"2.weight"``) or layer indices (``2`` or
            ``"2"``); None = every layer.

    Raises:
        ValueError: an unknown name in ``layers``, or an empty scope (both name the argument).
    """
    for flag, name in ((biases, "biases"), (keep_output, "keep_output")):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    kinds = ("weight", "bias") if biases else ("weight",)
    specs = [s for s in net.layout if s.kind in kinds]
    if keep_output:
        out = output_layer(net)
        specs = [s for s in specs if s.layer != out]
    if layers is not None:
        names = [layers] if isinstance(layers, (str, int, np.integer)) else list(layers)
        known = {s.name for s in net.layout} | {str(s.layer) for s in net.layout}
        bad = [n for n in names if str(n) not in known]
        if bad:
            raise ValueError(f"unknown layer or parameter name(s) {bad} in layers; expected parameter names "
                             f"{sorted(s.name for s in net.layout)} or layer indices "
                             f"{sorted({s.layer for s in net.layout})}")
        names = {str(n) for n in names}
        specs = [s for s in specs if s.name in names or str(s.layer) in names]
    if not specs:
        raise ValueError(f"the pruning scope is empty (biases={biases}, keep_output={keep_output}, "
                         f"layers={layers!r}): it selects no {' or '.join(kinds)} tensor of {net!r}")
    return specs


def _check_scope(scope) -> str:
    if not isinstance(scope, str):
        raise TypeError(f"scope must be a str, one of {SCOPES}, got {type(scope).__name__}")
    return check_choice(scope, SCOPES, "scope")


def _fractions(net, specs, p, output_p, scope) -> list[float]:
    """The fraction each spec loses (``output_p`` for the output layer in layer scope)."""
    p = check_fraction(p, "p", high_open=True)
    if output_p is None:
        return [p] * len(specs)
    output_p = check_fraction(output_p, "output_p", high_open=True)
    if scope != "layer":
        raise ValueError("output_p needs scope='layer' (in global scope the output layer is either "
                         "pooled with the others or excluded with keep_output=True)")
    out = output_layer(net)
    return [output_p if s.layer == out else p for s in specs]


def _check_mask(net, mask, name="mask") -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{name} must have dtype bool (True = kept), got {m.dtype}")
    if m.shape != (net.n_params,):
        raise ValueError(f"{name} must have shape [P={net.n_params}], got {m.shape}")
    return m


def _per_member(fn, net, theta, mask, **kw):
    """Run a [P] pruning function on each row of θ [E, P] (mask [P] shared or [E, P])."""
    E = theta.shape[0]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim == 2 and mask.shape[0] != E:
            raise ValueError(f"mask must have shape [P] or [E={E}, P], got {mask.shape}")
    rows = [fn(net, theta[e], mask=None if mask is None else (mask[e] if mask.ndim == 2 else mask), **kw)
            for e in range(E)]
    return np.stack(rows)


# ========================================================================================= magnitude
def prune_magnitude(net, theta, p: float, *, scope: str = "global", mask=None, biases: bool = False,
                    keep_output: bool = False, output_p: float | None = None, layers=None,
                    backend: str | None = None) -> np.ndarray:
    """Magnitude pruning: a mask that prunes ``round(p·n)`` more entries of the scope.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        theta: ``[P]`` (or ``[E, P]``: each member pruned on its own).
        p: fraction of the scope's surviving entries to prune, in ``[0, 1)``.
        scope: ``"global"`` (one pool) or ``"layer"`` (each parameter tensor on its own).
        mask: previous mask ``[P]`` (or ``[E, P]``), True = kept; its pruned entries stay pruned
            and do not count in n. None = nothing pruned yet.
        biases, keep_output, layers: the scope, see :func:`scope_specs`.
        output_p: with ``scope="layer"``, the output layer's own fraction (Frankle & Carbin: p/2).
        backend: selection kernel backend (see :mod:`pyquirk.kernels`).

    Returns:
        mask: bool, θ's shape; True = kept.

    Raises:
        ValueError: p or output_p outside ``[0, 1)``, an unknown scope or layer name, an empty
            scope, NaN/inf in the scope's θ, or a mask of the wrong shape.
    """
    theta = as_float_array(theta, "theta", ndim=(1, 2), finite=False)   # the kernel checks its scope
    net._check_p(theta.shape, "theta")
    if theta.ndim == 2:
        return _per_member(prune_magnitude, net, theta, mask, p=p, scope=scope, biases=biases,
                           keep_output=keep_output, output_p=output_p, layers=layers, backend=backend)
    scope = _check_scope(scope)
    specs = scope_specs(net, biases=biases, keep_output=keep_output, layers=layers)
    fr = _fractions(net, specs, p, output_p, scope)
    prior = _check_mask(net, mask)
    segs = [(s.offset, s.size) for s in specs]
    if prior is None or all(prior[s.slice].all() for s in specs):   # fast path: θ's own segments
        if scope == "global":
            n = sum(s.size for s in specs)
            keep = kernels.magnitude_select(theta, round(fr[0] * n), segs, backend=backend)
        else:
            ks = [round(f * s.size) for f, s in zip(fr, specs)]
            keep = kernels.per_segment_select(theta, ks, segs, backend=backend)
        return keep if prior is None else np.logical_and(keep, prior, out=keep)
    # later rounds: select among the survivors only, compacted in θ order (ties stay by index)
    idx, sizes = _survivors(prior, specs)
    out = prior.copy()
    if idx.size == 0:
        return out
    vals = np.ascontiguousarray(theta[idx])
    if scope == "global":
        keep = kernels.magnitude_select(vals, round(fr[0] * idx.size), backend=backend)
    else:
        csegs, ks = _compact_segments(sizes, fr)
        keep = kernels.per_segment_select(vals, ks, csegs, backend=backend) if csegs else np.ones(idx.size, bool)
    out[idx[~keep]] = False
    return out


def _survivors(prior, specs):
    """Flat indices of the kept entries of the scope, in θ order, and their count per spec."""
    parts = [s.offset + np.flatnonzero(prior[s.slice]) for s in specs]
    return np.concatenate(parts), [len(q) for q in parts]


def _compact_segments(sizes, fractions):
    """Segments and counts over the compacted survivors (specs with no survivor are skipped)."""
    segs, ks, off = [], [], 0
    for n, f in zip(sizes, fractions):
        if n:
            segs.append((off, n))
            ks.append(round(f * n))
        off += n
    return segs, ks


# ============================================================================================ random
def _generator(rng, key: int) -> np.random.Generator:
    """A Generator from a Generator (used as is), a Seeds or an int (its init stream, sub-key ``key``)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Seeds):
        return stream("init", rng.init, key)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return stream("init", int(rng), key)
    raise TypeError(f"rng must be a numpy Generator, a Seeds or an int seed, got {type(rng).__name__}")


def prune_random(net, p: float, *, scope: str = "global", mask=None, biases: bool = False,
                 keep_output: bool = False, output_p: float | None = None, layers=None,
                 rng=0) -> np.ndarray:
    """Random pruning (the control): exactly the counts of :func:`prune_magnitude`, chosen at random.

    Same scope, fraction and mask rules as :func:`prune_magnitude`; the k pruned entries are drawn
    uniformly without replacement among the scope's survivors (per tensor in layer scope).

    Args:
        rng: a Generator, or a ``Seeds``/int whose ``init`` stream (sub-stream :data:`MASK_KEY`) is used.

    Returns:
        mask: ``[P]`` bool, True = kept.
    """
    scope = _check_scope(scope)
    specs = scope_specs(net, biases=biases, keep_output=keep_output, layers=layers)
    fr = _fractions(net, specs, p, output_p, scope)
    prior = _check_mask(net, mask)
    gen = _generator(rng, MASK_KEY)
    base = np.ones(net.n_params, bool) if prior is None else prior
    idx, sizes = _survivors(base, specs)
    out = base.copy()
    if scope == "global":
        drop = gen.choice(idx.size, size=round(fr[0] * idx.size), replace=False)
    else:
        segs, ks = _compact_segments(sizes, fr)
        drop = np.concatenate([o + gen.choice(n, size=k, replace=False) for (o, n), k in zip(segs, ks)]
                              or [np.zeros(0, np.int64)])
    out[idx[drop]] = False
    return out


def random_mask_like(net, mask, rng=0, *, select: str = "all") -> np.ndarray:
    """A random mask with the same number of pruned entries as ``mask`` in every parameter tensor.

    The "random mask at the same sparsity" control of the lottery-ticket experiments: layer-wise
    sparsities are preserved, the positions are uniform at random.

    Args:
        mask: ``[P]`` bool, True = kept.
        rng: a Generator, or a ``Seeds``/int (``init`` stream, sub-stream :data:`MASK_KEY`).
        select: ``"all"``, ``"weights"`` or ``"biases"``: tensors outside stay as in ``mask``.

    Returns:
        ``[P]`` bool.
    """
    mask = _check_mask(net, mask)
    if mask is None:
        raise TypeError("mask must be a bool array [P], got None")
    gen = _generator(rng, MASK_KEY)
    kinds = _kinds(select)
    out = mask.copy()
    for s in net.layout:
        if kinds is not None and s.kind not in kinds:
            continue
        pruned = s.size - int(mask[s.slice].sum())
        keep = np.ones(s.size, bool)
        keep[gen.choice(s.size, size=pruned, replace=False)] = False
        out[s.slice] = keep
    return out


# ======================================================================================== structured
def unit_norms(net, theta, specs) -> list[np.ndarray]:
    """L2 norm of each output unit / channel (dim-0 slice) of each weight spec, float64."""
    return [np.sqrt(np.sum(np.square(theta[s.slice].reshape(s.shape[0], -1).astype(np.float64)), axis=1))
            for s in specs]


def prune_structured(net, theta, p: float, *, scope: str = "layer", mask=None, keep_output: bool = True,
                     remove_bias: bool = True, layers=None, backend: str | None = None) -> np.ndarray:
    """Structured pruning: whole output units (Dense rows) or channels (Conv filters) by L2 norm.

    Each weight tensor's dim-0 slices are the units; ``round(p·u)`` of the u surviving units (of
    the scope, or of each layer) with the smallest ``(‖W_o‖₂, o)`` are removed: their weight row
    and, with ``remove_bias``, their bias. A unit survives while any of its weights is kept.

    ``keep_output`` defaults to True here (unlike unstructured pruning): removing an output unit
    removes a class. Norms are compared as they are across layers in global scope (no fan-in
    normalisation), as ``torch.nn.utils.prune.ln_structured`` does within a layer.

    Args:
        theta: ``[P]``.
        p: fraction of surviving units to remove, in ``[0, 1)``.
        scope: ``"layer"`` (default) or ``"global"``.
        mask: previous mask ``[P]``; its pruned entries stay pruned.

    Returns:
        ``[P]`` bool, True = kept.
    """
    theta = as_float_array(theta, "theta", ndim=1)
    net._check_p(theta.shape, "theta")
    scope = _check_scope(scope)
    specs = scope_specs(net, keep_output=keep_output, layers=layers)
    p = check_fraction(p, "p", high_open=True)
    prior = _check_mask(net, mask)
    out = np.ones(net.n_params, bool) if prior is None else prior.copy()
    alive = [out[s.slice].reshape(s.shape[0], -1).any(axis=1) for s in specs]
    norms = unit_norms(net, theta, specs)
    vals = np.concatenate([n[a] for n, a in zip(norms, alive)])
    sizes = [int(a.sum()) for a in alive]
    if vals.size == 0:
        return out
    if scope == "global":
        keep = kernels.magnitude_select(vals, round(p * vals.size), backend=backend)
    else:
        segs, ks = _compact_segments(sizes, [p] * len(sizes))
        keep = kernels.per_segment_select(vals, ks, segs, backend=backend)
    off = 0
    biases = {s.layer: s for s in net.layout if s.kind == "bias"}
    for s, a, n in zip(specs, alive, sizes):
        units = np.flatnonzero(a)[~keep[off:off + n]]
        off += n
        rows = out[s.slice].reshape(s.shape[0], -1)
        rows[units] = False
        if remove_bias and s.layer in biases:
            out[biases[s.layer].slice][units] = False
    return out


# ========================================================================================== reports
def apply_mask(theta, mask, out=None, *, backend: str | None = None) -> np.ndarray:
    """θ with pruned entries set to +0 (:func:`pyquirk.kernels.apply_mask`). θ ``[P]``/``[E, P]``."""
    return kernels.apply_mask(theta, mask, out=out, backend=backend)


def _kinds(select: str) -> tuple:
    check_choice(select, ("all", "weights", "biases"), "select")
    return {"all": None, "weights": ("weight",), "biases": ("bias",)}[select]   # None: every tensor


def sparsity(net, mask, select: str = "weights") -> float:
    """Fraction of pruned entries among the ``select`` tensors: ``"weights"``, ``"biases"`` or ``"all"``.

    mask: ``[P]`` (a float), or ``[E, P]`` (the mean over members).
    """
    mask = np.asarray(mask)
    kinds = _kinds(select)
    sel = np.zeros(net.n_params, bool)
    for s in net.layout:
        sel[s.slice] = kinds is None or s.kind in kinds
    return float(1.0 - mask[..., sel].sum(axis=-1).mean() / max(int(sel.sum()), 1))


def scope_sparsity(net, mask, *, biases: bool = False, keep_output: bool = False, layers=None) -> float:
    """Fraction of pruned entries of a pruning scope (:func:`scope_specs`); mask ``[P]``."""
    mask = _check_mask(net, mask)
    specs = scope_specs(net, biases=biases, keep_output=keep_output, layers=layers)
    return float(1.0 - sum(int(mask[s.slice].sum()) for s in specs) / sum(s.size for s in specs))


def layer_sparsity(net, mask) -> dict:
    """``{param name: fraction pruned}`` for every parameter tensor (mask ``[P]``)."""
    mask = _check_mask(net, mask)
    return {s.name: float(1.0 - mask[s.slice].mean()) for s in net.layout}


__all__ = ["SCOPES", "MASK_KEY", "REINIT_KEY", "output_layer", "scope_specs", "prune_magnitude",
           "prune_random", "random_mask_like", "prune_structured", "unit_norms", "apply_mask",
           "sparsity", "scope_sparsity", "layer_sparsity"]
