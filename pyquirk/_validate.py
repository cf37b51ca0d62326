"""Input validation shared by every public function.

Each checker names the argument it rejects, so a user sees *which* input is wrong.
Shape, dtype, finiteness, range, option names and emptiness are checked here, before any
numerical work starts.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(x, name: str, *, dtype=None, ndim: int | Sequence[int] | None = None,
                   finite: bool = True, allow_empty: bool = False) -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray, or raise a clear error.

    Integer and bool inputs are rejected (TypeError) rather than silently cast, because a
    parameter vector or an input batch of ints is almost always a caller's mistake.
    """
    if type(x) is np.ndarray and x.dtype.type in FLOAT_DTYPES and (dtype is None or x.dtype == dtype):
        arr = x  # already what is asked for: the common case, kept short (it runs before every pass)
    else:
        arr = _converted(x, name, dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if finite:
        require_finite(arr, name)
    return arr


def _converted(x, name: str, dtype) -> np.ndarray:
    """``x`` as a float ndarray (of ``dtype`` when given), or the TypeError that says why not."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a float array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} must be a float array, got dtype object")
    if dtype is None:
        if arr.dtype.type not in FLOAT_DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
        return arr
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def require_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` when the float array ``arr`` holds a NaN or an infinity."""
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")


def as_labels(y, name: str, n_classes: int | None = None, *, allow_empty: bool = False) -> np.ndarray:
    """Return integer class labels as int64, checking dtype and range ``[0, n_classes)``."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} has a negative label ({arr.min()})")
    if n_classes is not None and arr.size and arr.max() >= n_classes:
        raise ValueError(f"{name} has label {arr.max()} but there are only {n_classes} classes")
    return arr.astype(np.int64, copy=False)


def check_choice(value, choices: Iterable, name: str):
    """Raise ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(value, name: str, *, low: float = 0.0, high: float = 1.0,
                   high_open: bool = False) -> float:
    """Check ``low <= value <= high`` (``< high`` when ``high_open``) and finiteness."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    ok = np.isfinite(v) and low <= v and (v < high if high_open else v <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in [{low}, {high}{bracket}, got {value}")
    return v
