"""Fooling images (Nguyen, Yosinski & Clune 2015): unrecognisable inputs classified with ~100 % confidence.

Two searches, both starting from noise and staying inside the model's bounds:

- :func:`fooling_images`: gradient ascent on the class log-probability ``log p_c(x)`` (or on the
  log-softmax margin ``z_c − max_{j≠c} z_j``), with optional L2 and total-variation penalties, in
  steepest-ascent steps (sign for ``"linf"``, normalised for ``"l2"``) clipped to the bounds. The
  gradient of ``log p_c`` is ``−∂CE(x, c)/∂x``, the engine's per-sample input gradient; the
  margin's is ``∂CE(x, j*)/∂x − ∂CE(x, c)/∂x`` (the log-sum-exp terms cancel).
- :func:`evolve_fooling`: a gradient-free (μ, λ) evolution strategy over the input values, the
  check that the phenomenon is not an artefact of gradients. Forward passes only.

Every class is searched at once: ``n`` images per class, ``C·n`` rows in one engine call per step.
"""
from __future__ import annotations

import time

import numpy as np

from .. import kernels
from .._validate import check_choice, check_positive_int
from ..seeds import stream
from .criteria import seed_of
from .model import Model
from .results import FoolingResult

OBJECTIVES = ("logprob", "margin")
INITS = ("uniform", "gaussian")


