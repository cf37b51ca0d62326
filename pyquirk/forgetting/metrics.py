"""Continual-learning metrics from the accuracy matrix ``R`` (DESIGN §4, "Forgetting").

``R[i, j]`` is the test accuracy on task j after training on tasks 0 … i (0-based, T tasks).
Every function accepts ``R: [..., T, T]`` (leading axes, e.g. population members, are kept) and
returns ``[...]``. Definitions (with ``k = T − 1`` the last task):

==========================  ====================================================================
ACC (GEM)                   ``1/T · Σ_j R[k, j]``
BWT (GEM)                   ``1/(T−1) · Σ_{j<k} (R[k, j] − R[j, j])``
FWT (GEM)                   ``1/(T−1) · Σ_{j≥1} (R[j−1, j] − b_j)``, b_j: accuracy on task j at
                            the random initialisation
forgetting, last-based      ``1/(T−1) · Σ_{j<k} (R[j, j] − R[k, j])`` (Avalanche's
(Avalanche)                 ``StreamForgetting``: accuracy just after training j minus the
                            last accuracy, averaged over the tasks trained before the last)
forgetting, max-based       ``1/(T−1) · Σ_{j<k} (max_{j≤l<k} R[l, j] − R[k, j])``
(Chaudhry et al. 2018)
forgetting ratio ρ (HAT)    ``ρ^{≤t} = 1/(t+1) · Σ_{τ≤t} (R[t, τ] − A_R^τ)/(A_J^{τ≤t} − A_R^τ) − 1``
intransigence (Chaudhry)    ``1/T · Σ_j (a*_j − R[j, j])``, a* a reference model's accuracy
==========================  ====================================================================

Sign conventions. BWT is a *transfer* (negative = forgetting); both forgetting measures are
*losses* (positive = forgetting). Avalanche defines its BWT as minus its forgetting
(``forgetting_to_bwt``), and with the last-based form the identity with GEM is exact:
``bwt(R) == -forgetting_last(R)``. The max-based form is never below the last-based one
(``R[j, j]`` is one of the terms of the max), so ``forgetting_max(R) ≥ -bwt(R)``.

Chaudhry et al. write the max over ``l ∈ {1, …, k−1}``; they only evaluate tasks already seen,
so their matrix has no entries ``R[l, j]`` with ``l < j``. Ours is the full GEM matrix, and the max
runs over ``l = j … k−1`` (after task j was learned), which is their definition on their entries.

HAT's ρ (Serrà et al. 2018, §4.1): ``A_R^τ`` is the accuracy of a random stratified classifier on
task τ (it predicts class c with the training frequency p_c, so ``A_R = Σ_c p_c^train p_c^test``,
``1/C`` when balanced: :func:`random_accuracy`), ``A_J^{τ≤t}`` the accuracy on τ of a network
trained jointly (multitask) on tasks 0 … t. ρ ≈ −1: no better than chance; ρ ≈ 0: as good as
joint training.
"""
from __future__ import annotations

import numpy as np

from .._validate import as_float_array, as_labels


def _matrix(R, name: str = "R", min_tasks: int = 1) -> np.ndarray:
    R = as_float_array(R, name, dtype=np.float64, finite=False)
    if R.ndim < 2 or R.shape[-1] != R.shape[-2]:
        raise ValueError(f"{name} must be a square accuracy matrix [..., T, T], got shape {R.shape}")
    if R.shape[-1] < min_tasks:
        raise ValueError(f"this metric needs at least {min_tasks} tasks, {name} has {R.shape[-1]}")
    return R


def _diag(R) -> np.ndarray:
    return np.diagonal(R, axis1=-2, axis2=-1)


def acc(R) -> np.ndarray:
    """Average accuracy after the last task (GEM's ACC): ``mean_j R[T−1, j]``. ``[...]``."""
    R = _matrix(R)
    return R[..., -1, :].mean(axis=-1)


def bwt(R) -> np.ndarray:
    """Backward transfer (GEM): ``mean_{j<T−1} (R[T−1, j] − R[j, j])``; negative = forgetting."""
    R = _matrix(R, min_tasks=2)
    return (R[..., -1, :-1] - _diag(R)[..., :-1]).mean(axis=-1)


def fwt(R, b) -> np.ndarray:
    """Forward transfer (GEM): ``mean_{j≥1} (R[j−1, j] − b_j)``.

    Args:
        R: ``[..., T, T]``.
        b: ``[..., T]`` accuracy on each task of the randomly initialised network (GEM's b̄);
            broadcast against R's leading axes.
    """
    R = _matrix(R, min_tasks=2)
    b = as_float_array(b, "b", dtype=np.float64, finite=False)
    if b.shape[-1] != R.shape[-1]:
        raise ValueError(f"b must have T={R.shape[-1]} entries per row, got shape {b.shape}")
    above = np.diagonal(R, offset=1, axis1=-2, axis2=-1)          # R[j−1, j], j = 1 … T−1
    return (above - b[..., 1:]).mean(axis=-1)


def forgetting_last(R) -> np.ndarray:
    """Last-based forgetting (Avalanche): ``mean_{j<T−1} (R[j, j] − R[T−1, j])`` = ``−bwt(R)``."""
    R = _matrix(R, min_tasks=2)
    return (_diag(R)[..., :-1] - R[..., -1, :-1]).mean(axis=-1)


