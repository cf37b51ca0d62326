"""The ``Dataset`` container and the two operations every dataset shares: split and standardize.

A ``Dataset`` is a fixed train/test split of float inputs ``X`` with either integer class labels
(``n_classes > 0``) or float regression targets (``n_classes == 0``). It validates itself on
construction, so every function downstream may assume: matching lengths, equal trailing shapes and
dtypes in both splits, finite values, labels in ``[0, n_classes)``, and no empty split.

All randomness comes from a ``numpy.random.Generator`` passed in by the caller, normally
``pyquirk.seeds.stream("data", seed)``; nothing here touches NumPy's global RNG.
"""
from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple, Sequence

import numpy as np

from .._validate import as_float_array, as_labels, check_fraction, check_positive_int
from ..seeds import Seeds, stream

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------------------
# small shared checkers
# ----------------------------------------------------------------------------------------------
def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise naming ``name``."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from e
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32 or float64, got {dt}")
    return dt


def data_rng(seed, name: str = "seed") -> np.random.Generator:
    """The ``"data"`` stream for ``seed`` (an int >= 0, or a ``Seeds`` whose ``data`` is used)."""
    if isinstance(seed, Seeds):
        seed = seed.data
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative integer or a Seeds, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {seed}")
    return stream("data", int(seed))


