"""MNIST-1D (Greydanus & Kobak, 2020; arXiv:2011.14439), generated offline and cached.

The PyPI ``mnist1d`` package can download the published pickle or generate the data with
``mnist1d.data.make_dataset(args)``. We only ever generate: no network, no pickle. The
generator seeds Python's ``random`` and NumPy's global RNG (``mnist1d.utils.set_seed``), so we
save both global states before calling it and restore them afterwards, even on error: the
caller's global RNG streams are untouched.

Generated arrays are cached as ``.npz`` (``allow_pickle=False``) in ``cache_dir``, else
``$PYQUIRK_CACHE``, else ``~/.cache/pyquirk``. The file name holds a SHA-256 over the full
generator arguments, the ``mnist1d`` package version and a cache format version; the file also
stores those arguments as JSON and is regenerated when they do not match.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .._validate import check_fraction, check_positive_int
from .dataset import Dataset, check_dtype

CACHE_FORMAT = 1
ENV_CACHE = "PYQUIRK_CACHE"

# The published MNIST-1D generator arguments (mnist1d 0.0.2, ``get_dataset_args``): 5000 samples,
# 80/20 split -> 4000 train / 1000 test, length-40 signals, seed 42. ``url`` is never used.
PUBLISHED_ARGS = {"num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60],
                  "scale_coeff": 0.4, "max_translation": 48, "corr_noise_scale": 0.25,
                  "iid_noise_scale": 2e-2, "shear_scale": 0.75, "shuffle_seq": False,
                  "final_seq_length": 40, "seed": 42}
_EXPLICIT = ("num_samples", "train_split", "seed")
OVERRIDABLE = tuple(k for k in PUBLISHED_ARGS if k not in _EXPLICIT)


def cache_root(cache_dir=None) -> Path:
    """``cache_dir`` if given, else ``$PYQUIRK_CACHE``, else ``~/.cache/pyquirk``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pyquirk"


