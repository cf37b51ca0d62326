"""Synthetic datasets drawn from the ``"data"`` RNG stream.

Both generators draw everything from one ``pyquirk.seeds.stream("data", seed)`` Generator: first
the labels, then the inputs, then the stratified train/test split. Same seed, same arrays.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_fraction, check_positive_int
from .dataset import Dataset, check_dtype, data_rng, train_test_split


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """[n] int64 labels with class sizes differing by at most one (extras go to low labels),
    in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % k)


def _check_real(value, name: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v) or (positive and v <= 0) or v < 0:
        raise ValueError(f"{name} must be a finite {'positive' if positive else 'non-negative'} "
                         f"number, got {value}")
    return v


def _seed_record(seed):
    return seed.data if hasattr(seed, "data") else int(seed)


def gaussian_mixture(n_samples: int = 1000, n_classes: int = 2, dim: int = 2,
                     separation: float = 3.0, seed=0, test_fraction: float = 0.2, *,
                     dtype=np.float32) -> Dataset:
    """Isotropic Gaussian blobs, one per class, with unit noise standard deviation.

    The class means are standard-normal draws in ``dim`` dimensions, rescaled together so that the
    closest pair of means is exactly ``separation`` apart. ``separation`` is thus measured in
    noise standard deviations; the Bayes error between the two closest classes is
    ``Phi(-separation / 2)``. ``separation=0`` puts every mean at the origin (pure noise).

    Args:
        n_samples: total samples (train + test), >= 2 * n_classes.
        n_classes: >= 2; classes are balanced (sizes differ by at most one).
        dim: input dimension, >= 1.
        separation: distance between the two closest class means, >= 0.
        seed: int >= 0 (or ``Seeds``) for ``stream("data", seed)``.
        test_fraction: in (0, 1); the split is stratified.
        dtype: float32 (default) or float64.

    Returns:
        Dataset with X: [N, dim], y: [N] int64; ``meta["means"]``: [n_classes, dim] as lists.
    """
    n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
    n = check_positive_int(n_samples, "n_samples", minimum=2 * n_classes)
    dim = check_positive_int(dim, "dim")
    sep = _check_real(separation, "separation", positive=False)
    frac = check_fraction(test_fraction, "test_fraction")
    dt = check_dtype(dtype)
    rng = data_rng(seed)

    means = rng.standard_normal((n_classes, dim))
    gaps = np.linalg.norm(means[:, None, :] - means[None, :, :], axis=-1)
    closest = gaps[np.triu_indices(n_classes, 1)].min()
    means *= sep / closest  # a zero gap has probability 0 for a continuous draw
    y = _balanced_labels(n, n_classes, rng)
    X = means[y] + rng.standard_normal((n, dim))
    Xtr, Xte, ytr, yte = train_test_split(X.astype(dt), y, frac, rng)
    meta = {"generator": "gaussian_mixture", "seed": _seed_record(seed), "stream": "data",
            "n_samples": n, "n_classes": n_classes, "dim": dim, "separation": sep,
            "noise_std": 1.0, "test_fraction": frac, "means": means.tolist()}
    return Dataset(Xtr, ytr, Xte, yte, n_classes, "gaussian_mixture", meta)


def spheres(n_samples: int = 1000, dim: int = 500, r_inner: float = 1.0, r_outer: float = 1.3,
            seed=0, test_fraction: float = 0.2, *, dtype=np.float32) -> Dataset:
    """Concentric spheres of Gilmer et al. 2018, "Adversarial Spheres" (arXiv:1801.02774).

    Label 0: uniform on the sphere of radius ``r_inner``; label 1: uniform on the sphere of radius
    ``r_outer``. A point uniform on a sphere is a standard-normal vector divided by its norm
    (computed in float64) and scaled by the radius. Classes are balanced (with an odd
    ``n_samples`` class 0 gets the extra point). The paper's defaults are ``dim=500``, radii 1
    and 1.3.

    Args:
        n_samples: total samples (train + test), >= 4.
        dim: ambient dimension, >= 2.
        r_inner, r_outer: radii with ``0 < r_inner < r_outer``.
        seed: int >= 0 (or ``Seeds``) for ``stream("data", seed)``.
        test_fraction: in (0, 1); the split is stratified.
        dtype: float32 (default) or float64.

    Returns:
        Dataset with X: [N, dim], y: [N] int64 in {0, 1}; ``meta`` records radii and dim.
    """
    n = check_positive_int(n_samples, "n_samples", minimum=4)
    dim = check_positive_int(dim, "dim", minimum=2)
    r0 = _check_real(r_inner, "r_inner")
    r1 = _check_real(r_outer, "r_outer")
    if not r0 < r1:
        raise ValueError(f"r_inner must be smaller than r_outer, got r_inner={r0}, r_outer={r1}")
    frac = check_fraction(test_fraction, "test_fraction")
    dt = check_dtype(dtype)
    rng = data_rng(seed)

    y = _balanced_labels(n, 2, rng)
    g = rng.standard_normal((n, dim))
    X = g / np.linalg.norm(g, axis=1, keepdims=True) * np.where(y == 0, r0, r1)[:, None]
    Xtr, Xte, ytr, yte = train_test_split(X.astype(dt), y, frac, rng)
    meta = {"generator": "spheres", "reference": "Gilmer et al. 2018, Adversarial Spheres",
            "seed": _seed_record(seed), "stream": "data", "n_samples": n, "dim": dim,
            "r_inner": r0, "r_outer": r1, "radii": [r0, r1], "test_fraction": frac}
    return Dataset(Xtr, ytr, Xte, yte, 2, "spheres", meta)