def check_rng(rng, name: str = "rng") -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (e.g. pyquirk.seeds.stream('data', "
                        f"seed)), got {type(rng).__name__}")
    return rng


def jsonable(obj):
    """Convert NumPy scalars/arrays and tuples inside ``obj`` to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.dtype):
        return str(obj)
    return obj


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A validated train/test split.

    Attributes:
        X_train: [N, *input_shape] float32 or float64.
        y_train: [N] int64 class labels, or [N] / [N, T] float regression targets.
        X_test: [M, *input_shape], same dtype as ``X_train``.
        y_test: [M] (or [M, T]), same kind as ``y_train``.
        n_classes: number of classes; 0 means regression (float targets).
        name: short dataset name, e.g. ``"mnist1d"``.
        meta: JSON-able provenance (generator, its arguments, seed, preprocessing applied).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str = "dataset"
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, (int, np.integer)):
            raise TypeError(f"n_classes must be an integer, got {type(self.n_classes).__name__}")
        if self.n_classes < 0 or self.n_classes == 1:
            raise ValueError(f"n_classes must be 0 (regression) or >= 2, got {self.n_classes}")
        set_("n_classes", int(self.n_classes))
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.meta, dict):
            raise TypeError(f"meta must be a dict, got {type(self.meta).__name__}")
        Xtr = as_float_array(self.X_train, "X_train")
        Xte = as_float_array(self.X_test, "X_test")
        if Xtr.ndim < 2:
            raise ValueError(f"X_train must have shape [N, *input_shape], got {Xtr.shape}")
        if Xte.shape[1:] != Xtr.shape[1:] or Xte.ndim != Xtr.ndim:
            raise ValueError(f"X_test has input shape {Xte.shape[1:]} but X_train has {Xtr.shape[1:]}")
        if Xte.dtype != Xtr.dtype:
            raise TypeError(f"X_test dtype {Xte.dtype} differs from X_train dtype {Xtr.dtype}")
        ys = []
        for yname, y, X in (("y_train", self.y_train, Xtr), ("y_test", self.y_test, Xte)):
            if self.n_classes > 0:
                y = as_labels(y, yname, self.n_classes)
                if y.ndim != 1:
                    raise ValueError(f"{yname} must have shape [N], got {np.shape(y)}")
            else:
                y = as_float_array(y, yname, ndim=(1, 2))
            if len(y) != len(X):
                xname = "X" + yname[1:]
                raise ValueError(f"{yname} has {len(y)} entries but {xname} has {len(X)} samples")
            ys.append(y)
        if self.n_classes == 0 and ys[0].shape[1:] != ys[1].shape[1:]:
            raise ValueError(f"y_test target shape {ys[1].shape[1:]} differs from y_train's "
                             f"{ys[0].shape[1:]}")
        for k, v in (("X_train", Xtr), ("X_test", Xte), ("y_train", ys[0]), ("y_test", ys[1])):
            set_(k, v)

    # -- shape facts ---------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple:
        """Shape of one input, ``X_train.shape[1:]``."""
        return tuple(self.X_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.X_train)

    @property
    def n_test(self) -> int:
        return len(self.X_test)

    @property
    def dtype(self) -> np.dtype:
        return self.X_train.dtype

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "classification" if self.n_classes > 0 else "regression"

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, n_classes={self.n_classes}, "
                f"n_train={self.n_train}, n_test={self.n_test}, input_shape={self.input_shape}, "
                f"dtype={self.dtype})")

    def to_dict(self) -> dict:
        """JSON-able description (no arrays): sizes, shapes, dtype and provenance ``meta``."""
        return jsonable({"name": self.name, "task": self.task, "n_classes": self.n_classes,
                         "n_train": self.n_train, "n_test": self.n_test,
                         "input_shape": list(self.input_shape), "dtype": str(self.dtype),
                         "meta": self.meta})

    # -- derived datasets ----------------------------------------------------------------------
    def replace(self, **changes) -> "Dataset":
        """A new (validated) Dataset with some fields replaced."""
        return dataclasses.replace(self, **changes)

    def astype(self, dtype) -> "Dataset":
        """The same data with inputs (and regression targets) cast to float32/float64."""
        dt = check_dtype(dtype)
        cast = lambda a: a.astype(dt) if a.dtype.kind == "f" else a  # noqa: E731
        return self.replace(X_train=cast(self.X_train), X_test=cast(self.X_test),
                            y_train=cast(self.y_train), y_test=cast(self.y_test))

    def standardize(self, axis=None, eps: float = 1e-12) -> "Dataset":
        """Standardize both splits with statistics of the **training** split only.

        Args:
            axis: ``None``/``"global"`` for one scalar mean and std (MNIST-1D's convention, the
                default); ``"feature"`` or ``0`` for per-feature statistics over samples; or a
                tuple of axes of ``X`` that includes 0 (e.g. ``(0, 2, 3)`` per channel).
            eps: a std below ``eps`` is replaced by 1 (constant features are only centred).

        Returns:
            A new Dataset; ``meta["standardize"]`` records the axis, mean and std used.
        """
        s = standardize(self.X_train, self.X_test, axis=axis, eps=eps)
        record = {"axis": "global" if s.axis is None else list(s.axis),
                  "mean": s.mean.tolist() if s.mean.ndim else float(s.mean),
                  "std": s.std.tolist() if s.std.ndim else float(s.std)}
        meta = dict(self.meta)
        meta["standardize"] = meta.get("standardize", []) + [record]
        return self.replace(X_train=s.X_train, X_test=s.X_test, meta=meta)

    def subset(self, n_train: int | None = None, n_test: int | None = None,
               classes: Sequence[int] | None = None, *, relabel: bool = False,
               seed=None) -> "Dataset":
        """Keep some classes and/or fewer samples.

        Args:
            n_train, n_test: how many samples to keep per split (after the class filter);
                ``None`` keeps all. Without ``seed`` the first ones are kept (the splits are
                already shuffled); with ``seed`` a random subset from ``stream("data", seed)``.
            classes: class labels to keep (classification only), e.g. ``[0, 1]`` for a split task.
            relabel: map ``classes`` to ``0..len(classes)-1`` in the order given and set
                ``n_classes = len(classes)``; otherwise labels and ``n_classes`` are unchanged.
            seed: optional int seed (or ``Seeds``) for a random rather than leading subset.

        Returns:
            A new Dataset with ``meta["subset"]`` recording the request.
        """
        Xtr, ytr, Xte, yte, n_cls = self.X_train, self.y_train, self.X_test, self.y_test, self.n_classes
        if classes is not None:
            if self.n_classes == 0:
                raise ValueError("classes= needs a classification dataset (n_classes > 0)")
            cls = np.asarray(classes)
            if cls.ndim != 1 or cls.size == 0:
                raise ValueError(f"classes must be a non-empty 1-D list of labels, got {classes!r}")
            cls = as_labels(cls, "classes", self.n_classes)
            if len(np.unique(cls)) != len(cls):
                raise ValueError(f"classes has duplicates: {cls.tolist()}")
            mtr, mte = np.isin(ytr, cls), np.isin(yte, cls)
            Xtr, ytr, Xte, yte = Xtr[mtr], ytr[mtr], Xte[mte], yte[mte]
            if relabel:
                if len(cls) < 2:
                    raise ValueError("relabel=True needs at least 2 classes")
                lut = np.full(self.n_classes, -1, np.int64)
                lut[cls] = np.arange(len(cls))
                ytr, yte, n_cls = lut[ytr], lut[yte], len(cls)
        elif relabel:
            raise ValueError("relabel=True needs classes=")
        rng = None if seed is None else data_rng(seed)
        picked = []
        for nm, n, have in (("n_train", n_train, len(ytr)), ("n_test", n_test, len(yte))):
            if n is None:
                picked.append(slice(None))
                continue
            n = check_positive_int(n, nm)
            if n > have:
                raise ValueError(f"{nm}={n} but only {have} samples are available")
            picked.append(np.sort(rng.permutation(have)[:n]) if rng is not None else slice(0, n))
        meta = dict(self.meta)
        meta["subset"] = meta.get("subset", []) + [jsonable(
            {"n_train": n_train, "n_test": n_test, "relabel": relabel, "seed": seed,
             "classes": None if classes is None else list(np.asarray(classes).tolist())})]
        return self.replace(X_train=Xtr[picked[0]], y_train=ytr[picked[0]], X_test=Xte[picked[1]],
                            y_test=yte[picked[1]], n_classes=n_cls, meta=meta)

    def save_npz(self, path) -> None:
        """Write ``x_train, y_train, x_test, y_test`` (+ name, n_classes, meta) readable by
        ``load_npz`` with ``allow_pickle=False``."""
        np.savez(path, x_train=self.X_train, y_train=self.y_train, x_test=self.X_test,
                 y_test=self.y_test, n_classes=np.int64(self.n_classes), name=np.str_(self.name),
                 meta_json=np.str_(json.dumps(jsonable(self.meta))))


# ----------------------------------------------------------------------------------------------
# split and standardize
# ----------------------------------------------------------------------------------------------
def _stratified_test_counts(y: np.ndarray, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class test counts summing to exactly ``n_test`` (largest remainder, ties by label)."""
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n_test / len(y))
    take = np.floor(quota).astype(np.int64)
    rest = n_test - take.sum()
    order = np.lexsort((classes, -(quota - take)))  # largest remainder first, then smallest label
    take[order[:rest]] += 1
    return classes, take


