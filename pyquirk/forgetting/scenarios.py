"""Continual-learning scenarios built offline from a bundled :class:`pyquirk.data.Dataset`.

A scenario is a sequence of T tasks plus a *setting* that says which output units each task is
trained and scored on (van de Ven & Tolias 2019 name the three):

- ``"task"`` (task-incremental): one head of ``C_t`` outputs per task, the task ID is given at
  train and test time; a task is scored by the arg-max over its own head;
- ``"class"`` (class-incremental): one head over the classes of all tasks (``Σ_t C_t`` outputs,
  each task's classes get their own units, in task order); no task ID, arg-max over all outputs;
- ``"domain"`` (domain-incremental): one shared head of ``C`` outputs, every task reuses the
  same label space (needs equal ``C_t``); no task ID.

Builders (all randomness from the ``data`` stream, ``stream("data", seed)``):

- :func:`permuted`: one fixed permutation of the input features per task (Goodfellow et al. 2013;
  Kirkpatrick et al. 2017); task 0 keeps the identity by default;
- :func:`split`: disjoint groups of classes per task (Zenke et al. 2017), default consecutive pairs;
- :func:`shifted`: a circular shift of a 1-D signal per task. MNIST-1D is 1-D, so this is the
  analogue of rotated MNIST (a rotation of a 1-D signal is not defined; a shift is the natural
  symmetry of the signal, and ``shifts=[..]`` with a ``reverse`` flag covers a reversal);
- :func:`rotated`: a rotation of a 2-D image per task (e.g. ``digits``, 8×8), bilinear with zero
  fill, for data that is an image.

Every label handed to the engine is an *output index*: ``y_out = offset_t + y`` where ``y`` is the
label within the task (0 … C_t − 1) and ``offset_t`` the task's first unit (0 in the domain
setting). Task t is scored on the output units ``head_t = [lo_t, hi_t)``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .._validate import check_choice, check_positive_int
from ..data.dataset import Dataset, jsonable
from ..seeds import stream

SETTINGS = ("task", "class", "domain")


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """One task: its own train/test data and labels within the task.

    Attributes:
        X_train: ``[N, *in]`` inputs; y_train: ``[N]`` int64 labels in ``0 … n_classes − 1``.
        X_test: ``[M, *in]``; y_test: ``[M]``.
        classes: the dataset's class IDs behind local labels 0, 1, … (in that order).
        name: e.g. ``"perm-2"``, ``"classes-4,5"``, ``"shift-8"``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple
    name: str

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclasses.dataclass(frozen=True, eq=False)
class Scenario:
    """T tasks and the setting they are learned in (see the module docstring).

    Attributes:
        kind: ``"permuted"``, ``"split"``, ``"shifted"``, ``"rotated"`` (or a user's name).
        setting: ``"task"``, ``"class"`` or ``"domain"``.
        tasks: the T tasks, in training order.
        meta: JSON-able provenance: dataset, seed, permutations / class groups / shifts.
    """

    kind: str
    setting: str
    tasks: tuple
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_choice(self.setting, SETTINGS, "setting")
        if not self.tasks:
            raise ValueError("a scenario needs at least one task")
        shapes = {t.X_train.shape[1:] for t in self.tasks} | {t.X_test.shape[1:] for t in self.tasks}
        if len(shapes) != 1:
            raise ValueError(f"all tasks must share one input shape, got {sorted(shapes)}")
        if self.setting == "domain" and len({t.n_classes for t in self.tasks}) != 1:
            raise ValueError("setting='domain' needs the same number of classes in every task, got "
                             f"{[t.n_classes for t in self.tasks]}")
        object.__setattr__(self, "tasks", tuple(self.tasks))

    # -- facts --------------------------------------------------------------------------------
    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.tasks[0].X_train.shape[1:])

    @property
    def offsets(self) -> np.ndarray:
        """``[T]`` output index of each task's local label 0."""
        if self.setting == "domain":
            return np.zeros(self.n_tasks, np.int64)
        return np.concatenate([[0], np.cumsum([t.n_classes for t in self.tasks])[:-1]]).astype(np.int64)

    @property
    def n_outputs(self) -> int:
        """Output units of a network for this scenario."""
        if self.setting == "domain":
            return self.tasks[0].n_classes
        return int(sum(t.n_classes for t in self.tasks))

    @property
    def heads(self) -> np.ndarray:
        """``[T, 2]`` the output units ``[lo, hi)`` each task is trained and scored on."""
        off = self.offsets
        if self.setting == "task":
            return np.stack([off, off + [t.n_classes for t in self.tasks]], axis=1)
        return np.tile(np.array([[0, self.n_outputs]], np.int64), (self.n_tasks, 1))

    def task(self, t: int) -> Task:
        """Task ``t`` (0-based), with a clear error for an ID out of range."""
        return self.tasks[check_task(t, self.n_tasks)]

    def with_setting(self, setting: str) -> "Scenario":
        """The same tasks learned in another setting."""
        return dataclasses.replace(self, setting=check_choice(setting, SETTINGS, "setting"))

    def to_dict(self) -> dict:
        """JSON-able description (no arrays)."""
        return jsonable({
            "kind": self.kind, "setting": self.setting, "n_tasks": self.n_tasks,
            "input_shape": list(self.input_shape), "n_outputs": self.n_outputs,
            "heads": self.heads.tolist(),
            "tasks": [{"name": t.name, "classes": list(t.classes), "n_train": len(t.y_train),
                       "n_test": len(t.y_test)} for t in self.tasks],
            "meta": self.meta})

    def __repr__(self) -> str:
        return (f"Scenario({self.kind!r}, setting={self.setting!r}, n_tasks={self.n_tasks}, "
                f"n_outputs={self.n_outputs}, input_shape={self.input_shape})")


