"""``TrainResult``: what :func:`pyquirk.train.fit` returns (DESIGN §6)."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Result


@dataclasses.dataclass
class TrainResult(Result):
    """A training run, or a population of E runs in lockstep.

    Attributes:
        theta: final parameters, [P] or [E, P].
        theta0: initial parameters as given, [P] or [E, P].
        history: record points; ``"steps"`` [T] (int), ``"epoch"`` [T] (steps / batches per
            epoch), and per metric [T] or [T, E]: ``"train_loss"``, ``"train_acc"`` (full training
            set at the record point), ``"batch_loss"`` (mean of the mini-batch losses since the
            previous record point; NaN at step 0), and ``"test_loss"``, ``"test_acc"`` when
            ``eval_data`` was given.
        trajectory: θ every ``record_every`` steps (plus step 0 and the last step),
            [T', P] or [T', E, P] in θ's dtype; None when not recorded.
        trajectory_steps: the step of each trajectory row, [T'] (or None).
        steps_done: optimizer steps taken (all members step together).
        time_to_fit: first record step at which ``stop_metric`` reached ``stop_at``, an int, or
            [E] ints for a population; -1 where never reached; None without ``stop_at``.
        semantics, seeds, counts: see :class:`pyquirk.results.Result`; ``counts`` holds
            ``grad_calls`` (engine calls, one per step for the whole population), ``evals`` and
            ``wall_time_s``.
    """

    theta: np.ndarray
    theta0: np.ndarray
    history: dict
    trajectory: np.ndarray | None = None
    trajectory_steps: np.ndarray | None = None
    steps_done: int = 0
    time_to_fit: int | np.ndarray | None = None

    @property
    def wall_time(self) -> float | None:
        """Seconds spent in :func:`fit` (``counts["wall_time_s"]``)."""
        return self.counts.get("wall_time_s")

    @property
    def population(self) -> int | None:
        """E for a population run, None for a single run."""
        return None if np.ndim(self.theta) == 1 else int(np.shape(self.theta)[0])

    def _plot(self, fig) -> None:
        """Learning curves: loss (left) and accuracy (right) against steps; one line per member."""
        h = self.history
        steps = np.asarray(h["steps"])
        ax_loss, ax_acc = fig.subplots(1, 2)
        curves = [(ax_loss, "train_loss", "C0"), (ax_loss, "test_loss", "C1"),
                  (ax_acc, "train_acc", "C0"), (ax_acc, "test_acc", "C1")]
        for ax, key, color in curves:
            if key not in h:
                continue
            vals = np.asarray(h[key], dtype=float)
            vals = vals[:, None] if vals.ndim == 1 else vals
            alpha = 1.0 if vals.shape[1] == 1 else max(0.15, 1.0 / np.sqrt(vals.shape[1]))
            for e in range(vals.shape[1]):
                ax.plot(steps, vals[:, e], color=color, alpha=alpha, lw=1.2,
                        label=key.split("_")[0] if e == 0 else None)
        ax_loss.set(xlabel="step", ylabel="loss", title="loss")
        ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(-0.02, 1.02))
        if self.time_to_fit is not None:
            for t in np.atleast_1d(self.time_to_fit):
                if t >= 0:
                    ax_acc.axvline(t, color="0.5", lw=0.6, ls=":")
        for ax in (ax_loss, ax_acc):
            ax.legend(loc="best", fontsize="small")


__all__ = ["TrainResult"]