def train_test_split(X, y, test_fraction: float, rng: np.random.Generator, *,
                     stratify: bool | None = None):
    """Shuffle and split ``(X, y)`` into train and test parts.

    ``n_test = ceil(test_fraction * N)`` (as scikit-learn does); both parts must be non-empty.
    With ``stratify`` (the default for integer labels) every class contributes its share to the
    test part, rounded by largest remainder so the total is exactly ``n_test``.

    Args:
        X: [N, ...] array.
        y: [N] integer labels, or [N] / [N, T] float targets (then ``stratify`` must be off).
        test_fraction: in (0, 1).
        rng: a ``numpy.random.Generator``, normally ``pyquirk.seeds.stream("data", seed)``.
        stratify: split per class; ``None`` means "yes for integer labels".

    Returns:
        ``(X_train [N-n_test, ...], X_test [n_test, ...], y_train, y_test)``, scikit-learn's order.
    """
    X, y = np.asarray(X), np.asarray(y)
    check_rng(rng)
    frac = check_fraction(test_fraction, "test_fraction")
    if X.ndim < 1 or len(X) == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    if y.ndim < 1 or len(y) != len(X):
        raise ValueError(f"y has shape {y.shape} but X has {len(X)} samples")
    n = len(X)
    n_test = int(np.ceil(frac * n - 1e-9))
    if not 0 < n_test < n:
        raise ValueError(f"test_fraction={test_fraction} with {n} samples leaves {n_test} test and "
                         f"{n - n_test} train samples; both must be >= 1")
    labels = y.dtype.kind in "iub"
    if stratify is None:
        stratify = labels and y.ndim == 1
    if stratify and not (labels and y.ndim == 1):
        raise ValueError(f"stratify=True needs 1-D integer labels, got y of dtype {y.dtype} and "
                         f"shape {y.shape}")
    if stratify:
        classes, take = _stratified_test_counts(y, n_test)
        test_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                                   for c, k in zip(classes, take)])
        is_test = np.zeros(n, bool)
        is_test[test_idx] = True
        test_idx = rng.permutation(np.flatnonzero(is_test))
        train_idx = rng.permutation(np.flatnonzero(~is_test))
    else:
        perm = rng.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