def check_task(t, n_tasks: int, name: str = "task") -> int:
    """``t`` as an int in ``[0, n_tasks)``, or a ValueError naming ``name``."""
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise TypeError(f"{name} must be an integer task ID, got {type(t).__name__}")
    if not 0 <= t < n_tasks:
        raise ValueError(f"{name} ID {t} is out of range: the scenario has {n_tasks} tasks "
                         f"(IDs 0 … {n_tasks - 1})")
    return int(t)


# ----------------------------------------------------------------------------------------------
# builders
# ----------------------------------------------------------------------------------------------
def _check_dataset(dataset) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a pyquirk.data.Dataset (e.g. mnist1d()), got {type(dataset).__name__}")
    if dataset.n_classes == 0:
        raise ValueError("continual-learning scenarios need a classification dataset (n_classes > 0)")
    return dataset


def _cap(n, have: int, name: str):
    if n is None:
        return have
    n = check_positive_int(n, name)
    if n > have:
        raise ValueError(f"{name}={n} but only {have} samples are available")
    return n


def _transformed(ds: Dataset, n_tasks, transforms, names, n_train, n_test, kind, setting, meta) -> Scenario:
    """Tasks that all hold the whole label set, task t seeing inputs ``transforms[t](X)``."""
    ntr, nte = _cap(n_train, ds.n_train, "n_train"), _cap(n_test, ds.n_test, "n_test")
    classes = tuple(range(ds.n_classes))
    tasks = [Task(f(ds.X_train[:ntr]), ds.y_train[:ntr].copy(), f(ds.X_test[:nte]), ds.y_test[:nte].copy(),
                  classes, nm) for f, nm in zip(transforms, names)]
    meta = {"dataset": ds.name, "n_train": ntr, "n_test": nte, **meta}
    return Scenario(kind, check_choice(setting, SETTINGS, "setting"), tuple(tasks), meta)


