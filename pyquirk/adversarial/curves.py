"""Robust-accuracy curves: accuracy against ε for FGSM and PGD, L∞ and L2, in one call.

Each (attack, norm) pair is one batched pass over its whole ε grid (ε values stacked on the
population axis, :func:`pyquirk.adversarial.attack`), so a 10-point curve costs one attack's worth
of engine calls, not ten.
"""
from __future__ import annotations

import time

import numpy as np

from .attacks import attack
from .criteria import check_eps, check_norm, seed_of
from .model import Model
from .results import RobustCurve


def robust_accuracy_curve(model: Model, X, y, eps: dict, *, attacks=("fgsm", "pgd"), steps: int = 40,
                          restarts: int = 1, seed=0, compat=None, **kwargs) -> RobustCurve:
    """Accuracy against ε for every attack in ``attacks`` and every norm in ``eps``.

    Args:
        model: the :class:`Model` (bounds declared).
        X: ``[N, *in]``; y: ``[N]``.
        eps: ``{norm: [K] radii}``, e.g. ``{"linf": np.linspace(0, .5, 10), "l2": [...]}``.
        attacks: any of ``"fgsm"``, ``"pgd"``, ``"bim"``.
        steps, restarts: for the iterative attacks (FGSM is one step from x0).
        seed: the ``attack`` stream; compat: see :mod:`.compat`; ``kwargs`` go to every attack.

    Returns:
        :class:`RobustCurve`; ``curves["pgd-linf"]["accuracy"]`` is ``[K]``: the fraction of
        examples correctly classified under every attack of radius ε' ≤ ε (an example broken at a
        smaller ε counts as broken); ``accuracy_last`` judges each ε on its own final iterate.
    """
    t0 = time.perf_counter()
    if not isinstance(eps, dict) or not eps:
        raise TypeError("eps must be a non-empty dict {norm: [K] radii}, e.g. {'linf': [0.1, 0.2]}")
    grids = {check_norm(k): check_eps(v) for k, v in eps.items()}
    snap = model.snapshot()
    curves, sem = {}, {}
    clean = None
    for name in attacks:
        for norm, grid in grids.items():
            kw = dict(kwargs)
            if name != "fgsm":
                kw.update(steps=steps, restarts=restarts)
            r = attack(model, X, y, grid, kind=name, norm=norm, seed=seed, compat=compat, **kw)
            curves[f"{name}-{norm}"] = {"eps": grid, "accuracy": r.robust_accuracy,
                                        "accuracy_last": 1.0 - r.success_rate,
                                        "success": r.success, "min_eps": r.min_eps}
            sem[f"{name}-{norm}"] = r.semantics
            clean = r.clean_accuracy
    counts = model.since(snap)
    counts["wall_time_s"] = time.perf_counter() - t0
    return RobustCurve(curves=curves, clean_accuracy=float(clean),
                       semantics={"attacks": sem, "accuracy": "correct under every attack with "
                                  "eps' <= eps (untargeted, judged on final clipped inputs)",
                                  "n_examples": int(np.shape(X)[0])},
                       seeds={"attack": seed_of(seed)}, counts=counts)


__all__ = ["robust_accuracy_curve"]
