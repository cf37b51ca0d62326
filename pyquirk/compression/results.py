"""Result objects of the compression experiments (DESIGN §6): data that saves, loads and plots itself."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Result

_STYLE = {"global": ("C0", "global magnitude"), "layer": ("C1", "layer-wise magnitude"),
          "random": ("C7", "random"), "ticket": ("C0", "ticket (rewound)"),
          "reinit": ("C3", "random re-init, same mask"), "random_mask": ("C7", "random mask, same sparsity")}


@dataclasses.dataclass
class PruningCurve(Result):
    """Test accuracy against weight sparsity for one-shot pruning methods.

    Attributes:
        methods: ``[M]`` names (``"global"``, ``"layer"``, ``"random"``).
        sparsities: ``[S]`` requested weight sparsities.
        acc_pruned: ``[M, S]`` test accuracy right after pruning (no retraining).
        acc_retrained: ``[M, S]`` test accuracy after masked retraining.
        achieved_sparsity: ``[M, S]`` pruned fraction of the scope's weights (exact counts).
        dense_acc: test accuracy of the dense net.
        masks: ``[M, S, P]`` bool, True = kept.
        theta_dense: ``[P]``; theta_retrained: ``[M, S, P]``.
    """

    methods: list
    sparsities: np.ndarray
    acc_pruned: np.ndarray
    acc_retrained: np.ndarray
    achieved_sparsity: np.ndarray
    dense_acc: float
    masks: np.ndarray
    theta_dense: np.ndarray
    theta_retrained: np.ndarray

    def acc(self, method: str, sparsity: float, retrained: bool = True) -> float:
        """Test accuracy of ``method`` at the requested ``sparsity``."""
        i = self.methods.index(method)
        j = int(np.argmin(np.abs(np.asarray(self.sparsities) - sparsity)))
        return float((self.acc_retrained if retrained else self.acc_pruned)[i, j])

    def _plot(self, fig) -> None:
        ax = fig.add_subplot()
        x = 100 * np.asarray(self.sparsities)
        for i, m in enumerate(self.methods):
            c, label = _STYLE.get(m, (f"C{i}", m))
            ax.plot(x, self.acc_retrained[i], "o-", color=c, label=f"{label}, retrained")
            ax.plot(x, self.acc_pruned[i], "x--", color=c, alpha=0.5, label=f"{label}, before retraining")
        ax.axhline(self.dense_acc, color="k", lw=0.8, ls=":", label="dense")
        ax.set(xlabel="weights pruned (%)", ylabel="test accuracy", ylim=(0, 1.02),
               title="One-shot pruning, then masked retraining")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")


@dataclasses.dataclass
class TicketResult(Result):
    """Iterative pruning with rewinding, and its controls; index 0 is the dense round.

    Attributes:
        arms: ``["ticket", *controls]``.
        sparsity: ``[R+1]`` fraction of all weights pruned after each round.
        scope_sparsity: ``[R+1]`` fraction of the pruning scope's weights pruned.
        test_acc, train_acc: ``{arm: [R+1]}`` final accuracies of each round's training.
        masks: ``[R+1, P]`` bool, the ticket's masks (they only grow).
        theta0: ``[P]`` the initialisation; theta_dense: ``[P]`` the trained dense net (round 0);
        theta_ticket: ``[P]`` the last round's trained ticket.
    """

    arms: list
    sparsity: np.ndarray
    scope_sparsity: np.ndarray
    test_acc: dict
    train_acc: dict
    masks: np.ndarray
    theta0: np.ndarray
    theta_dense: np.ndarray
    theta_ticket: np.ndarray

    def _plot(self, fig) -> None:
        ax = fig.add_subplot()
        remaining = 100 * (1 - np.asarray(self.sparsity))
        for i, a in enumerate(self.arms):
            c, label = _STYLE.get(a, (f"C{i}", a))
            ax.plot(remaining, self.test_acc[a], "o-", color=c, label=label)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set(xlabel="weights remaining (%)", ylabel="test accuracy", ylim=(0, 1.02),
               title=f"Iterative pruning ({self.semantics.get('preset') or self.semantics.get('scope')}, "
                     f"rewind {self.semantics.get('rewind')})")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower left")


@dataclasses.dataclass
class SharedWeights(Result):
    """Per-layer k-means weight sharing of the surviving weights (Deep Compression, stage 2).

    Attributes:
        names: ``[L]`` the shared weight tensors (``"0.weight"``, ...).
        bits: ``[L]`` bits per cluster index; K_l = 2**bits_l clusters (at most).
        centroids: ``[Q]`` every layer's codebook, concatenated; layer l owns
            ``centroids[offsets[l]:offsets[l+1]]``, sorted ascending.
        offsets: ``[L+1]`` int.
        index: ``[n]`` flat θ indices of the shared (surviving) weights, ascending.
        cluster: ``[n]`` each one's global cluster id into ``centroids``.
        theta: ``[P]`` the quantized parameters (shared weights replaced by centroids, pruned = 0,
            other parameters as given or fine-tuned).
        mask: ``[P]`` bool, True = kept.
        iterations: ``[L]`` Lloyd iterations each layer took.
    """

    names: list
    bits: np.ndarray
    centroids: np.ndarray
    offsets: np.ndarray
    index: np.ndarray
    cluster: np.ndarray
    theta: np.ndarray
    mask: np.ndarray
    iterations: np.ndarray
    history: dict = dataclasses.field(default_factory=dict)

    def codebook(self, layer: int) -> np.ndarray:
        """The centroids of shared tensor ``layer`` (position in ``names``)."""
        return self.centroids[self.offsets[layer]:self.offsets[layer + 1]]

    def _plot(self, fig) -> None:
        axes = np.atleast_1d(fig.subplots(1, len(self.names), squeeze=False)[0])
        for ax, (l, name) in zip(axes, enumerate(self.names)):
            sel = (self.cluster >= self.offsets[l]) & (self.cluster < self.offsets[l + 1])
            ax.hist(self.theta[self.index[sel]], bins=100, color="C0")
            for c in self.codebook(l):
                ax.axvline(c, color="C3", lw=0.4)
            ax.set(title=f"{name}: {2 ** int(self.bits[l])} clusters", xlabel="weight")


@dataclasses.dataclass
class SizeReport(Result):
    """Storage size in bits at each Deep Compression stage, against dense float32.

    Attributes:
        stages: ``{"dense", "pruned", "quantized", "huffman"}`` -> total bits (quantized and
            huffman are absent without weight sharing).
        ratios: ``{"pruning", "quantization", "huffman", "total"}`` (each stage against the one
            before; total = dense / last stage).
        layers: ``{tensor name: {stage: bits, "entries", "fillers", "nonzero", "size"}}``.
        parts: ``{stage: {"values", "index", "codebook", "tables", "other"}}`` bits by component.
    """

    stages: dict
    ratios: dict
    layers: dict
    parts: dict

    def _plot(self, fig) -> None:
        ax = fig.add_subplot()
        names = list(self.stages)
        kinds = ["values", "index", "codebook", "tables", "other"]
        bottom = np.zeros(len(names))
        for i, k in enumerate(kinds):
            v = np.array([self.parts[s].get(k, 0) / 8192 for s in names])
            ax.bar(names, v, bottom=bottom, color=f"C{i}", label=k)
            bottom += v
        for x, s in enumerate(names):
            ax.text(x, bottom[x], f"{self.stages['dense'] / self.stages[s]:.1f}×", ha="center", va="bottom")
        ax.set(ylabel="size (KiB)", title="Deep Compression: size by stage (× = ratio vs dense float32)")
        ax.legend(fontsize=8)


@dataclasses.dataclass
class DistillationResult(Result):
    """Students trained on hard labels alone and distilled at each temperature.

    Attributes:
        temperatures: ``[E]`` T of each student (any value for the hard-label student).
        alphas: ``[E]`` weight of the soft term (0 = hard labels alone).
        test_acc: ``[E]`` final test accuracy of each student; train_acc likewise.
        history_steps: ``[H]``; history_test_acc: ``[H, E]``.
        teacher_acc: test accuracy of the teacher (the ensemble's averaged prediction).
        teacher_members_acc: ``[M]`` test accuracy of each teacher member.
        theta: ``[E, P]`` trained students.
    """

    temperatures: np.ndarray
    alphas: np.ndarray
    test_acc: np.ndarray
    train_acc: np.ndarray
    history_steps: np.ndarray
    history_test_acc: np.ndarray
    teacher_acc: float
    teacher_members_acc: np.ndarray
    theta: np.ndarray

    @property
    def hard_acc(self) -> float:
        """Test accuracy of the student trained on hard labels alone (the first α = 0 member)."""
        return float(self.test_acc[np.flatnonzero(np.asarray(self.alphas) == 0)[0]])

    @property
    def best_distilled(self) -> tuple[float, float]:
        """(T, test accuracy) of the best distilled student."""
        soft = np.flatnonzero(np.asarray(self.alphas) > 0)
        i = soft[np.argmax(np.asarray(self.test_acc)[soft])]
        return float(self.temperatures[i]), float(self.test_acc[i])

    def _plot(self, fig) -> None:
        ax = fig.add_subplot()
        soft = np.asarray(self.alphas) > 0
        ax.plot(self.temperatures[soft], self.test_acc[soft], "o-", color="C0", label="distilled student")
        ax.axhline(self.hard_acc, color="C3", ls="--", label="student, hard labels alone")
        ax.axhline(self.teacher_acc, color="k", ls=":", label="teacher")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="temperature T", ylabel="test accuracy", title="Knowledge distillation")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


__all__ = ["PruningCurve", "TicketResult", "SharedWeights", "SizeReport", "DistillationResult"]
