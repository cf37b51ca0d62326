"""Datasets from arrays and files: user arrays, ``.npz`` archives, IDX files, scikit-learn digits.

Nothing here reaches the network. Files are read with ``allow_pickle=False``; a split, when one
is needed, comes from ``pyquirk.seeds.stream("data", seed)`` via ``train_test_split``.
"""
from __future__ import annotations

import gzip
import json
import os
import struct

import numpy as np

from .._validate import check_fraction
from .dataset import Dataset, check_dtype, data_rng, train_test_split

# IDX type code -> big-endian dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _as_inputs(X, name: str, dtype) -> np.ndarray:
    """Float inputs: float arrays keep their dtype unless ``dtype`` is given; ints become float32
    (unscaled). Bool/object/str arrays are rejected."""
    if X is None or isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be an array, got {type(X).__name__}")
    arr = np.asarray(X)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    dt = check_dtype(dtype) if dtype is not None else (
        arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float32))
    return arr.astype(dt, copy=False)


def _infer_n_classes(ys, n_classes) -> int:
    y0 = np.asarray(ys[0])
    if y0.dtype.kind == "f":
        if n_classes not in (None, 0):
            raise TypeError(f"n_classes={n_classes} but the labels are floats; pass integer labels "
                            f"for classification")
        return 0
    if y0.dtype.kind not in "iu":
        raise TypeError(f"y_train must hold integer labels or float targets, got dtype {y0.dtype}")
    if n_classes is not None:
        return n_classes
    tops = [int(np.max(y)) for y in ys if np.size(y)]
    return max(max(tops, default=0) + 1, 2)


def from_arrays(X_train, y_train, X_test=None, y_test=None, test_fraction: float = 0.2, seed=0,
                *, n_classes: int | None = None, name: str = "arrays", dtype=None,
                stratify: bool | None = None, meta: dict | None = None) -> Dataset:
    """Wrap user arrays in a validated ``Dataset``.

    With ``X_test``/``y_test`` given the split is used as is; otherwise ``(X_train, y_train)``
    is split by ``train_test_split(..., test_fraction, stream("data", seed))``.

    Args:
        X_train: [N, *input_shape] numeric; float arrays keep their dtype unless ``dtype`` is
            given, integer arrays become float32 unscaled.
        y_train: [N] integer labels (classification) or [N] / [N, T] float targets (regression).
        X_test, y_test: optional test split, both or neither.
        test_fraction: in (0, 1); used only when no test split is given.
        seed: int >= 0 (or ``Seeds``) for the split.
        n_classes: default ``max(label) + 1`` over both splits (at least 2); 0 for float targets.
        name: dataset name; dtype: float32/float64 or None; stratify: see ``train_test_split``.
        meta: extra provenance merged into ``Dataset.meta``.

    Returns:
        Dataset.
    """
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither (then X_train is split)")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    Xtr = _as_inputs(X_train, "X_train", dtype)
    record = {"source": "arrays"}
    if X_test is None:
        frac = check_fraction(test_fraction, "test_fraction")
        y = np.asarray(y_train)
        if y.ndim < 1 or len(y) != len(Xtr) or Xtr.ndim < 2:
            raise ValueError(f"y_train has shape {y.shape} but X_train has shape {Xtr.shape}; "
                             f"need X_train [N, ...] and y_train [N]")
        k = _infer_n_classes([y], n_classes)
        Xtr, Xte, ytr, yte = train_test_split(Xtr, y, frac, data_rng(seed), stratify=stratify)
        record.update(test_fraction=frac, seed=seed.data if hasattr(seed, "data") else seed,
                      stream="data")
    else:
        Xte = _as_inputs(X_test, "X_test", Xtr.dtype)
        ytr, yte = np.asarray(y_train), np.asarray(y_test)
        k = _infer_n_classes([ytr, yte], n_classes)
    return Dataset(Xtr, ytr, Xte, yte, k, name, {**record, **(meta or {})})


