"""Offline datasets, deterministic per seed.

Every dataset is a validated ``Dataset`` (train/test split, labels, provenance ``meta``). All
randomness comes from ``pyquirk.seeds.stream("data", seed)``; the one exception is MNIST-1D,
whose own generator is seeded as published, with NumPy's and Python's global RNG states saved
and restored around it. Nothing here touches the network.

- ``mnist1d``: MNIST-1D generated offline by the ``mnist1d`` package, cached as ``.npz``;
- ``digits``: scikit-learn's bundled 8x8 digits;
- ``gaussian_mixture``, ``spheres``: synthetic (``spheres`` is Gilmer et al. 2018);
- ``from_arrays``, ``load_npz``, ``load_idx``, ``from_idx``: user data;
- ``train_test_split``, ``standardize``: the shared operations;
- ``corrupt``: Zhang et al. (2017)'s label and input corruptions, on the ``corruption`` stream.
"""
from __future__ import annotations

from ._mnist1d import mnist1d
from .corruptions import Compose, Corruption, corrupt, make_corruption
from .dataset import Dataset, Standardized, standardize, train_test_split
from .sources import digits, from_arrays, from_idx, load_idx, load_npz
from .synthetic import gaussian_mixture, spheres

__all__ = ["Dataset", "Standardized", "mnist1d", "digits", "gaussian_mixture", "spheres",
           "from_arrays", "load_npz", "load_idx", "from_idx", "train_test_split", "standardize",
           "Compose", "Corruption", "corrupt", "make_corruption"]
