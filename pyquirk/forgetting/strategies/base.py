"""The strategy interface and the two reference strategies: naive fine-tuning and joint training.

A strategy is a small object with hyper-parameters (``config()``) and hooks that
:func:`pyquirk.forgetting.loop.learn` calls; all hooks work on the whole population at once
(θ ``[E, P]``, pool rows ``[E, b]``). The defaults below *are* naive fine-tuning:

- ``setup(run, theta0)``: once, before anything (allocate state);
- ``begin_task(run, theta, theta0, t) -> theta``: where a task starts from (default: go on);
- ``train_indices(run, t) -> [N_t]``: pool rows trained on in stage t (default: task t's);
- ``replay_indices(run, t) -> [E, r] | None``: rows appended to every batch (replay);
- ``step_grad(run, theta, rows, t, j, nb) -> (loss [E], grad [E, P], mask [E, P] | None)``:
  batch j of nb; default the head cross-entropy plus ``penalty`` (EWC);
- ``after_step(run, t)``: after the optimizer step (HAT updates its embeddings here);
- ``end_task(run, theta, t)``: after task t (Fisher, memory, masks);
- ``eval_theta(run, theta, j) -> theta``: the parameters task j is evaluated with (HAT's gates);
- ``evaluated(run, t) -> bool``: whether row t of R is measured;
- ``summary(run) -> dict``: what the result keeps (Fisher norms, memory contents, mask usage).
"""
from __future__ import annotations

import numpy as np


class Strategy:
    """Naive fine-tuning: train each task in turn with the plain loss; nothing protects the past."""

    name = "naive"
    needs_gates = False

    def config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    # hooks ------------------------------------------------------------------------------------
    def setup(self, run, theta0) -> None:
        pass

    def begin_task(self, run, theta, theta0, t):
        return theta

    def train_indices(self, run, t) -> np.ndarray:
        return run.task_rows[t]

    def replay_indices(self, run, t):
        return None

    def penalty(self, run, theta):
        """``(value [E], gradient [E, P])`` added to the loss, or None."""
        return None

    def step_grad(self, run, theta, rows, t, j, nb):
        loss, grad = run.loss_grad(theta, rows)
        pen = self.penalty(run, theta)
        if pen is not None:
            loss, grad = loss + pen[0], grad + pen[1].astype(grad.dtype, copy=False)
        return loss, grad, None

    def after_step(self, run, t) -> None:
        pass

    def end_task(self, run, theta, t) -> None:
        pass

    def eval_theta(self, run, theta, j):
        return theta

    def evaluated(self, run, t) -> bool:
        return True

    def summary(self, run) -> dict:
        return {}


class Naive(Strategy):
    """Naive fine-tuning (the catastrophic-forgetting baseline of McCloskey & Cohen 1989)."""


class SingleTask(Strategy):
    """One network per task: every task restarts from θ₀ and trains on that task alone.

    Its diagonal ``R[j, j]`` is the single-task accuracy of the architecture under the same
    budget, the reference for "HAT keeps each task within 2 points of its single-task accuracy".
    """

    name = "single"

    def begin_task(self, run, theta, theta0, t):
        return theta0.copy()


class Joint(Strategy):
    """Joint (multitask) training, the upper bound.

    Args:
        incremental: True (default): stage t trains, from where stage t−1 ended, on the union of
            tasks 0 … t (Avalanche's *Cumulative*), so every row of R is measured and
            ``R[t, τ]`` is HAT's ``A_J^{τ≤t}``. False: one run from θ₀ on the union of all tasks
            (Avalanche's *JointTraining*); only the last row of R is measured (the others stay
            NaN). An epoch is one pass over the union, so stage t costs (t+1) task-epochs.
    """

    name = "joint"

    def __init__(self, incremental: bool = True):
        if not isinstance(incremental, (bool, np.bool_)):
            raise TypeError(f"incremental must be a bool, got {type(incremental).__name__}")
        self.incremental = bool(incremental)

    def config(self):
        return {"name": self.name, "incremental": self.incremental}

    def train_indices(self, run, t):
        if not self.incremental and t < run.T - 1:
            return np.zeros(0, np.int64)
        return np.concatenate(run.task_rows[:t + 1])

    def evaluated(self, run, t):
        return self.incremental or t == run.T - 1
