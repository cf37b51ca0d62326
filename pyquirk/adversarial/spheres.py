"""Adversarial spheres (Gilmer et al. 2018): small test error forces small distance to the nearest error.

Data: two concentric spheres in ``R^n`` (:func:`pyquirk.data.spheres`), radius 1 (class 0) and
1.3 (class 1). For the error set E of a model on the inner sphere, with measure µ = µ(E) and
accuracy p = 1 − µ there, Theorem 5.1 of Gilmer et al. states (for p ∈ [0.5, 1])::

    d(E) ≤ O(Φ⁻¹(p) / √n),

d(E) the average distance from a point of the sphere to the nearest point of E, Φ⁻¹ the inverse
normal CDF. The proof is the isoperimetric inequality on the sphere: among sets of measure µ a
spherical cap maximises the average distance, so the exact bound is d(cap of measure µ), which we
compute numerically (:func:`cap_distance`); for large n it approaches ``r·(aΦ(a) + φ(a))/√n`` with
``a = Φ⁻¹(p)``, i.e. ``r·Φ⁻¹(p)/√n`` up to a term that vanishes as p → 1.

:func:`spheres_experiment` trains an MLP, estimates µ on fresh inner-sphere points, and measures
d(E) with a *manifold* attack: L2 PGD whose iterates are put back on the inner sphere after every
step (the hook of :func:`~.attacks.attack`), with the distance of the error it finds measured
directly (chord length), ε grid plus bisection per point.
"""
from __future__ import annotations

import time

import numpy as np
from scipy import integrate, stats

from .._validate import check_positive_int
from ..seeds import as_seeds, stream
from .attacks import attack
from .model import Model
from .results import SpheresResult


def theorem_bound(mu: float, n: int, r: float = 1.0) -> float:
    """``r·Φ⁻¹(1 − µ)/√n``: Theorem 5.1's rate with the O(·) constant set to 1 (0 for µ ≥ 0.5)."""
    return float(r * max(stats.norm.ppf(1.0 - mu), 0.0) / np.sqrt(n))


def cap_distance(mu: float, n: int, r: float = 1.0) -> float:
    """Average chord distance from a uniform point of the radius-r sphere in ``R^n`` to a cap of measure µ.

    With ``s = x₁/r``, ``(s + 1)/2 ~ Beta((n−1)/2, (n−1)/2)``; the cap is ``s ≥ t`` with
    ``P(s ≥ t) = µ``, and a point at ``s < t`` is ``2r·sin((arccos s − arccos t)/2)`` away from it.
    This is the largest d(E) any error set of measure µ can have (isoperimetry on the sphere).
    """
    if not 0.0 < mu <= 1.0:
        raise ValueError(f"mu must lie in (0, 1], got {mu}")
    a = 0.5 * (n - 1)
    beta = stats.beta(a, a)
    t = 2.0 * beta.isf(mu) - 1.0
    at = np.arccos(np.clip(t, -1.0, 1.0))
    sd = 1.0 / np.sqrt(n)

    def f(s):
        return 2.0 * r * np.sin(0.5 * (np.arccos(s) - at)) * 0.5 * beta.pdf(0.5 * (s + 1.0))

    lo = max(-1.0, min(t, 0.0) - 12 * sd)     # the mass lies within a few 1/√n of the equator
    val, _ = integrate.quad(f, lo, t, points=[p for p in (0.0,) if lo < p < t], limit=200)
    return float(val)


def sphere_points(n_points: int, dim: int, r: float, seed: int, key: int = 6) -> np.ndarray:
    """``[n_points, dim]`` float32 points uniform on the radius-r sphere (``stream("data", seed, key)``)."""
    g = stream("data", int(seed), key).standard_normal((n_points, dim))
    return (g / np.linalg.norm(g, axis=1, keepdims=True) * r).astype(np.float32)