def permuted(dataset: Dataset, n_tasks: int = 5, *, seed: int = 0, setting: str = "task",
             identity_first: bool = True, n_train: int | None = None, n_test: int | None = None) -> Scenario:
    """Permuted tasks: task t sees every input with its features reordered by a fixed permutation πₜ.

    Args:
        dataset: a classification Dataset; inputs ``[N, *in]`` are permuted as flat vectors.
        n_tasks: T ≥ 1.
        seed: the ``data`` stream seed; πₜ is the t-th ``permutation`` drawn from
            ``stream("data", seed)``, so adding tasks never changes the earlier ones.
        setting: ``"task"`` (a head per task, the default), ``"domain"`` (one shared head, the
            classic EWC setting) or ``"class"`` (10·T outputs).
        identity_first: task 0 sees the original inputs (π₀ = identity; π₀ is still drawn).
        n_train, n_test: keep the first n samples of each split (both are pre-shuffled).
    """
    ds = _check_dataset(dataset)
    T = check_positive_int(n_tasks, "n_tasks")
    D = int(np.prod(ds.input_shape))
    rng = stream("data", seed)
    perms = [rng.permutation(D) for _ in range(T)]
    if identity_first:
        perms[0] = np.arange(D)

    def make(p):
        return lambda X: X.reshape(len(X), -1)[:, p].reshape(X.shape)
    return _transformed(ds, T, [make(p) for p in perms], [f"perm-{t}" for t in range(T)], n_train, n_test,
                        "permuted", setting, {"seed": seed, "identity_first": bool(identity_first),
                                              "permutations": [p.tolist() for p in perms]})


def shifted(dataset: Dataset, n_tasks: int = 5, *, shifts: Sequence[int] | None = None,
            reverse: Sequence[bool] | None = None, setting: str = "task", n_train: int | None = None,
            n_test: int | None = None) -> Scenario:
    """Shifted tasks for 1-D signals (MNIST-1D's analogue of rotated MNIST).

    Task t rolls every signal circularly by ``shifts[t]`` positions along its last axis
    (``np.roll``), optionally after reversing it (``reverse[t]``).

    Args:
        shifts: T integers; default ``round(t·L/T)`` for a signal of length L (task 0 unshifted).
        reverse: T booleans; default all False.
    """
    ds = _check_dataset(dataset)
    T = check_positive_int(n_tasks, "n_tasks")
    L = ds.input_shape[-1]
    shifts = [round(t * L / T) for t in range(T)] if shifts is None else [int(s) for s in shifts]
    reverse = [False] * T if reverse is None else [bool(r) for r in reverse]
    if len(shifts) != T or len(reverse) != T:
        raise ValueError(f"shifts and reverse need n_tasks={T} entries, got {len(shifts)} and {len(reverse)}")

    def make(s, r):
        return lambda X: np.roll(X[..., ::-1] if r else X, s, axis=-1).copy()
    names = [f"shift-{s}" + ("-rev" if r else "") for s, r in zip(shifts, reverse)]
    return _transformed(ds, T, [make(s, r) for s, r in zip(shifts, reverse)], names, n_train, n_test,
                        "shifted", setting, {"shifts": shifts, "reverse": reverse})


def rotated(dataset: Dataset, n_tasks: int = 5, *, angles: Sequence[float] | None = None,
            image_shape: tuple | None = None, setting: str = "task", n_train: int | None = None,
            n_test: int | None = None) -> Scenario:
    """Rotated tasks for image data: task t rotates every image by ``angles[t]`` degrees.

    Bilinear interpolation, zero fill outside the image, size kept (``scipy.ndimage.rotate(...,
    reshape=False, order=1)``).

    Args:
        angles: T angles in degrees; default ``t·180/T``.
        image_shape: the 2-D shape of one image when the inputs are flat (``(8, 8)`` for
            ``digits``); default: the inputs' own last two axes.
    """
    from scipy.ndimage import rotate

    ds = _check_dataset(dataset)
    T = check_positive_int(n_tasks, "n_tasks")
    shape = tuple(image_shape) if image_shape is not None else ds.input_shape[-2:]
    if len(shape) != 2 or int(np.prod(shape)) > int(np.prod(ds.input_shape)) or \
            int(np.prod(ds.input_shape)) % int(np.prod(shape)):
        raise ValueError(f"rotated needs 2-D images: input shape {ds.input_shape} with image_shape="
                         f"{image_shape}; for 1-D signals such as MNIST-1D use shifted()")
    angles = [t * 180.0 / T for t in range(T)] if angles is None else [float(a) for a in angles]
    if len(angles) != T:
        raise ValueError(f"angles needs n_tasks={T} entries, got {len(angles)}")

    def make(a):
        def f(X):
            imgs = X.reshape((len(X), -1) + shape)
            out = rotate(imgs, a, axes=(-2, -1), reshape=False, order=1, mode="constant", cval=0.0)
            return out.reshape(X.shape).astype(X.dtype)
        return f
    return _transformed(ds, T, [make(a) for a in angles], [f"rot-{a:g}" for a in angles], n_train, n_test,
                        "rotated", setting, {"angles": angles, "image_shape": list(shape)})