class Standardized(NamedTuple):
    """Output of ``standardize``: the two standardized splits and the train statistics."""

    X_train: np.ndarray
    X_test: np.ndarray
    mean: np.ndarray  # scalar (0-d) or broadcastable to X_train's shape, float64
    std: np.ndarray
    axis: tuple | None


def _norm_axis(axis, ndim: int):
    if axis is None or (isinstance(axis, str) and axis == "global"):
        return None
    if isinstance(axis, str):
        if axis == "feature":
            return (0,)
        raise ValueError(f"unknown axis {axis!r}; expected None, 'global', 'feature' or a tuple of "
                         f"ints that includes 0")
    ax = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    try:
        raw = [int(a) for a in ax]
    except (TypeError, ValueError) as e:
        raise TypeError(f"axis must be None, a str or a tuple of ints, got {axis!r}") from e
    if not raw or any(not -ndim <= a < ndim for a in raw) or 0 not in {a % ndim for a in raw}:
        raise ValueError(f"axis={axis!r} must be valid for {ndim}-D inputs and include 0 (the "
                         f"sample axis), so the statistics come from the training set")
    ax = tuple(sorted({a % ndim for a in raw}))
    return ax


def standardize(X_train, X_test, axis=None, eps: float = 1e-12) -> Standardized:
    """``(X - mean) / std`` with mean and std from ``X_train`` only, applied to both splits.

    Args:
        X_train: [N, *input_shape] float array.
        X_test: [M, *input_shape] float array of the same dtype.
        axis: ``None``/``"global"``: one scalar mean and std over all of ``X_train`` (default);
            ``"feature"``/``0``: per feature; or a tuple of axes including 0.
        eps: stds below this are replaced by 1, so constant features are centred, not blown up.

    Returns:
        ``Standardized(X_train, X_test, mean, std, axis)``; arrays keep the input dtype, the
        statistics are float64 (computed in float64).
    """
    Xtr = as_float_array(X_train, "X_train")
    Xte = as_float_array(X_test, "X_test")
    if Xtr.ndim < 1:
        raise ValueError(f"X_train must have shape [N, ...], got a scalar")
    if Xtr.shape[1:] != Xte.shape[1:] or Xte.ndim != Xtr.ndim:
        raise ValueError(f"X_test has input shape {Xte.shape[1:]} but X_train has {Xtr.shape[1:]}")
    ax = _norm_axis(axis, Xtr.ndim)
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    x64 = Xtr.astype(np.float64)
    mean = x64.mean(axis=ax, keepdims=ax is not None)
    std = x64.std(axis=ax, keepdims=ax is not None)
    std = np.where(std < eps, 1.0, std)
    if ax is not None:  # drop the sample axis so ``mean`` broadcasts against one input
        mean, std = mean[0], std[0]
    out = lambda X: ((X.astype(np.float64) - mean) / std).astype(X.dtype)  # noqa: E731
    return Standardized(out(Xtr), out(Xte), np.asarray(mean), np.asarray(std), ax)
