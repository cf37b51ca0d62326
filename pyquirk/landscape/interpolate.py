"""1-D linear interpolation between two parameter vectors (Goodfellow, Vinyals & Saxe 2015).

``θ(α) = (1 − α)·θ_a + α·θ_b`` in θ's dtype, each point fresh; α = 0 gives θ_a and α = 1 gives θ_b
bit for bit. The α values always include both end points exactly: 0.0 and 1.0 are inserted when
the requested axis misses them (values within 1e-9 of the axis span are snapped to them). The
default axis is 41 points over [−0.5, 1.5] (step 0.05). Train (and optionally test) loss and
accuracy are evaluated at every α, with the first-layer shortcut where the net supports it.
"""
from __future__ import annotations

import time

import numpy as np

from .. import backends
from .._validate import as_float_array
from .evaluate import Evaluator, SegmentFamily, shortcut_supported
from .grid import check_axis, grid_axis
from .results import Interpolation


def interpolation_axis(alphas=None, alpha_range=(-0.5, 1.5), n: int = 41) -> np.ndarray:
    """Ascending α values holding 0.0 and 1.0 exactly (see module doc)."""
    if alphas is None:
        if not isinstance(alpha_range, (tuple, list)) or len(alpha_range) != 2:
            raise TypeError(f"alpha_range must be a pair (lo, hi), got {alpha_range!r}")
        alphas = grid_axis(alpha_range[0], alpha_range[1], n, name="alpha_range")
    a = as_float_array(np.atleast_1d(np.asarray(alphas, dtype=np.float64)), "alphas", ndim=1)
    a = np.unique(a)
    tol = 1e-9 * max(a[-1] - a[0], 1.0)
    for end in (0.0, 1.0):
        a[np.abs(a - end) <= tol] = end
    return check_axis(np.unique(np.concatenate([a, [0.0, 1.0]])), "alphas")


def _split(data, name):
    if data is None:
        return None
    if hasattr(data, "X_train") and hasattr(data, "y_train"):
        return data.X_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(f"{name} must be a pair (X, y) or a Dataset, got {type(data).__name__}")


def interpolate(net, theta_a, theta_b, train, test=None, *, alphas=None, alpha_range=(-0.5, 1.5),
                n: int = 41, labels=("θ_a", "θ_b"), shortcut: bool | None = None,
                chunk: int | None = None, backend: str | None = None) -> Interpolation:
    """Loss and accuracy along the line through ``theta_a`` (α = 0) and ``theta_b`` (α = 1).

    Args:
        net: a :class:`pyquirk.nn.Net`.
        theta_a, theta_b: ``[P]`` end points, e.g. the initialisation and the solution, or two
            solutions (θ_b is cast to θ_a's dtype).
        train: ``(X, y)``, or a ``Dataset`` (its training split; its test split is used for
            ``test`` when ``test`` is None).
        test: ``(X_test, y_test)`` or None.
        alphas: explicit α values, or ``alpha_range``/``n`` for an even axis; 0 and 1 are always
            added (see module doc).
        labels: names of the two end points, for plots.
        shortcut: first-layer shortcut (default: where supported).

    Returns:
        :class:`Interpolation`.
    """
    t0 = time.perf_counter()
    ta = as_float_array(theta_a, "theta_a", ndim=1)
    tb = as_float_array(theta_b, "theta_b", dtype=ta.dtype, ndim=1)
    net._check_p(ta.shape, "theta_a")
    net._check_p(tb.shape, "theta_b")
    a = interpolation_axis(alphas, alpha_range, n)
    if test is None and hasattr(train, "X_test"):
        test = (train.X_test, train.y_test)
    shortcut = shortcut_supported(net) if shortcut is None else bool(shortcut)
    fam = SegmentFamily(ta, tb)
    out = {}
    for split, data in (("train", _split(train, "train")), ("test", _split(test, "test"))):
        if data is None:
            out[split] = (None, None)
            continue
        ev = Evaluator(net, fam, data[0], data[1], shortcut=shortcut, chunk=chunk, backend=backend,
                       names=(f"{split} X", f"{split} y"))
        out[split] = ev(a)
    n_test = 0 if test is None else len(_split(test, "test")[0])
    semantics = {"path": "(1 - alpha)*theta_a + alpha*theta_b in theta_a's dtype, fresh per point",
                 "endpoints": "alpha = 0 and alpha = 1 always evaluated (exactly theta_a, theta_b)",
                 "alpha_range": [float(a[0]), float(a[-1])], "n_alphas": int(len(a)),
                 "objective": f"mean {net.loss_name} over each split", "shortcut": shortcut,
                 "n_train": int(len(_split(train, "train")[0])), "n_test": int(n_test),
                 "dtype": ta.dtype.name, "backend": backends.resolve(backend), "net": repr(net)}
    return Interpolation(a, out["train"][0], out["train"][1], out["test"][0], out["test"][1],
                         labels=list(labels), semantics=semantics,
                         counts={"points": int(len(a)) * (1 + (test is not None)),
                                 "wall_time_s": time.perf_counter() - t0})


__all__ = ["interpolate", "interpolation_axis"]
