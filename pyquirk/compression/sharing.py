"""Weight sharing (Deep Compression stage 2): per-layer k-means on the surviving weights.

Each weight tensor's kept weights are clustered into ``K = 2**bits`` centroids (at most one per
kept weight) by 1-D Lloyd iterations from the **linear initialisation** Han et al. found best
(centroids evenly spaced over [min, max] of the kept weights). Every kept weight is replaced by its
centroid; pruned weights stay zero; other parameters (biases) are kept as they are.

Fine-tuning (:func:`finetune_shared`) trains the codebook by gradient, as Han et al.: the gradient
of a centroid is the **sum** of the gradients of the weights that share it,
``∂L/∂c_k = Σ_{i: cluster(i)=k} ∂L/∂θ_i``; the unshared kept parameters (biases) train as usual,
and pruned entries stay zero. The trainable vector is ``φ = [centroids, unshared kept params]`` and
``θ = expand(φ)`` is linear in φ, so ``∇φ = Aᵀ ∇θ`` with A the 0/1 expansion matrix (a bincount).
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import as_float_array, check_positive_int
from ..seeds import as_seeds
from ..train import Adam
from ._loop import minibatch_loop, split_data
from ._twins import twins
from .results import SharedWeights

#: default bits per layer type (Han et al. 2016: 8 bits for conv layers, 5 bits for fc layers)
BITS = {"dense": 5, "conv": 8}


def kmeans_1d(x, k: int, *, max_iter: int = 100, backend: str | None = None):
    """1-D k-means (Lloyd) from the linear initialisation, in float64.

    Assignment: nearest centroid, ties to the lower (``label = #{j : x > (c_j + c_{j+1})/2}``).
    Update: each centroid becomes its cluster's mean; an empty cluster keeps its centroid. Stops
    when the assignment no longer changes or after ``max_iter`` updates; the returned centroids are
    the means of the returned assignment (sorted ascending).

    Args:
        x: ``[n]`` float32/float64, finite.
        k: number of centroids, >= 1.
        max_iter: at most this many updates, >= 1.

    Returns:
        (centroids ``[k]`` float64, labels ``[n]`` int64, updates run). Twins:
        :func:`._reference.kmeans_1d` (O(n·k) per iteration) and :func:`._numba.kmeans_1d`
        (sorted data, O(n + k log n)).
    """
    x = as_float_array(x, "x", ndim=1).astype(np.float64)
    k = check_positive_int(k, "k")
    max_iter = check_positive_int(max_iter, "max_iter")
    return twins(backend).kmeans_1d(x, k, max_iter)


def _bits_for(net, spec, bits) -> int:
    if bits is None:
        kind = "conv" if type(net.layers[spec.layer]).__name__.startswith("Conv") else "dense"
        return BITS[kind]
    if isinstance(bits, dict):
        if spec.name in bits:
            return check_positive_int(bits[spec.name], f"bits[{spec.name!r}]")
        kind = "conv" if type(net.layers[spec.layer]).__name__.startswith("Conv") else "dense"
        return check_positive_int(bits.get(kind, BITS[kind]), f"bits[{kind!r}]")
    return check_positive_int(bits, "bits")


def share_weights(net, theta, mask=None, *, bits=None, max_iter: int = 100,
                  backend: str | None = None) -> SharedWeights:
    """Cluster each weight tensor's kept weights; return the codebooks and the quantized θ.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        theta: ``[P]``.
        mask: ``[P]`` bool (True = kept); None = nothing pruned.
        bits: int for every tensor, ``{"dense": 5, "conv": 8}``-style by layer type and/or
            ``{"0.weight": 4}`` by name; None = Han et al.'s 5 (Dense) / 8 (Conv).
        max_iter: Lloyd updates per tensor at most.

    Returns:
        :class:`SharedWeights` (``theta`` is the quantized θ, in θ's dtype).
    """
    t0 = time.perf_counter()
    theta = as_float_array(theta, "theta", ndim=1)
    net._check_p(theta.shape, "theta")
    mask = np.ones(net.n_params, bool) if mask is None else np.asarray(mask)
    if mask.dtype != np.bool_ or mask.shape != (net.n_params,):
        raise ValueError(f"mask must be bool [P={net.n_params}], got {mask.dtype} {mask.shape}")
    names, nbits, cents, offsets, index, cluster, iters = [], [], [], [0], [], [], []
    q = np.where(mask, theta, 0).astype(theta.dtype)
    for s in (s for s in net.layout if s.kind == "weight"):
        pos = s.offset + np.flatnonzero(mask[s.slice])
        if pos.size == 0:
            continue
        b = _bits_for(net, s, bits)
        c, labels, it = kmeans_1d(theta[pos], min(1 << b, pos.size), max_iter=max_iter, backend=backend)
        names.append(s.name), nbits.append(b), iters.append(it)
        index.append(pos), cluster.append(offsets[-1] + labels), cents.append(c)
        offsets.append(offsets[-1] + c.size)
        q[pos] = c[labels].astype(theta.dtype)
    if not names:
        raise ValueError("mask keeps no weight: there is nothing to share")
    return SharedWeights(
        names=names, bits=np.array(nbits), centroids=np.concatenate(cents), offsets=np.array(offsets),
        index=np.concatenate(index), cluster=np.concatenate(cluster), theta=q, mask=mask.copy(),
        iterations=np.array(iters),
        semantics={"init": "linear over [min, max] of the kept weights (Han et al. 2016)",
                   "assignment": "nearest centroid, ties to the lower", "max_iter": max_iter,
                   "clusters": "min(2**bits, kept weights) per weight tensor"},
        counts={"wall_time_s": time.perf_counter() - t0})


def _expansion(net, shared):
    """(free: flat indices of the kept unshared params, expand(φ) -> θ, grad θ -> grad φ)."""
    Q = shared.centroids.shape[0]
    is_shared = np.zeros(net.n_params, bool)
    is_shared[shared.index] = True
    free = np.flatnonzero(np.asarray(shared.mask) & ~is_shared)
    index, cluster, dtype = shared.index, shared.cluster, shared.theta.dtype

    def expand(phi):
        theta = np.zeros(net.n_params, dtype)
        theta[index] = phi[cluster]
        theta[free] = phi[Q:]
        return theta

    def pull(grad):
        g = np.empty(Q + free.size, dtype)
        g[:Q] = np.bincount(cluster, weights=grad[index], minlength=Q)
        g[Q:] = grad[free]
        return g

    return free, expand, pull


def finetune_shared(net, shared: SharedWeights, data, *, steps: int = 500, optimizer=None,
                    batch_size: int = 100, seeds=0, backend: str | None = None,
                    progress: bool = False) -> SharedWeights:
    """Fine-tune the centroids (summed gradients) and the unshared kept parameters.

    Args:
        shared: from :func:`share_weights`.
        data: a ``Dataset`` or ``(X_train, y_train, X_test, y_test)``.
        steps, optimizer (default ``Adam(1e-3)``), batch_size, seeds: the loop of
            :func:`._loop.minibatch_loop` (``fit``'s order rule).

    Returns:
        a new :class:`SharedWeights` with the trained centroids and θ, and ``history``
        ``{"steps", "test_acc"}`` at the start and end.
    """
    Xtr, ytr, Xte, yte = split_data(data)
    s = as_seeds(seeds)
    free, expand, pull = _expansion(net, shared)
    phi0 = np.concatenate([shared.centroids.astype(shared.theta.dtype), shared.theta[free]])
    Xtr = np.asarray(Xtr, dtype=shared.theta.dtype)

    def loss_and_grad(phi, idx):
        loss, grad = net.loss_and_grad(expand(phi), Xtr[idx], ytr[idx], backend=backend)
        return loss, pull(grad)

    def record(step, phi):
        return {"step": step, "test_acc": float(net.accuracy(expand(phi), Xte, yte, backend=backend))}

    run = minibatch_loop(phi0, Xtr.shape[0], loss_and_grad, optimizer or Adam(1e-3), steps=steps,
                         batch_size=batch_size, seeds=s, record=record, progress=progress, desc="centroids")
    Q = shared.centroids.shape[0]
    recs = run["records"]
    return SharedWeights(
        names=list(shared.names), bits=shared.bits, centroids=run["phi"][:Q].astype(np.float64),
        offsets=shared.offsets, index=shared.index, cluster=shared.cluster, theta=expand(run["phi"]),
        mask=shared.mask, iterations=shared.iterations,
        history={"steps": np.array([r["step"] for r in recs]),
                 "test_acc": np.array([r["test_acc"] for r in recs])},
        semantics={**shared.semantics, "finetune": "centroid gradient = sum of its weights' gradients; "
                   "biases trained; pruned entries fixed at zero", "steps": steps,
                   "optimizer": run["optimizer"], "batch_size": batch_size},
        seeds=s.to_dict(), counts={"grad_calls": steps, "wall_time_s": run["wall_time_s"]})


__all__ = ["BITS", "kmeans_1d", "share_weights", "finetune_shared"]
