"""Attack criteria and argument checks shared by every attack: norms, ε, seeds, targets, margins.

- margin: untargeted ``max_{j≠y} z_j − z_y``, targeted ``z_t − max_{j≠t} z_j`` (> 0: the attack won);
- success: arg-max (first maximum) ``≠ y`` untargeted, ``= t`` targeted;
- targets: None, a class, ``[N]`` classes (≠ y), ``"random"`` (uniform over classes ≠ y from
  ``stream("attack", seed, 1)``) or ``"least_likely"`` (smallest clean logit among classes ≠ y).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_choice
from ..seeds import Seeds, stream
from ._reference import margins_rows
from .model import Model

TARGET_MODES = ("random", "least_likely")


# ==================================================================================== validation
def check_norm(norm) -> str:
    """``"linf"`` or ``"l2"`` from a name (``"linf"``, ``"inf"``, ``"l2"``) or a number (``np.inf``, 2)."""
    if isinstance(norm, str) and norm.lower() in ("linf", "inf", "l_inf"):
        return "linf"
    if isinstance(norm, str) and norm.lower() in ("l2", "l_2"):
        return "l2"
    if isinstance(norm, (int, float, np.integer, np.floating)) and not isinstance(norm, bool):
        if norm == np.inf:
            return "linf"
        if norm == 2:
            return "l2"
    raise ValueError(f"unknown norm {norm!r}; expected 'linf' (or np.inf) or 'l2' (or 2)")


def check_eps(eps) -> np.ndarray:
    """ε as float64 ``[K]`` (a scalar gives K = 1): finite and ``>= 0``."""
    if isinstance(eps, bool) or eps is None:
        raise TypeError(f"eps must be a number or a 1-D array of numbers, got {eps!r}")
    arr = np.asarray(eps)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"eps must be numeric, got dtype {arr.dtype}")
    arr = np.atleast_1d(arr.astype(np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"eps must be a scalar or a non-empty 1-D array [K], got shape {np.shape(eps)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("eps contains NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError(f"eps must be >= 0, got {arr.min():g}")
    return arr


def seed_of(seed) -> int:
    """The integer seed of the ``attack`` stream from an int or a :class:`~pyquirk.seeds.Seeds`."""
    if isinstance(seed, Seeds):
        return int(seed.attack)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise TypeError(f"seed must be a non-negative int or a Seeds (its 'attack' stream), got {seed!r}")


def check_step(value, name):
    """A step size: None (use the default) or a finite number ``>= 0``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def resolve_targets(model: Model, target, y, z_clean, seed: int):
    """``(t [N] or None, mode)`` from ``target``: None, ``"random"``, ``"least_likely"``, an int or ``[N]``.

    ``"random"``: uniform over the classes ≠ y, drawn from ``stream("attack", seed, 1)``.
    ``"least_likely"``: the class of smallest clean logit among the classes ≠ y.
    A given target must differ from the label everywhere.
    """
    C, N = model.n_classes, y.shape[0]
    if target is None:
        return None, "untargeted"
    if isinstance(target, str):
        check_choice(target, TARGET_MODES, "target mode")
        if target == "random":
            t = (y + 1 + stream("attack", seed, 1).integers(0, C - 1, N)) % C
        else:
            zm = np.array(z_clean, dtype=np.float64)
            zm[np.arange(N), y] = np.inf
            t = zm.argmin(-1)
        return t.astype(np.int64), target
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"target must be None, 'random', 'least_likely' or integer classes, got {target!r}")
    t = np.broadcast_to(t, (N,)).astype(np.int64) if t.ndim == 0 else t.astype(np.int64)
    if t.shape != (N,):
        raise ValueError(f"target must be a class or have shape [{N}], got {t.shape}")
    if t.min() < 0 or t.max() >= C:
        raise ValueError(f"target classes must lie in [0, {C}), got range [{t.min()}, {t.max()}]")
    same = np.flatnonzero(t == y)
    if same.size:
        raise ValueError(f"target equals the label for {same.size} example(s) (first indices "
                         f"{same[:5].tolist()}); a targeted attack needs target != y")
    return t, "given"


def margins(z, labels, targeted: bool) -> np.ndarray:
    """Attack margins ``[..., N]`` of logits ``z: [..., N, C]``; positive = the attack has won.

    Untargeted (``labels`` = y): ``max_{j≠y} z_j − z_y``. Targeted (``labels`` = t):
    ``z_t − max_{j≠t} z_j``. Computed in float64 (:func:`._reference.margins_rows`).
    """
    z = np.asarray(z)
    lab = np.broadcast_to(labels, z.shape[:-1]).reshape(-1)
    return margins_rows(z.reshape(-1, z.shape[-1]), lab, targeted).reshape(z.shape[:-1])


def won(z, labels, targeted: bool) -> np.ndarray:
    """Success by arg-max (first maximum): ``pred ≠ y`` untargeted, ``pred = t`` targeted."""
    pred = np.asarray(z).argmax(-1)
    lab = np.broadcast_to(labels, pred.shape)
    return pred == lab if targeted else pred != lab


def perturbation_norms(x, x0, norm: str) -> np.ndarray:
    """``‖x − x0‖_p`` over all feature dims, float64: ``x: [..., N, D]``, ``x0: [N, D]`` -> ``[..., N]``."""
    d = np.subtract(x, x0, dtype=np.float64)  # each operand cast first, then one float64 array, reused
    return np.abs(d, out=d).max(-1) if norm == "linf" else np.sqrt(np.square(d, out=d).sum(-1))


__all__ = ["check_norm", "check_eps", "seed_of", "check_step", "resolve_targets", "margins", "won",
           "perturbation_norms", "TARGET_MODES"]
