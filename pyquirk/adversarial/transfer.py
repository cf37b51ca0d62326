"""Transfer (Szegedy et al. 2014): adversarial examples crafted on one model fool models trained apart.

:func:`train_disjoint` trains models on disjoint subsets of a training set (architectures may
differ; models sharing an architecture train together as one population, E nets in lockstep with
per-member data). :func:`transfer_matrix` crafts adversarial examples on every model and evaluates
them on every other: ``matrix[i, j]`` is the fraction of the examples model j classifies correctly
when clean that it misclassifies on model i's adversarial examples.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_positive_int
from ..seeds import Seeds, as_seeds, stream
from .attacks import attack
from .model import Model
from .results import TransferResult


def disjoint_subsets(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """k disjoint index sets of equal size ``n // k`` covering a random permutation of ``range(n)``.

    The permutation is drawn from ``stream("data", seed, 5)``.
    """
    k = check_positive_int(k, "k")
    if n < k:
        raise ValueError(f"cannot split {n} examples into {k} non-empty subsets")
    perm = stream("data", int(seed), 5).permutation(n)
    size = n // k
    return [np.sort(perm[i * size:(i + 1) * size]) for i in range(k)]


def train_disjoint(nets, X, y, *, bounds, parts=None, names=None, steps: int = 2000, batch_size: int = 100,
                   lr: float = 1e-2, seeds=0, backend: str | None = None) -> list[Model]:
    """Train one model per net, model i on subset ``parts[i]`` of disjoint equal subsets of ``(X, y)``.

    Args:
        nets: one :class:`~pyquirk.nn.Net` per model (repeat an object for identical
            architectures: models sharing a Net object train as one population in lockstep).
        X: ``[N, *in]``; y: ``[N]``. bounds: the models' declared input bounds.
        parts: ``[M]`` subset index of each model (default ``0 … M−1``: every model its own
            subset); the data is split into ``max(parts) + 1`` disjoint subsets. Models on the same
            subset share their training data (Szegedy's cross-model setting), models on different
            subsets share none (cross-training-set).
        names: model names (default ``"model<i>"``).
        steps, batch_size, lr: Adam training (the MNIST-1D authors' optimiser).
        seeds: :class:`~pyquirk.seeds.Seeds` or int: ``data`` (the split), ``init`` and ``order``.
        backend: engine backend.

    Returns:
        ``[Model]`` in the order of ``nets``; each ``Model.train_idx`` holds its subset.
    """
    from ..train import Adam, fit
    s = as_seeds(seeds)
    nets = list(nets)
    parts = list(range(len(nets))) if parts is None else [int(p) for p in parts]
    if len(parts) != len(nets) or min(parts) < 0:
        raise ValueError(f"parts must give a subset index >= 0 for each of the {len(nets)} nets")
    subsets = [disjoint_subsets(X.shape[0], max(parts) + 1, s.data)[p] for p in parts]
    names = list(names) if names is not None else [f"model{i}" for i in range(len(nets))]
    if len(names) != len(nets):
        raise ValueError(f"names has {len(names)} entries for {len(nets)} nets")
    models: list = [None] * len(nets)
    groups: dict = {}
    for i, net in enumerate(nets):
        groups.setdefault(id(net), []).append(i)
    for idx in groups.values():
        net = nets[idx[0]]
        theta0 = np.stack([net.init(s.rng("init", member=i)) for i in idx])          # [E, P]
        Xm = np.stack([X[subsets[i]] for i in idx])
        ym = np.stack([y[subsets[i]] for i in idx])
        res = fit(net, theta0, Xm, ym, Adam(lr), steps=steps, batch_size=batch_size,
                  seeds=[Seeds(order=s.order + i) for i in idx], backend=backend)
        for e, i in enumerate(idx):
            m = Model(net, res.theta[e], bounds, backend=backend, name=names[i])
            m.train_idx = subsets[i]
            models[i] = m
    return models


def transfer_matrix(models, X, y, eps: float, *, kind: str = "pgd", norm: str = "linf", seed=0,
                    **attack_kwargs) -> TransferResult:
    """Craft on every model, evaluate on every model.

    Args:
        models: ``[M]`` :class:`Model` (same input shape and bounds).
        X: ``[N, *in]`` held-out inputs; y: ``[N]``.
        eps: the radius; kind, norm, seed, attack_kwargs: passed to :func:`~.attacks.attack`.

    Returns:
        :class:`TransferResult`: ``matrix[i, j]`` = P(j wrong on x_adv_i | j right on x),
        ``error[i, j]`` = P(j wrong on x_adv_i).
    """
    t0 = time.perf_counter()
    models = list(models)
    M = len(models)
    if M < 2:
        raise ValueError("a transfer matrix needs at least two models")
    if len({m.bounds for m in models}) != 1:
        raise ValueError(f"all models must declare the same bounds, got {[m.bounds for m in models]}")
    snaps = [m.snapshot() for m in models]
    clean = np.stack([m.predict(X) == y for m in models])                             # [M, N]
    idx = [getattr(m, "train_idx", None) for m in models]
    disjoint = np.array([[i != j and a is not None and b is not None and not np.intersect1d(a, b).size
                          for j, b in enumerate(idx)] for i, a in enumerate(idx)])
    matrix, error = np.zeros((M, M)), np.zeros((M, M))
    sem = None
    for i, src in enumerate(models):
        r = attack(src, X, y, eps, kind=kind, norm=norm, seed=seed, **attack_kwargs)
        sem = r.semantics
        xa = r.x_adv[0]
        for j, dst in enumerate(models):
            wrong = dst.predict(xa) != y
            error[i, j] = wrong.mean()
            matrix[i, j] = wrong[clean[j]].mean() if clean[j].any() else np.nan
    counts = {m.name: m.since(sn) for m, sn in zip(models, snaps)}
    counts["wall_time_s"] = time.perf_counter() - t0
    return TransferResult(names=[m.name for m in models], matrix=matrix, error=error,
                          clean_accuracy=clean.mean(1), eps=float(eps), disjoint=disjoint,
                          semantics={"attack": f"{kind.upper()}-{norm}", "attack_semantics": sem,
                                     "matrix": "P(target wrong on source's x_adv | target right on x)",
                                     "n_examples": int(len(y))},
                          seeds={"attack": int(seed) if not isinstance(seed, Seeds) else seed.attack},
                          counts=counts)


__all__ = ["disjoint_subsets", "train_disjoint", "transfer_matrix"]