@contextlib.contextmanager
def isolated_global_rng():
    """Save ``random`` and ``np.random`` global states; restore them on exit (also on error)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _check_overrides(overrides: dict) -> dict:
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"unknown mnist1d argument(s) {unknown}; expected some of "
                         f"{', '.join(OVERRIDABLE)}")
    out = {}
    for k, v in overrides.items():
        if k in ("template_len", "final_seq_length", "max_translation"):
            out[k] = check_positive_int(v, k)
        elif k in ("scale_coeff", "corr_noise_scale", "iid_noise_scale", "shear_scale"):
            out[k] = check_fraction(v, k, high=np.inf, high_open=True)
        elif k == "shuffle_seq":
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"shuffle_seq must be a bool, got {type(v).__name__}")
            out[k] = bool(v)
        else:  # padding
            if (not isinstance(v, (list, tuple)) or len(v) != 2
                    or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in v)
                    or not 0 <= v[0] <= v[1]):
                raise ValueError(f"padding must be a pair of ints [low, high] with 0 <= low <= "
                                 f"high, got {v!r}")
            out[k] = [int(v[0]), int(v[1])]
    return out


def _generator_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mnist1d")
    except PackageNotFoundError:
        return "unknown"


def cache_key(args: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``args`` + mnist1d version + cache format."""
    blob = json.dumps({"args": args, "mnist1d": _generator_version(), "format": CACHE_FORMAT},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _generate(args: dict) -> dict:
    """Call ``mnist1d.data.make_dataset`` with global RNG isolation; float64 x, int64 y."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ImportError("pyquirk.data.mnist1d needs the 'mnist1d' package: pip install mnist1d") from e
    view = get_dataset_args(as_dict=False)
    for k, v in args.items():
        setattr(view, k, v)
    with isolated_global_rng():
        d = make_dataset(view)
    return {"x": np.asarray(d["x"], np.float64), "y": np.asarray(d["y"], np.int64),
            "x_test": np.asarray(d["x_test"], np.float64),
            "y_test": np.asarray(d["y_test"], np.int64), "t": np.asarray(d["t"], np.float64)}


def _read_cache(path: Path, args_json: str) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["args_json"]) != args_json:
                return None
            return {k: z[k] for k in ("x", "y", "x_test", "y_test", "t")}
    except FileNotFoundError:
        return None
    except Exception as e:  # corrupt or foreign file: regenerate and overwrite
        warnings.warn(f"ignoring unreadable MNIST-1D cache file {path}: {e}", stacklevel=3)
        return None


def _write_cache(path: Path, arrays: dict, args_json: str) -> bool:
    """Atomic write (temp file + rename); returns False, with a warning, if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mnist1d-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, args_json=np.str_(args_json), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True
    except OSError as e:
        warnings.warn(f"could not write MNIST-1D cache to {path}: {e}", stacklevel=3)
        return False


def mnist1d(num_samples: int = 5000, train_split: float = 0.8, seed: int = 42, cache_dir=None, *,
            dtype=np.float32, cache: bool = True, **overrides) -> Dataset:
    """MNIST-1D: ten 1-D digit templates, randomly padded, scaled, translated, noised, sheared.

    The defaults are the published dataset's arguments: 4000 train / 1000 test signals of
    length 40, 10 balanced classes, seed 42. The generator already standardizes the whole
    dataset (train and test together) to mean 0, std 1 with one global scalar.

    ``seed`` seeds the mnist1d generator itself (which uses the legacy global NumPy RNG; we
    isolate it), not a pyquirk stream: this is what keeps the published arrays reproducible.

    Args:
        num_samples: total samples; ``10 * (num_samples // 10)`` are generated (>= 10).
        train_split: fraction in the training split (first ``int(N * train_split)`` samples).
        seed: int >= 0 for the generator.
        cache_dir: cache folder (default ``$PYQUIRK_CACHE`` or ``~/.cache/pyquirk``).
        dtype: float32 (default) or float64 for X (the cache holds the generator's float64).
        cache: read and write the on-disk cache.
        **overrides: other generator arguments: ``template_len``, ``padding``, ``scale_coeff``,
            ``max_translation``, ``corr_noise_scale``, ``iid_noise_scale``, ``shear_scale``,
            ``shuffle_seq``, ``final_seq_length``.

    Returns:
        Dataset with X: [N_train, final_seq_length], y: [N_train] int64 in 0..9; ``meta`` holds
        the generator arguments, cache key and file, and ``t``, the generator's time axis.
    """
    num_samples = check_positive_int(num_samples, "num_samples", minimum=10)
    train_split = check_fraction(train_split, "train_split")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32) (a legacy NumPy seed), got {seed}")
    dt = check_dtype(dtype)
    if not isinstance(cache, (bool, np.bool_)):
        raise TypeError(f"cache must be a bool, got {type(cache).__name__}")
    n_total = 10 * (num_samples // 10)
    n_train = int(n_total * train_split)
    if not 0 < n_train < n_total:
        raise ValueError(f"train_split={train_split} with {n_total} samples gives {n_train} train "
                         f"and {n_total - n_train} test samples; both must be >= 1")
    args = {k: v for k, v in PUBLISHED_ARGS.items() if k not in _EXPLICIT}
    args.update(_check_overrides(overrides))
    args.update(num_samples=num_samples, train_split=train_split, seed=int(seed))
    args_json = json.dumps(args, sort_keys=True)
    key = cache_key(args)
    path = cache_root(cache_dir) / f"mnist1d-{key[:20]}.npz"

    arrays = _read_cache(path, args_json) if cache else None
    hit = arrays is not None
    if not hit:
        arrays = _generate(args)
        if cache and not _write_cache(path, arrays, args_json):
            path = None
    meta = {"generator": "mnist1d.data.make_dataset", "mnist1d_version": _generator_version(),
            "args": args, "seed": int(seed), "cache_key": key,
            "cache_file": str(path) if cache and path is not None else None, "cache_hit": hit,
            "standardized": "global, by the generator (train and test together)",
            "t": arrays["t"].tolist()}
    return Dataset(arrays["x"].astype(dt), arrays["y"], arrays["x_test"].astype(dt),
                   arrays["y_test"], 10, "mnist1d", meta)
