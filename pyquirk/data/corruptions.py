"""Zhang et al. (2017) corruptions of a data set, as composable seeded transforms (DESIGN §4).

Every corruption maps a :class:`~pyquirk.data.Dataset` to a new one and draws from the
``corruption`` RNG stream only (``pyquirk.seeds.stream("corruption", seed)``). The kinds, with
``X_train: [N, *in]``, ``D = prod(in)`` features and ``C`` classes:

==================  =====================================================================  =========
kind                definition                                                              splits
==================  =====================================================================  =========
``true``            identity (the control)                                                  —
``partial(p)``      each training label independently, with probability p, is replaced by   train y
                    a class drawn uniformly from all C (possibly its own). The expected
                    fraction of labels actually CHANGED is ``p·(C−1)/C``, not p.
``random_labels``   ``partial(1)``: every training label is a uniform random class          train y
``shuffled_pixels`` one permutation π of the D features, the SAME for train and test:       train+test X
                    ``x'[j] = x[π(j)]``
``random_pixels``   an independent permutation per example (train and test); each           train+test X
                    example keeps its multiset of values
``gaussian``        every input replaced by ``N(μ, σ²)`` draws with the training split's    train+test X
                    mean and variance (per feature by default; ``match="global"`` for one
                    scalar pair)
==================  =====================================================================  =========

Label corruptions touch the training labels only: test labels stay true, so test error measures
how well the fitted function generalises to the real task (Zhang's Fig. 1c). Input corruptions
apply to both splits, since a test example must come from the same input distribution.

Composition: ``Compose(a, b)`` (or ``a.then(b)``) applies ``a`` then ``b``; part i draws from the
i-th child of the caller's generator (``Generator.spawn``), so each part's draws are independent of
the others and do not depend on what comes after it. Each application appends a record to
``meta["corruption"]`` (kind, p, seed, and counts such as ``n_changed``).

>>> from pyquirk.data import mnist1d
>>> from pyquirk.data.corruptions import make_corruption
>>> noisy = make_corruption("partial", p=0.2)(mnist1d(), seed=3)
>>> both = make_corruption("random_labels").then(make_corruption("shuffled_pixels"))(mnist1d())
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validate import check_choice, check_fraction
from ..seeds import Seeds, stream
from .dataset import Dataset

KINDS = ("true", "partial", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
LABEL_KINDS = ("partial", "random_labels")
INPUT_KINDS = ("shuffled_pixels", "random_pixels", "gaussian")


# ----------------------------------------------------------------------------------------------
# seeds
# ----------------------------------------------------------------------------------------------
def corruption_rng(seed=0) -> np.random.Generator:
    """The ``corruption`` stream: from an int ``>= 0``, a ``Seeds`` (its ``corruption`` field), or
    a ``Generator`` passed through unchanged."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, Seeds):
        return seed.rng("corruption")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int, a Seeds or a numpy Generator, "
                        f"got {type(seed).__name__}")
    return stream("corruption", int(seed))


def _seed_repr(seed):
    if isinstance(seed, Seeds):
        return seed.corruption
    if isinstance(seed, np.random.Generator):
        return "generator"
    return int(seed)


def _check_dataset(ds) -> Dataset:
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a pyquirk.data.Dataset, got {type(ds).__name__}")
    return ds


def _record(ds: Dataset, rec: dict) -> dict:
    meta = dict(ds.meta)
    meta["corruption"] = list(meta.get("corruption", [])) + [rec]
    return meta


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Corruption:
    """Base class: ``corruption(ds, seed=0) -> Dataset``. Subclasses implement ``_apply(ds, rng)``."""

    kind = "base"

    def __call__(self, ds: Dataset, seed=0) -> Dataset:
        """Apply to ``ds`` with the ``corruption`` stream of ``seed`` (int, Seeds or Generator)."""
        ds = _check_dataset(ds)
        out, rec = self._apply(ds, corruption_rng(seed))
        rec = {"kind": self.kind, **self.params(), **rec, "seed": _seed_repr(seed)}
        return out.replace(meta=_record(ds, rec), name=ds.name)

    def _apply(self, ds: Dataset, rng: np.random.Generator) -> tuple[Dataset, dict]:
        raise NotImplementedError

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.params()}

    @property
    def label(self) -> str:
        """Short name for plots and tables, e.g. ``"partial 0.2"``."""
        return self.kind.replace("_", " ")

    def then(self, other: "Corruption") -> "Compose":
        """``self`` followed by ``other``."""
        return Compose(self, other)


