"""Result objects of :mod:`pyquirk.forgetting` (DESIGN §6): data that saves, loads and plots itself.

Shapes: E population members (seeds), T tasks, P parameters, K = 1 + T·epochs probe points.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Result
from . import metrics as M

NAMES = {"naive": "naive", "single": "single-task", "joint": "joint", "replay": "replay", "ewc": "EWC",
         "hat": "HAT"}


@dataclasses.dataclass
class ContinualResult(Result):
    """One strategy over one scenario, for a population of E runs.

    Attributes:
        strategy: the strategy's name; its options are in ``semantics["strategy"]``.
        setting: ``"task"``, ``"class"`` or ``"domain"``.
        R: ``[E, T, T]`` accuracy matrix, ``R[e, i, j]`` = test accuracy on task j after
            training tasks 0 … i (NaN rows: not measured, e.g. ``Joint(incremental=False)``).
        baseline: ``[E, T]`` accuracy of θ₀ on each task (GEM's b̄, for FWT).
        first_task: ``[K, E]`` test accuracy on task 0 at θ₀ and after every epoch.
        first_task_epoch: ``[K]`` when each probe was taken, in tasks: ``t + (epoch + 1)/epochs``
            after an epoch of task t, 0 at θ₀.
        loss: ``[T, epochs, E]`` mean training loss per epoch (including penalties / regulariser).
        theta: ``[E, P]`` final parameters (HAT: gate entries as last set; see ``extras``).
        thetas: ``[T, E, P]`` θ after every task (``learn(..., keep_theta=True)``), else None.
        extras: the strategy's own record (EWC: ``fisher_l1``; replay: ``memory_rows``,
            ``memory_per_task``; HAT: ``masks`` ``[E, T, U]``, ``embeddings``, usage per layer).
    """

    strategy: str
    setting: str
    R: np.ndarray
    baseline: np.ndarray
    first_task: np.ndarray
    first_task_epoch: np.ndarray
    loss: np.ndarray
    theta: np.ndarray
    thetas: np.ndarray | None = None
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        return int(self.R.shape[-1])

    def metrics(self, joint=None, random=None) -> dict:
        """Every metric of :func:`pyquirk.forgetting.metrics.summarize`, per member ``[E]``."""
        return M.summarize(self.R, self.baseline, joint, random)

    def _plot(self, fig) -> None:
        fig.set_size_inches(8.4, 3.4)
        ax_r, ax_f = fig.subplots(1, 2)
        heatmap(ax_r, np.nanmean(self.R, axis=0), f"{NAMES.get(self.strategy, self.strategy)} ({self.setting})")
        first_task_curve(ax_f, self, label=NAMES.get(self.strategy, self.strategy), color="C0")
        ax_f.legend(fontsize="small", loc="best")


def heatmap(ax, R, title: str = "") -> None:
    """Draw one accuracy matrix ``[T, T]`` with its values."""
    T = R.shape[-1]
    im = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
    for i in range(T):
        for j in range(T):
            if np.isfinite(R[i, j]):
                ax.text(j, i, f"{100 * R[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="w" if R[i, j] < 0.6 else "k")
    ax.set(xticks=range(T), yticks=range(T), xticklabels=range(1, T + 1), yticklabels=range(1, T + 1),
           xlabel="evaluated on task j", ylabel="after training task i", title=title)
    ax.tick_params(labelsize=7)
    return im


def first_task_curve(ax, res: ContinualResult, label: str, color: str) -> None:
    """Accuracy on the first task (mean, min–max band over members) as training goes on; x counts
    tasks trained (an epoch is 1/epochs), the task boundaries dotted."""
    x, acc = res.first_task_epoch, np.asarray(res.first_task, dtype=float)
    ax.plot(x, acc.mean(axis=1), color=color, label=label, lw=1.4)
    if acc.shape[1] > 1:
        ax.fill_between(x, acc.min(axis=1), acc.max(axis=1), color=color, alpha=0.15, lw=0)
    for t in range(1, res.n_tasks):
        ax.axvline(t, color="0.7", lw=0.6, ls=":")
    ax.set(xlabel="tasks trained (a point per epoch)", ylabel="accuracy on task 1", ylim=(0, 1.02),
           title="Task 1 as later tasks arrive")
    ax.set_xticks(range(res.n_tasks + 1))
    ax.grid(alpha=0.3)


@dataclasses.dataclass
class ForgettingResult(Result):
    """Several strategies over one scenario (:func:`pyquirk.forgetting.run_experiment`).

    Attributes:
        scenario: the scenario's description (``Scenario.to_dict()``).
        runs: ``{strategy name: ContinualResult}`` (references such as ``joint`` and ``single``
            included when run).
        random: ``[T]`` accuracy of the random stratified classifier on each task (HAT's A_R).
        table: ``{strategy: {metric: mean over members}}`` plus ``"<metric>_std"`` entries.
    """

    scenario: dict
    runs: dict
    random: np.ndarray
    table: dict = dataclasses.field(default_factory=dict)

    def per_member(self, name: str) -> dict:
        """``{metric: [E]}`` for strategy ``name`` (ρ against the joint run when there is one)."""
        joint = self.runs["joint"].R if "joint" in self.runs else None
        if joint is not None and joint.shape[0] != self.runs[name].R.shape[0]:
            joint = np.nanmean(joint, axis=0)
        return self.runs[name].metrics(joint, self.random if joint is not None else None)

    def _plot(self, fig) -> None:
        names = [n for n in self.runs if n not in ("joint", "single")] or list(self.runs)
        fig.set_size_inches(2.6 * len(names) + 3.6, 3.2)
        axes = fig.subplots(1, len(names) + 1, gridspec_kw={"width_ratios": [1] * len(names) + [1.5]})
        for ax, n in zip(axes, names):
            heatmap(ax, np.nanmean(self.runs[n].R, axis=0), NAMES.get(n, n))
        for k, n in enumerate(names):
            first_task_curve(axes[-1], self.runs[n], NAMES.get(n, n), f"C{k}")
        axes[-1].legend(fontsize="x-small", loc="best", ncol=2)
        fig.suptitle(f"{self.scenario.get('kind', '')} {self.scenario.get('meta', {}).get('dataset', '')}, "
                     f"{self.scenario.get('n_tasks', '')} tasks, {self.scenario.get('setting', '')}-incremental",
                     fontsize=9)


__all__ = ["ContinualResult", "ForgettingResult", "heatmap", "first_task_curve", "NAMES"]