def split(dataset: Dataset, classes: Sequence[Sequence[int]] | None = None, *, n_tasks: int | None = None,
          setting: str = "task", n_train: int | None = None, n_test: int | None = None) -> Scenario:
    """Split tasks: task t holds only the classes ``classes[t]`` (disjoint groups).

    Args:
        classes: groups of dataset class IDs, e.g. ``[(0, 1), (2, 3), …]``; local label k of task t
            is class ``classes[t][k]``. Default: consecutive pairs (0, 1), (2, 3), …
        n_tasks: with the default pairs, keep only the first ``n_tasks`` pairs.
        setting: ``"task"`` (default), ``"class"`` (one head over all the groups' classes) or
            ``"domain"`` (one shared head of ``len(classes[t])`` units).
        n_train, n_test: keep at most this many samples of each task's splits (the first ones).

    Raises:
        ValueError: a class in two groups (the argument ``classes`` must hold disjoint groups), a
            group with fewer than 2 classes, or a class ID out of range.
    """
    ds = _check_dataset(dataset)
    if classes is None:
        groups = [(2 * t, 2 * t + 1) for t in range(ds.n_classes // 2)]
        if n_tasks is not None:
            n = check_positive_int(n_tasks, "n_tasks")
            if n > len(groups):
                raise ValueError(f"n_tasks={n} but {ds.name} has only {len(groups)} class pairs")
            groups = groups[:n]
    else:
        groups = [tuple(int(c) for c in np.atleast_1d(g)) for g in classes]
        if n_tasks is not None and n_tasks != len(groups):
            raise ValueError(f"n_tasks={n_tasks} disagrees with the {len(groups)} groups in classes")
    check_class_groups(groups, ds.n_classes)
    tasks = []
    for g in groups:
        sub = ds.subset(classes=list(g), relabel=True)
        ntr = len(sub.y_train) if n_train is None else min(len(sub.y_train), check_positive_int(n_train, "n_train"))
        nte = len(sub.y_test) if n_test is None else min(len(sub.y_test), check_positive_int(n_test, "n_test"))
        tasks.append(Task(sub.X_train[:ntr], sub.y_train[:ntr], sub.X_test[:nte], sub.y_test[:nte], g,
                          "classes-" + ",".join(map(str, g))))
    meta = {"dataset": ds.name, "classes": [list(g) for g in groups], "n_train": n_train, "n_test": n_test}
    return Scenario("split", check_choice(setting, SETTINGS, "setting"), tuple(tasks), meta)


def check_class_groups(groups, n_classes: int, name: str = "classes") -> None:
    """Raise a ValueError naming ``name`` unless the groups are disjoint, in range, ≥ 2 classes each."""
    if not groups:
        raise ValueError(f"{name} is empty: give at least one group of classes")
    seen: dict[int, int] = {}
    for t, g in enumerate(groups):
        if len(g) < 2:
            raise ValueError(f"{name}[{t}]={list(g)}: a task needs at least 2 classes")
        if len(set(g)) != len(g):
            raise ValueError(f"{name}[{t}]={list(g)} repeats a class")
        for c in g:
            if not 0 <= c < n_classes:
                raise ValueError(f"{name}[{t}] has class {c}, outside 0 … {n_classes - 1}")
            if c in seen:
                raise ValueError(f"{name}: class {c} is in task {seen[c]} and task {t}; the class "
                                 f"splits must be disjoint")
            seen[c] = t


__all__ = ["Task", "Scenario", "SETTINGS", "permuted", "split", "shifted", "rotated", "check_task",
           "check_class_groups"]
