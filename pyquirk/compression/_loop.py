"""One mini-batch loop for the compression experiments whose trainable vector is not θ itself.

Weight sharing trains the codebook φ (θ = expand(φ)); distillation trains students on a loss the
engine does not have (soft-target cross-entropy). Both step a functional optimizer from
:mod:`pyquirk.train` on a vector φ ``[Q]`` or ``[E, Q]`` with a caller-supplied gradient, and draw
batches exactly as :func:`pyquirk.train.fit` does: one ``rng.permutation(N)`` per epoch from the
``order`` stream of member 0 (``seeds.rng("order", member=0)``), consecutive slices of ``batch_size``,
the last partial batch kept. A population here shares its batches (one order for all members).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from .._validate import check_positive_int
from ..seeds import as_seeds
from ..train.optim import make_optimizer


def minibatch_loop(phi0: np.ndarray, n_train: int, loss_and_grad: Callable, optimizer, *, steps: int,
                   batch_size: int = 100, seeds=0, record: Callable | None = None,
                   record_every: int | None = None, progress: bool = False, desc: str = "train") -> dict:
    """Train φ by mini-batch steps of ``optimizer``.

    Args:
        phi0: ``[Q]`` or ``[E, Q]`` initial trainable vector (copied).
        n_train: N, the number of training examples.
        loss_and_grad: ``fn(phi, idx) -> (loss, grad)`` for the batch ``idx: [b]`` (int64);
            grad has φ's shape, loss is a scalar or ``[E]``.
        optimizer: an optimizer object, name or config (see ``pyquirk.train.make_optimizer``).
        steps: optimizer steps.
        batch_size: examples per step.
        seeds: ``Seeds``/int/dict; its ``order`` stream (member 0) draws the permutations.
        record: optional ``fn(step, phi) -> dict`` called at step 0, every ``record_every`` steps
            and at the last step; its dicts are collected in ``"records"``.
        record_every: steps between ``record`` calls (default: only at 0 and the end).

    Returns:
        ``{"phi", "steps", "records", "batch_loss", "wall_time_s"}``.
    """
    t0 = time.perf_counter()
    opt = make_optimizer(optimizer)
    steps = check_positive_int(steps, "steps")
    B = check_positive_int(batch_size, "batch_size")
    nb = math.ceil(n_train / B)
    rng = as_seeds(seeds).rng("order", member=0)
    phi = np.array(phi0, copy=True)
    state = opt.init(phi)
    records, losses = [], []
    if record is not None:
        records.append(record(0, phi))
    perm = None
    for step in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        j = step % nb
        if j == 0:
            perm = rng.permutation(n_train)
        loss, grad = loss_and_grad(phi, perm[j * B:(j + 1) * B])
        phi, state = opt.step(phi, grad, state, None)
        losses.append(loss)
        done = step + 1
        if record is not None and (done == steps or (record_every and done % record_every == 0)):
            records.append(record(done, phi))
    return {"phi": phi, "steps": steps, "records": records, "batch_loss": np.asarray(losses),
            "wall_time_s": time.perf_counter() - t0, "optimizer": opt.config(), "batch_size": B}


def split_data(data, name: str = "data") -> tuple:
    """``(X_train, y_train, X_test, y_test)`` from a :class:`pyquirk.data.Dataset` or a 4-tuple."""
    if all(hasattr(data, a) for a in ("X_train", "y_train", "X_test", "y_test")):
        return data.X_train, data.y_train, data.X_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 4:
        return tuple(data)
    raise TypeError(f"{name} must be a pyquirk.data.Dataset or a tuple (X_train, y_train, X_test, y_test), "
                    f"got {type(data).__name__}")