def load_npz(path, *, test_fraction: float = 0.2, seed=0, n_classes: int | None = None,
             name: str | None = None, dtype=None) -> Dataset:
    """Load a dataset from an ``.npz`` archive (``allow_pickle=False``).

    Recognised keys (case-insensitive): ``x_train, y_train, x_test, y_test`` (a given split) or
    ``x, y`` (split here with ``test_fraction`` and ``seed``). Archives written by
    ``Dataset.save_npz`` also carry ``name``, ``n_classes`` and ``meta_json``, which are restored.

    Returns:
        Dataset; ``meta["source"]`` is the path.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k.lower(): z[k] for k in z.files}
    except ValueError as e:
        raise ValueError(f"could not read {path!r} with allow_pickle=False (object arrays are "
                         f"refused): {e}") from e
    found = sorted(arrays)
    meta = {"source": path}
    if "meta_json" in arrays:
        meta.update(json.loads(str(arrays["meta_json"])))
        meta["source"] = path
    if name is None:
        name = str(arrays["name"]) if "name" in arrays else os.path.splitext(os.path.basename(path))[0]
    if n_classes is None and "n_classes" in arrays:
        n_classes = int(arrays["n_classes"])
    split = ("x_train", "y_train", "x_test", "y_test")
    if all(k in arrays for k in split):
        Xtr, ytr, Xte, yte = (arrays[k] for k in split)
        return from_arrays(Xtr, ytr, Xte, yte, n_classes=n_classes, name=name, dtype=dtype, meta=meta)
    if "x" in arrays and "y" in arrays:
        return from_arrays(arrays["x"], arrays["y"], test_fraction=test_fraction, seed=seed,
                           n_classes=n_classes, name=name, dtype=dtype, meta=meta)
    raise ValueError(f"{path!r} has keys {found}; expected x_train, y_train, x_test, y_test "
                     f"(or x, y to split)")


def load_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST's format), plain or gzip-compressed (detected from its content).

    Header: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32. The big-endian data follow, and must fill the declared shape exactly.

    Returns:
        ndarray of the declared shape in native byte order (e.g. [60000, 28, 28] uint8).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path!r} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{path!r}: unknown IDX type code 0x{code:02X}; expected one of "
                         f"{', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}")
    if ndim == 0:
        raise ValueError(f"{path!r}: IDX header declares 0 dimensions")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path!r}: truncated IDX header ({ndim} dimensions declared)")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dt = IDX_DTYPES[code]
    need = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise ValueError(f"{path!r}: IDX shape {shape} of {dt.name} needs {need} data bytes, "
                         f"found {len(body)}")
    return np.frombuffer(body, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def _idx_inputs(images: np.ndarray, where: str, scale: bool, as_images: bool, dt) -> np.ndarray:
    if images.ndim < 2:
        raise ValueError(f"{where} must hold [N, ...] inputs, got shape {images.shape}")
    X = images.astype(np.float64)
    if scale and images.dtype == np.uint8:
        X /= 255.0
    if as_images:
        X = X[:, None] if images.ndim == 3 else X
    else:
        X = X.reshape(len(X), -1)
    return X.astype(dt)


def from_idx(images_path, labels_path, test_images_path=None, test_labels_path=None, *,
             test_fraction: float = 0.2, seed=0, scale: bool = True, as_images: bool = False,
             n_classes: int | None = None, name: str = "idx", dtype=np.float32) -> Dataset:
    """A Dataset from IDX image and label files, e.g. MNIST's ``train-images-idx3-ubyte.gz``.

    Args:
        images_path, labels_path: [N, H, W] (or [N, D]) images and [N] integer labels.
        test_images_path, test_labels_path: optional test split (both or neither); otherwise
            the training files are split with ``test_fraction`` and ``seed``.
        scale: divide uint8 pixels by 255 to [0, 1].
        as_images: [N, 1, H, W] (NCHW, for Conv2d) instead of the flat default [N, H*W].
        n_classes, name, dtype: as in ``from_arrays``.

    Returns:
        Dataset; ``meta`` records the file paths.
    """
    if (test_images_path is None) != (test_labels_path is None):
        raise ValueError("give both test_images_path and test_labels_path, or neither")
    dt = check_dtype(dtype)
    X = _idx_inputs(load_idx(images_path), "images_path", scale, as_images, dt)
    y = load_idx(labels_path)
    meta = {"source": "idx", "images": os.fspath(images_path), "labels": os.fspath(labels_path),
            "scaled": bool(scale)}
    if test_images_path is None:
        return from_arrays(X, y, test_fraction=test_fraction, seed=seed, n_classes=n_classes,
                           name=name, meta=meta)
    Xte = _idx_inputs(load_idx(test_images_path), "test_images_path", scale, as_images, dt)
    yte = load_idx(test_labels_path)
    meta.update(test_images=os.fspath(test_images_path), test_labels=os.fspath(test_labels_path))
    return from_arrays(X, y, Xte, yte, n_classes=n_classes, name=name, meta=meta)


def digits(test_fraction: float = 0.2, seed=0, dtype=np.float32, *, as_images: bool = False) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 10 classes; offline).

    Pixels (integers 0..16) are divided by 16 to [0, 1]. The split is stratified and drawn from
    ``stream("data", seed)``.

    Args:
        test_fraction: in (0, 1); default 0.2 gives 1437 train / 360 test.
        seed: int >= 0 (or ``Seeds``).
        dtype: float32 (default) or float64.
        as_images: [N, 1, 8, 8] instead of the flat default [N, 64].

    Returns:
        Dataset with y: [N] int64 in 0..9.
    """
    frac = check_fraction(test_fraction, "test_fraction")
    dt = check_dtype(dtype)
    if not isinstance(as_images, (bool, np.bool_)):
        raise TypeError(f"as_images must be a bool, got {type(as_images).__name__}")
    rng = data_rng(seed)
    import sklearn  # deferred: importing scikit-learn takes about a second
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(dt)
    X = X.reshape(-1, 1, 8, 8) if as_images else X
    y = bunch.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, frac, rng, stratify=True)
    meta = {"source": "sklearn.datasets.load_digits", "sklearn_version": sklearn.__version__,
            "seed": seed.data if hasattr(seed, "data") else seed, "stream": "data",
            "test_fraction": frac, "pixel_scale": "x / 16", "as_images": bool(as_images)}
    return Dataset(Xtr, ytr, Xte, yte, 10, "digits", meta)