@dataclasses.dataclass(frozen=True)
class TrueLabels(Corruption):
    """The identity: the uncorrupted data (Zhang's "true labels")."""

    kind = "true"

    def _apply(self, ds, rng):
        return ds, {}


@dataclasses.dataclass(frozen=True)
class PartialLabels(Corruption):
    """Each training label, with probability ``p``, becomes a uniform random class (of all C).

    Draws: ``u = rng.random(N)`` (replaced where ``u < p``), then ``rng.integers(C, size=N)``
    for the new classes (both drawn for all N, so the draws do not depend on p, and the labels
    replaced at a smaller p are a subset of those replaced at a larger p with the same seed).
    The expected fraction of changed labels is ``p·(C−1)/C``.
    """

    p: float = 0.0
    kind = "partial"

    def __post_init__(self):
        object.__setattr__(self, "p", check_fraction(self.p, "p"))

    @property
    def label(self) -> str:
        return f"partial {self.p:g}"

    def _apply(self, ds, rng):
        if ds.n_classes < 2:
            raise ValueError(f"{self.kind} needs a classification dataset, got n_classes={ds.n_classes}")
        y = ds.y_train
        u = rng.random(len(y))
        new = rng.integers(0, ds.n_classes, size=len(y))
        replaced = u < self.p
        y2 = np.where(replaced, new, y).astype(y.dtype)
        rec = {"n_replaced": int(replaced.sum()), "n_changed": int((y2 != y).sum()),
               "expected_changed_fraction": self.p * (ds.n_classes - 1) / ds.n_classes}
        return ds.replace(y_train=y2), rec


@dataclasses.dataclass(frozen=True)
class RandomLabels(PartialLabels):
    """Every training label replaced by a uniform random class: ``PartialLabels(p=1)``."""

    p: float = 1.0
    kind = "random_labels"

    def __post_init__(self):
        if self.p != 1.0:
            raise ValueError(f"random_labels has p=1 by definition, got p={self.p}; use partial")

    @property
    def label(self) -> str:
        return "random labels"

    def params(self) -> dict:
        return {}


def _flat(X):
    return X.reshape(len(X), -1)


@dataclasses.dataclass(frozen=True)
class ShuffledPixels(Corruption):
    """One permutation π of the ``D`` input features, shared by train and test: ``x'[j] = x[π(j)]``.

    The record holds π as ``meta["corruption"][-1]["permutation"]`` (a list of D ints).
    """

    kind = "shuffled_pixels"

    def _apply(self, ds, rng):
        D = math.prod(ds.input_shape)
        perm = rng.permutation(D)
        shuf = lambda X: _flat(X)[:, perm].reshape(X.shape)  # noqa: E731
        return (ds.replace(X_train=shuf(ds.X_train), X_test=shuf(ds.X_test)),
                {"permutation": perm.tolist()})


@dataclasses.dataclass(frozen=True)
class RandomPixels(Corruption):
    """An independent permutation of the features for every example, in both splits.

    Draws: ``rng.permuted`` over the training rows, then over the test rows.
    """

    kind = "random_pixels"

    def _apply(self, ds, rng):
        perm = lambda X: rng.permuted(_flat(X), axis=1).reshape(X.shape)  # noqa: E731
        Xtr = perm(ds.X_train)
        return ds.replace(X_train=Xtr, X_test=perm(ds.X_test)), {}