def log_softmax(z) -> np.ndarray:
    """``log softmax(z)`` along the last axis, in float64."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _finite_bounds(model):
    lo, hi = model.bounds
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"fooling images start from noise inside the bounds, which must be finite; "
                         f"got {model.bounds}")
    return lo, hi


def _init(model, M, init, rng):
    lo, hi = _finite_bounds(model)
    shape = (M,) + model.input_shape
    if init == "uniform":
        x = rng.uniform(lo, hi, shape)
    else:
        x = rng.normal(0.5 * (lo + hi), (hi - lo) / 8.0, shape)
    return np.clip(x, lo, hi).astype(model.dtype)


def _spatial_axes(input_shape):
    """Axes of one example (after the batch axis) that total variation runs along."""
    nd = len(input_shape)
    return (1,) if nd == 1 else tuple(range(2, nd + 1))


def tv_grad(x, axes) -> np.ndarray:
    """∂/∂x of the anisotropic total variation ``Σ |x_{i+1} − x_i|`` along each axis in ``axes``."""
    g = np.zeros_like(x)
    for ax in axes:
        s = np.sign(np.diff(x, axis=ax))
        pad = [(0, 0)] * x.ndim
        pad[ax] = (1, 0)
        g += np.pad(s, pad)            # +sign(x_i − x_{i−1})
        pad[ax] = (0, 1)
        g -= np.pad(s, pad)            # −sign(x_{i+1} − x_i)
    return g


def fooling_images(model: Model, classes=None, n_per_class: int = 1, *, steps: int = 300,
                   step_size: float | None = None, norm: str = "linf", objective: str = "logprob",
                   init: str = "uniform", l2: float = 0.0, tv: float = 0.0, center: float | None = None,
                   target_confidence: float = 0.9999, stop: bool = True, seed=0) -> FoolingResult:
    """Gradient-ascent fooling images for every class in ``classes``.

    Args:
        model: a :class:`Model` with finite bounds.
        classes: ``[C']`` classes (default: all). n_per_class: images per class.
        steps: maximum ascent steps. step_size: per step (default: 1 % of the bounds' width).
        norm: ``"linf"`` (sign step) or ``"l2"`` (normalised step).
        objective: ``"logprob"`` (``log p_c``) or ``"margin"`` (``z_c − max_{j≠c} z_j``).
        init: ``"uniform"`` in the bounds, or ``"gaussian"`` around the box centre (σ = width/8).
        l2, tv: penalty weights: ``J = objective − l2·‖x − center‖² − tv·TV(x)``; ``center``
            defaults to the centre of the bounds.
        target_confidence: the confidence whose first crossing is recorded per image.
        stop: freeze an image once it reaches ``target_confidence`` (saves work).
        seed: the ``attack`` stream (``stream("attack", seed, 3)`` draws the noise).

    Returns:
        :class:`FoolingResult` (``confidence [C', n]``, ``steps_to_target``, ``history``).
    """
    t0 = time.perf_counter()
    objective = check_choice(objective, OBJECTIVES, "objective")
    init = check_choice(init, INITS, "init")
    norm = check_choice(norm, ("linf", "l2"), "norm")
    steps = check_positive_int(steps, "steps")
    n = check_positive_int(n_per_class, "n_per_class")
    lo, hi = _finite_bounds(model)
    classes = np.arange(model.n_classes) if classes is None else np.asarray(classes, dtype=np.int64)
    if classes.ndim != 1 or classes.size == 0 or classes.min() < 0 or classes.max() >= model.n_classes:
        raise ValueError(f"classes must be a non-empty list of classes in [0, {model.n_classes})")
    eta = 0.01 * (hi - lo) if step_size is None else float(step_size)
    if not eta > 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    center = 0.5 * (lo + hi) if center is None else float(center)
    seed = seed_of(seed)
    snap = model.snapshot()

    C = classes.size
    lab = np.repeat(classes, n)                                                # [M]
    M = lab.size
    x = _init(model, M, init, stream("attack", seed, 3))
    axes = _spatial_axes(model.input_shape)
    conf = np.zeros(M)
    hit = np.full(M, -1, dtype=np.int64)
    history = []
    active = np.arange(M)
    for t in range(steps + 1):
        xa, la = x[active], lab[active]
        if t == steps:                                      # last evaluation: no step follows
            z = model.logits(xa)
        else:
            z, g = model.loss_grad(xa, la)                  # g = ∂CE(x, c)/∂x = −∂log p_c/∂x
        lp = log_softmax(z)
        conf[active] = np.exp(lp[np.arange(active.size), la])
        newly = (hit[active] < 0) & (conf[active] >= target_confidence)
        hit[active[newly]] = t
        history.append(conf.reshape(C, n).max(1).copy())
        if t == steps:
            break
        if stop:                                            # freeze images that got there
            keep = hit[active] < 0
            active, xa, la, z, g = active[keep], xa[keep], la[keep], z[keep], g[keep]
            if active.size == 0:
                break
        grad = -g
        if objective == "margin":
            zo = np.array(z, dtype=np.float64)
            zo[np.arange(active.size), la] = -np.inf
            _, g_other = model.loss_grad(xa, zo.argmax(-1))
            grad = g_other - g
        grad = grad.astype(np.float64)
        if l2:
            grad -= 2.0 * l2 * (xa - center)
        if tv:
            grad -= tv * tv_grad(xa.astype(np.float64), axes)
        step = kernels.steepest_step(xa.reshape(active.size, -1), grad.reshape(active.size, -1).astype(x.dtype),
                                     eta, norm, backend=model.backend)
        x[active] = np.clip(step, lo, hi).reshape(xa.shape)
    z = model.logits(x)
    conf = np.exp(log_softmax(z)[np.arange(M), lab])
    counts = model.since(snap)
    counts["wall_time_s"] = time.perf_counter() - t0
    sem = {"method": "gradient ascent", "objective": objective, "norm": norm, "step_size": eta,
           "steps": steps, "init": init, "l2": l2, "tv": tv, "center": center, "stop": stop,
           "target_confidence": target_confidence, "bounds": list(model.bounds), "model": model.name,
           "confidence": "softmax probability of the class (float64 from the logits)"}
    return FoolingResult(images=x.reshape((C, n) + model.input_shape), classes=classes,
                         confidence=conf.reshape(C, n), steps_to_target=hit.reshape(C, n),
                         history=np.asarray(history), method="gradient", semantics=sem,
                         seeds={"attack": seed}, counts=counts)


def evolve_fooling(model: Model, classes=None, *, mu: int = 10, lam: int = 60, generations: int = 300,
                   sigma: float | None = None, sigma_decay: float = 1.0, objective: str = "margin",
                   init: str = "uniform", target_confidence: float = 0.9999, seed=0) -> FoolingResult:
    """Gradient-free fooling images: a (μ, λ) evolution strategy per class, all classes in one batch.

    Each generation every class draws λ offspring from its μ parents (parents uniform at random,
    Gaussian mutation of scale σ on every input value, clipped to the bounds), evaluates them in
    ONE forward call for all classes, and keeps the best μ offspring as the next parents (comma
    selection: parents die). Fitness is the margin ``z_c − max_{j≠c} z_j`` (or ``log p_c``). The
    best individual ever seen per class is returned (it is not re-inserted: no elitism).

    Args:
        mu, lam: parents and offspring per class (``lam >= mu``).
        generations: generations to run. sigma: mutation scale (default 5 % of the bounds'
            width), multiplied by ``sigma_decay`` every generation.
        objective, init, target_confidence, seed: as in :func:`fooling_images`
            (``stream("attack", seed, 4)``).

    Returns:
        :class:`FoolingResult` with n = 1 image per class; ``steps_to_target`` in generations.
    """
    t0 = time.perf_counter()
    objective = check_choice(objective, OBJECTIVES, "objective")
    init = check_choice(init, INITS, "init")
    mu, lam = check_positive_int(mu, "mu"), check_positive_int(lam, "lam")
    if lam < mu:
        raise ValueError(f"(mu, lambda) selection needs lam >= mu, got mu={mu}, lam={lam}")
    generations = check_positive_int(generations, "generations")
    lo, hi = _finite_bounds(model)
    classes = np.arange(model.n_classes) if classes is None else np.asarray(classes, dtype=np.int64)
    sig = 0.05 * (hi - lo) if sigma is None else float(sigma)
    seed = seed_of(seed)
    rng = stream("attack", seed, 4)
    snap = model.snapshot()

    C = classes.size
    shp = model.input_shape
    parents = _init(model, C * mu, init, rng).reshape((C, mu) + shp)
    best_x = parents[:, 0].copy()
    best_f = np.full(C, -np.inf)
    best_conf = np.zeros(C)
    hit = np.full(C, -1, dtype=np.int64)
    lab = np.repeat(classes, lam)
    history = []
    for gen in range(generations):
        pick = rng.integers(0, mu, (C, lam))
        kids = parents[np.arange(C)[:, None], pick]
        kids = np.clip(kids + rng.normal(0.0, sig, kids.shape), lo, hi).astype(model.dtype)
        z = model.logits(kids.reshape((C * lam,) + shp))
        lp = log_softmax(z)
        own = lp[np.arange(C * lam), lab]
        if objective == "margin":
            zo = np.array(z, dtype=np.float64)
            zo[np.arange(C * lam), lab] = -np.inf
            fit = np.asarray(z, dtype=np.float64)[np.arange(C * lam), lab] - zo.max(-1)
        else:
            fit = own
        fit, own = fit.reshape(C, lam), own.reshape(C, lam)
        order = np.argsort(-fit, axis=1, kind="stable")[:, :mu]
        parents = kids[np.arange(C)[:, None], order]
        top = order[:, 0]
        better = fit[np.arange(C), top] > best_f
        best_f[better] = fit[np.arange(C), top][better]
        best_x[better] = kids[np.arange(C), top][better]
        best_conf[better] = np.exp(own[np.arange(C), top][better])
        hit[(hit < 0) & (best_conf >= target_confidence)] = gen + 1
        history.append(best_conf.copy())
        sig *= sigma_decay
    counts = model.since(snap)
    counts["wall_time_s"] = time.perf_counter() - t0
    sem = {"method": "(mu, lambda) evolution strategy", "mu": mu, "lambda": lam,
           "generations": generations, "sigma": (0.05 * (hi - lo) if sigma is None else float(sigma)),
           "sigma_decay": sigma_decay, "objective": objective, "init": init,
           "selection": "comma (parents replaced by the best mu offspring); best-ever reported",
           "target_confidence": target_confidence, "bounds": list(model.bounds), "model": model.name}
    return FoolingResult(images=best_x[:, None], classes=classes, confidence=best_conf[:, None],
                         steps_to_target=hit[:, None], history=np.asarray(history), method="evolution",
                         semantics=sem, seeds={"attack": seed}, counts=counts)


__all__ = ["fooling_images", "evolve_fooling", "log_softmax", "tv_grad"]