def forgetting_max(R, k: int | None = None) -> np.ndarray:
    """Max-based forgetting (Chaudhry et al. 2018) after task k (default the last):

    ``f_j = max_{j≤l<k} R[l, j] − R[k, j]`` for ``j < k``, averaged over ``j``.
    """
    R = _matrix(R, min_tasks=2)
    T = R.shape[-1]
    k = T - 1 if k is None else int(k)
    if not 1 <= k < T:
        raise ValueError(f"k must be in 1 … {T - 1} (forgetting needs an earlier task), got {k}")
    f = [R[..., j:k, j].max(axis=-1) - R[..., k, j] for j in range(k)]
    return np.mean(f, axis=0)


def per_task_forgetting(R, kind: str = "last") -> np.ndarray:
    """``[..., T−1]`` forgetting of each task j < T−1 after the last task (``"last"`` or ``"max"``)."""
    R = _matrix(R, min_tasks=2)
    T = R.shape[-1]
    if kind == "last":
        return _diag(R)[..., :-1] - R[..., -1, :-1]
    if kind == "max":
        return np.stack([R[..., j:T - 1, j].max(axis=-1) - R[..., -1, j] for j in range(T - 1)], axis=-1)
    raise ValueError(f"unknown kind {kind!r}; expected 'last' or 'max'")


def forgetting_ratio(R, joint, random, t: int | None = None, per_task: bool = False) -> np.ndarray:
    """HAT's forgetting ratio ρ^{≤t} (Serrà et al. 2018, §4.1).

    Args:
        R: ``[..., T, T]`` the sequential learner's accuracy matrix.
        joint: ``[..., T, T]`` joint-training accuracies, ``joint[t, τ]`` the accuracy on τ after
            jointly training tasks 0 … t; only row t (entries τ ≤ t) is read, so a matrix whose
            other rows are NaN (``Joint(incremental=False)`` trains on all tasks at once and fills
            only the last row) serves for the default ``t = T − 1``.
        random: ``[T]`` (or ``[..., T]``) accuracy of the random stratified classifier per task
            (:func:`random_accuracy`).
        t: after which task (default the last).
        per_task: return ``[..., t+1]`` the ρ^{τ≤t} of each task instead of their mean.

    ρ^{τ≤t} is undefined (NaN) where the joint accuracy does not exceed the random one.
    """
    R = _matrix(R)
    T = R.shape[-1]
    t = T - 1 if t is None else int(t)
    if not 0 <= t < T:
        raise ValueError(f"t must be in 0 … {T - 1}, got {t}")
    J = _matrix(joint, "joint")
    if J.shape[-1] != T:
        raise ValueError(f"joint must be [..., T={T}, T] like R, got shape {J.shape}")
    Jt = J[..., t, :t + 1]
    A_R = as_float_array(random, "random", dtype=np.float64)
    if A_R.shape[-1] != T:
        raise ValueError(f"random must have T={T} entries, got shape {A_R.shape}")
    A_R = A_R[..., :t + 1]
    denom = Jt - A_R
    with np.errstate(divide="ignore", invalid="ignore"):   # undefined (NaN) where joint ≤ random
        rho = np.where(denom > 0, (R[..., t, :t + 1] - A_R) / np.where(denom > 0, denom, 1.0) - 1.0, np.nan)
    return rho if per_task else rho.mean(axis=-1)


def intransigence(R, reference) -> np.ndarray:
    """Intransigence (Chaudhry et al. 2018): ``mean_j (a*_j − R[j, j])``, how much worse each task
    is learned in the sequence than by a reference model (``reference: [..., T]``, a*_j).

    Chaudhry et al. take a* from a model trained on all the data seen up to task j; pyquirk's
    experiment passes the single-task accuracies (one network per task, same budget).
    """
    R = _matrix(R)
    ref = as_float_array(reference, "reference", dtype=np.float64, finite=False)
    if ref.shape[-1] != R.shape[-1]:
        raise ValueError(f"reference must have T={R.shape[-1]} entries, got shape {ref.shape}")
    return (ref - _diag(R)).mean(axis=-1)


def random_accuracy(y_train, y_test, n_classes: int | None = None) -> float:
    """Accuracy of a random stratified classifier: ``Σ_c p_c^train · p_c^test``.

    It predicts class c with the probability c has in the training labels, independently of the
    input, so its expected test accuracy is the overlap of the two label distributions.
    """
    y_train = as_labels(y_train, "y_train", n_classes)
    y_test = as_labels(y_test, "y_test", n_classes)
    C = int(max(y_train.max(), y_test.max()) + 1) if n_classes is None else int(n_classes)
    p = np.bincount(y_train, minlength=C) / len(y_train)
    q = np.bincount(y_test, minlength=C) / len(y_test)
    return float(p @ q)


def summarize(R, b=None, joint=None, random=None) -> dict:
    """Every metric that the inputs define, as ``{name: [...] array}`` (NaN where undefined).

    Keys: ``acc``, ``bwt``, ``fwt`` (needs ``b``), ``forgetting_last``, ``forgetting_max``,
    ``rho`` (needs ``joint`` and ``random``), ``final_task0`` (``R[T−1, 0]``).
    """
    R = _matrix(R)
    nan = np.full(R.shape[:-2], np.nan)
    two = R.shape[-1] >= 2
    out = {"acc": acc(R),
           "bwt": bwt(R) if two else nan,
           "fwt": fwt(R, b) if two and b is not None else nan,
           "forgetting_last": forgetting_last(R) if two else nan,
           "forgetting_max": forgetting_max(R) if two else nan,
           "rho": forgetting_ratio(R, joint, random) if joint is not None and random is not None else nan,
           "final_task0": R[..., -1, 0]}
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


__all__ = ["acc", "bwt", "fwt", "forgetting_last", "forgetting_max", "per_task_forgetting",
           "forgetting_ratio", "intransigence", "random_accuracy", "summarize"]