@dataclasses.dataclass(frozen=True)
class Gaussian(Corruption):
    """Inputs replaced by Gaussian noise with the training split's mean and variance.

    Args:
        match: ``"feature"`` (default): per-feature mean μ_j and variance σ_j² over the training
            examples (so the global mean and variance match too); ``"global"``: one scalar pair.
            Train and test draws use the same (training) statistics. Computed in float64, drawn
            as ``μ + σ·rng.standard_normal`` for train then test, cast to the data's dtype.
    """

    match: str = "feature"
    kind = "gaussian"

    def __post_init__(self):
        check_choice(self.match, ("feature", "global"), "gaussian match")

    def _apply(self, ds, rng):
        x = _flat(ds.X_train).astype(np.float64)
        axis = 0 if self.match == "feature" else None
        mu, sd = x.mean(axis=axis), x.std(axis=axis)

        def draw(X):
            return (mu + sd * rng.standard_normal(_flat(X).shape)).reshape(X.shape).astype(X.dtype)
        return ds.replace(X_train=draw(ds.X_train), X_test=draw(ds.X_test)), {
            "mean": float(np.mean(mu)), "var": float(np.mean(sd ** 2) + np.var(mu))}


@dataclasses.dataclass(frozen=True, init=False)
class Compose(Corruption):
    """Apply ``parts`` in order; part i draws from child i of the caller's generator."""

    parts: tuple = ()
    kind = "compose"

    def __init__(self, *parts):
        flat = []
        for p in parts:
            p = make_corruption(p)
            flat.extend(p.parts if isinstance(p, Compose) else [p])
        if not flat:
            raise ValueError("Compose needs at least one corruption")
        object.__setattr__(self, "parts", tuple(flat))

    @property
    def label(self) -> str:
        return " + ".join(p.label for p in self.parts)

    def to_dict(self) -> dict:
        return {"kind": "compose", "parts": [p.to_dict() for p in self.parts]}

    def __call__(self, ds, seed=0):
        ds = _check_dataset(ds)
        children = corruption_rng(seed).spawn(len(self.parts))
        for part, rng in zip(self.parts, children):
            ds = part(ds, rng)
        return ds


_CLASSES = {"true": TrueLabels, "partial": PartialLabels, "random_labels": RandomLabels,
            "shuffled_pixels": ShuffledPixels, "random_pixels": RandomPixels, "gaussian": Gaussian}


def make_corruption(kind, p: float | None = None, **options) -> Corruption:
    """A corruption from a name (``"partial"`` with ``p``, ``"partial:0.2"``), a dict from
    :meth:`Corruption.to_dict`, or an existing :class:`Corruption` (returned as is).

    Raises:
        ValueError: an unknown kind (naming the known ones), ``p`` outside [0, 1], ``p`` missing
            for ``partial`` or given for a kind that has none.
    """
    if isinstance(kind, Corruption):
        if p is not None or options:
            raise ValueError("p and options cannot be combined with a Corruption instance")
        return kind
    if isinstance(kind, dict):
        d = dict(kind)
        name = d.pop("kind", None)
        if name == "compose":
            return Compose(*d.get("parts", []))
        return make_corruption(name, **d)
    if not isinstance(kind, str):
        raise TypeError(f"corruption must be a name, a dict or a Corruption, got {type(kind).__name__}")
    if ":" in kind and p is None:
        kind, ptext = kind.split(":", 1)
        try:
            p = float(ptext)
        except ValueError:
            raise ValueError(f"corruption {kind!r}: cannot read p from {ptext!r}") from None
    check_choice(kind, KINDS, "corruption")
    if kind == "partial":
        if p is None:
            raise ValueError("corruption 'partial' needs p (the replacement probability)")
        return PartialLabels(p=p, **options)
    if p is not None:
        if kind == "random_labels":
            check_fraction(p, "p")
            if p == 1.0:
                return RandomLabels()
        raise ValueError(f"corruption {kind!r} takes no p (got p={p}); use 'partial' for p")
    return _CLASSES[kind](**options)


def corrupt(ds: Dataset, kind, p: float | None = None, seed=0, **options) -> Dataset:
    """``make_corruption(kind, p, **options)(ds, seed)``: the one-call form."""
    return make_corruption(kind, p, **options)(ds, seed)


__all__ = ["KINDS", "LABEL_KINDS", "INPUT_KINDS", "Corruption", "TrueLabels", "PartialLabels",
           "RandomLabels", "ShuffledPixels", "RandomPixels", "Gaussian", "Compose",
           "make_corruption", "corrupt", "corruption_rng"]