def spheres_experiment(dim: int = 500, *, hidden=(1000, 1000), n_train: int = 20000, steps: int = 3000,
                       batch_size: int = 50, lr: float = 1e-4, n_error: int = 20000, n_attack: int = 200,
                       eps=None, refine: int = 10, attack_steps: int = 50, r_inner: float = 1.0,
                       r_outer: float = 1.3, seeds=0, backend: str | None = None,
                       progress: bool = False) -> SpheresResult:
    """Train a ReLU MLP on concentric spheres and set its d(E) against µ(E) and the bound.

    Args:
        dim: n, the ambient dimension (500 in the paper).
        hidden: hidden widths of the MLP (the paper: two layers of 1000, with batch norm, which
            pyquirk does not have; see DESIGN §2).
        n_train, steps, batch_size, lr: Adam training on a fixed training set of ``n_train``.
        n_error: fresh inner-sphere points estimating µ(E) (forward passes only).
        n_attack: inner-sphere points whose distance to the nearest error is searched.
        eps: L2 grid of the manifold attack (default 24 values up to the diameter 2r).
        refine, attack_steps: bisection steps and PGD steps per ε.
        r_inner, r_outer: radii. seeds: ``data``, ``init``, ``order``, ``attack`` streams.

    Returns:
        :class:`SpheresResult`.
    """
    from ..data import spheres
    from ..nn import Dense, Net, ReLU
    from ..train import Adam, fit
    t0 = time.perf_counter()
    dim = check_positive_int(dim, "dim", minimum=2)
    s = as_seeds(seeds)
    ds = spheres(n_train + 2000, dim, r_inner, r_outer, seed=s.data, test_fraction=2000 / (n_train + 2000))
    layers = []
    for h in hidden:
        layers += [Dense(int(h)), ReLU()]
    net = Net(layers + [Dense(2)], input_shape=(dim,))
    run = fit(net, net.init(s), ds.X_train, ds.y_train, Adam(lr), steps=steps, batch_size=batch_size,
              seeds=s, progress=progress, backend=backend)
    model = Model(net, run.theta, (-np.inf, np.inf), backend=backend, name=f"mlp{tuple(hidden)}")
    snap = model.snapshot()
    test_err = float((model.predict(ds.X_test) != ds.y_test).mean())

    inner = sphere_points(n_error, dim, r_inner, s.data)
    mu = float((model.predict(inner) != 0).mean())
    pts = inner[:n_attack]
    grid = np.linspace(2.0 * r_inner / 24, 2.0 * r_inner, 24) if eps is None else np.asarray(eps, float)

    def to_sphere(x):
        """Back onto the inner sphere: x ← r·x/‖x‖ (the manifold attack of Gilmer et al.)."""
        nrm = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
        return (x * (r_inner / np.where(nrm > 0, nrm, 1.0))).astype(x.dtype)

    r = attack(model, pts, np.zeros(len(pts), dtype=np.int64), grid, kind="pgd", norm="l2",
               steps=attack_steps, refine=refine, seed=s.attack, hook=to_sphere)
    dist = np.linalg.norm(r.x_min.astype(np.float64) - pts.astype(np.float64), axis=1)
    dist[~np.isfinite(r.min_eps)] = np.inf
    mean_d = float(np.mean(dist)) if np.all(np.isfinite(dist)) else float(np.mean(dist[np.isfinite(dist)]))
    mu_b = mu if mu > 0 else 3.0 / n_error                 # rule of three when no error was seen
    counts = model.since(snap)
    counts.update(train_steps=steps, wall_time_s=time.perf_counter() - t0)
    sem = {"data": f"spheres(dim={dim}, r_inner={r_inner}, r_outer={r_outer}), {n_train} training points",
           "model": repr(net), "training": f"Adam(lr={lr}), {steps} steps, batch {batch_size}",
           "mu": f"error rate on {n_error} fresh inner-sphere points",
           "distance": "chord distance from an inner-sphere point to the error found by L2 PGD "
                       "projected back onto the inner sphere after every step (eps grid + bisection); "
                       "0 for points already misclassified",
           "theorem": "Gilmer et al. 2018, Thm 5.1: d(E) <= O(Phi^-1(p)/sqrt(n)), p = 1 - mu(E)",
           "bound_cap": "exact isoperimetric bound: average distance to a spherical cap of measure mu",
           "mu_for_bound": mu_b, "unattacked_failures": int(np.sum(~np.isfinite(dist))),
           "train_accuracy": float(run.history["train_acc"][-1])}
    return SpheresResult(dim=dim, radii=[r_inner, r_outer], error_rate=test_err, inner_error_rate=mu,
                         distances=dist, mean_distance=mean_d,
                         bound_theorem=theorem_bound(mu_b, dim, r_inner),
                         bound_cap=cap_distance(mu_b, dim, r_inner),
                         semantics=sem, seeds=s.to_dict(), counts=counts)


__all__ = ["theorem_bound", "cap_distance", "sphere_points", "spheres_experiment"]
