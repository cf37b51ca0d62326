"""Result objects of :mod:`pyquirk.adversarial` (DESIGN §6): data that saves, loads and plots itself.

Shapes: K ε values, R restarts, N examples, C classes, ``*in`` the model's input shape.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Result


def _signal_axes(ax, x, **kw):
    """Draw one input: a 1-D signal as a line, a 2-D/3-D input as an image."""
    x = np.asarray(x)
    if x.ndim >= 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 1:
        ax.plot(x, **kw)
    else:
        ax.imshow(x if x.ndim == 2 else np.moveaxis(x, 0, -1), cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])


@dataclasses.dataclass
class AttackResult(Result):
    """One batched attack over ε ``[K]`` × restarts R × examples N.

    Attributes:
        eps: ``[K]`` radii, in the order given.
        y: ``[N]`` labels; target: ``[N]`` target classes, or None (untargeted).
        x_adv: ``[K, N, *in]`` last iterate of the chosen restart (final clipped input).
        x_best: ``[K, N, *in]`` iterate of largest margin over all steps and restarts.
        success: ``[K, N]`` bool, judged on ``x_adv`` (arg-max ≠ y, or = target).
        success_best: ``[K, N]`` bool, judged on ``x_best``.
        margin, margin_best: ``[K, N]`` attack margins of ``x_adv``/``x_best`` (> 0: won).
        norm_adv, norm_best: ``[K, N]`` ``‖x − x0‖_p`` (float64) in the attack's norm.
        restart_margin: ``[K, R, N]`` final margin of every restart.
        chosen_restart: ``[K, N]`` restart returned in ``x_adv``.
        clean_pred: ``[N]`` arg-max on the clean inputs.
        min_eps: ``[N]`` smallest successful ε (grid, refined by bisection when asked); 0 for
            examples the model already gets wrong (targeted: already predicted as the target);
            inf where no ε succeeded.
        min_eps_grid: ``[N]`` the grid value before refinement.
        x_min: ``[N, *in]`` an adversarial input at ``min_eps`` (the clean input where inf).
    """

    eps: np.ndarray
    y: np.ndarray
    target: np.ndarray | None
    x_adv: np.ndarray
    x_best: np.ndarray
    success: np.ndarray
    success_best: np.ndarray
    margin: np.ndarray
    margin_best: np.ndarray
    norm_adv: np.ndarray
    norm_best: np.ndarray
    restart_margin: np.ndarray
    chosen_restart: np.ndarray
    clean_pred: np.ndarray
    min_eps: np.ndarray
    min_eps_grid: np.ndarray
    x_min: np.ndarray

    @property
    def success_rate(self) -> np.ndarray:
        """``[K]`` fraction of examples whose ``x_adv`` succeeds."""
        return self.success.mean(axis=1)

    @property
    def success_cum(self) -> np.ndarray:
        """``[K, N]`` success at any ε' ≤ ε: an example found inside a smaller ball is inside this one."""
        order = np.argsort(self.eps, kind="stable")
        cum = np.logical_or.accumulate(self.success[order], axis=0)
        out = np.empty_like(cum)
        out[order] = cum
        return out

    @property
    def robust_accuracy(self) -> np.ndarray:
        """``[K]`` (untargeted) fraction of examples correct under every attack with ε' ≤ ε."""
        if self.target is not None:
            raise ValueError("robust accuracy is defined for untargeted attacks")
        return 1.0 - self.success_cum.mean(axis=1)

    @property
    def clean_accuracy(self) -> float:
        return float((self.clean_pred == self.y).mean())

    def _plot(self, fig) -> None:
        fig.set_size_inches(9.0, 3.4)
        ax1, ax2 = fig.subplots(1, 2)
        o = np.argsort(self.eps)
        ax1.plot(self.eps[o], self.success_rate[o], "o-", label="x_adv (last iterate)")
        ax1.plot(self.eps[o], self.success_best.mean(1)[o], "s--", label="x_best")
        ax1.plot(self.eps[o], self.success_cum.mean(1)[o], ":", color="k", label="any ε' ≤ ε")
        sem = self.semantics
        ax1.set(xlabel=f"ε ({sem.get('norm', '')})", ylabel="success rate", ylim=(-0.02, 1.02),
                title=f"{sem.get('attack', '').upper()} {sem.get('target_mode', '')}")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        fin = self.min_eps[np.isfinite(self.min_eps)]
        ax2.hist(fin, bins=30, color="C2")
        ax2.set(xlabel="minimal successful ε", ylabel="examples",
                title=f"{fin.size}/{self.min_eps.size} examples broken")


@dataclasses.dataclass
class RobustCurve(Result):
    """Accuracy against ε for several attacks and norms over one data set.

    Attributes:
        curves: ``{"<attack>-<norm>": {"eps": [K], "accuracy": [K], "accuracy_last": [K],
            "success": [K, N]}}``; ``accuracy`` counts an example as broken at ε if the attack
            broke it at any ε' ≤ ε (``AttackResult.robust_accuracy``), ``accuracy_last`` judges
            each ε on its own final iterate only.
        clean_accuracy: accuracy on the clean inputs.
    """

    curves: dict
    clean_accuracy: float

    def _plot(self, fig) -> None:
        norms = sorted({k.split("-")[1] for k in self.curves}, key=lambda n: n != "linf")
        fig.set_size_inches(4.2 * len(norms), 3.4)
        axes = np.atleast_1d(fig.subplots(1, len(norms)))
        for ax, nm in zip(axes, norms):
            for i, (key, c) in enumerate(self.curves.items()):
                if key.endswith(nm):
                    o = np.argsort(c["eps"])
                    ax.plot(np.asarray(c["eps"])[o], np.asarray(c["accuracy"])[o], "o-",
                            color=f"C{i}", label=key.split("-")[0].upper())
            ax.axhline(self.clean_accuracy, color="0.5", ls=":", lw=1, label="clean")
            ax.set(xlabel=f"ε ({'L∞' if nm == 'linf' else 'L2'})", ylabel="accuracy",
                   ylim=(-0.02, 1.02), title=f"robust accuracy, {nm}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)


@dataclasses.dataclass
class FoolingResult(Result):
    """Fooling images (Nguyen et al. 2015): inputs the model assigns to a class with high confidence.

    Attributes:
        images: ``[C, n, *in]`` the final images (n per class).
        classes: ``[C]`` the classes.
        confidence: ``[C, n]`` softmax probability of the class at the end.
        steps_to_target: ``[C, n]`` steps (gradient) or generations (evolution) until the
            confidence first reached ``semantics["target_confidence"]`` (-1 if never).
        history: ``[T, C]`` best confidence per class after each step/generation.
        method: ``"gradient"`` or ``"evolution"``.
    """

    images: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray
    steps_to_target: np.ndarray
    history: np.ndarray
    method: str = "gradient"

    @property
    def min_confidence(self) -> float:
        """The smallest final confidence over every class and image."""
        return float(self.confidence.min())

    def _plot(self, fig) -> None:
        C = self.images.shape[0]
        fig.set_size_inches(min(1.1 * C, 12), 2.6)
        axes = fig.subplots(1, C, sharey=True)
        for c, ax in zip(range(C), np.atleast_1d(axes)):
            j = int(self.confidence[c].argmax())
            x = np.asarray(self.images[c, j])
            if x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1):
                x = x.reshape(-1)
                ax.plot(x, np.arange(x.size), color="k", lw=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _signal_axes(ax, x)
            ax.set_title(f"{int(self.classes[c])}: {self.confidence[c, j]:.4%}", fontsize=7)


@dataclasses.dataclass
class TransferResult(Result):
    """Transfer of adversarial examples between models (Szegedy et al. 2014).

    Attributes:
        names: ``[M]`` model names.
        matrix: ``[M, M]`` row = source (crafted on), column = target (evaluated on): fraction of
            the examples the target classifies correctly when clean that it misclassifies on the
            source's adversarial examples. The diagonal is white-box success.
        error: ``[M, M]`` plain error rate of the target on the source's adversarial examples.
        clean_accuracy: ``[M]``; eps: the radius.
        disjoint: ``[M, M]`` bool, True where the two models' training sets share no example
            (known when the models carry ``train_idx``, as :func:`~.transfer.train_disjoint`'s do).
    """

    names: list
    matrix: np.ndarray
    error: np.ndarray
    clean_accuracy: np.ndarray
    eps: float
    disjoint: np.ndarray | None = None

    def off_diagonal(self) -> np.ndarray:
        """Transfer success of every ordered pair of different models."""
        M = self.matrix.shape[0]
        return self.matrix[~np.eye(M, dtype=bool)]

    def disjoint_pairs(self) -> np.ndarray:
        """Transfer success between models trained on disjoint data (all pairs if unknown)."""
        if self.disjoint is None or not np.any(self.disjoint):
            return self.off_diagonal()
        return self.matrix[np.asarray(self.disjoint, dtype=bool)]

    def _plot(self, fig) -> None:
        M = len(self.names)
        fig.set_size_inches(1.2 * M + 2.4, 1.0 * M + 1.6)
        ax = fig.subplots()
        im = ax.imshow(self.matrix, vmin=0, vmax=1, cmap="magma")
        for i in range(M):
            for j in range(M):
                v = self.matrix[i, j]
                ax.text(j, i, f"{v:.0%}", ha="center", va="center",
                        color="k" if v > 0.6 else "w", fontsize=9)
        if self.disjoint is not None:
            from matplotlib.patches import Rectangle
            for i, j in zip(*np.nonzero(self.disjoint)):
                ax.add_patch(Rectangle((j - 0.42, i - 0.42), 0.84, 0.84, fill=False, ec="C2", lw=1.5,
                                       ls="--"))
        ax.set_xticks(range(M), self.names, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(M), self.names, fontsize=8)
        ax.set(xlabel="evaluated on", ylabel="crafted on",
               title=f"transfer success, {self.semantics.get('attack', '')} ε={self.eps:g}"
                     + ("\n(dashed: disjoint training data)" if self.disjoint is not None else ""))
        fig.colorbar(im, ax=ax, fraction=0.046)


@dataclasses.dataclass
class SubstituteResult(Result):
    """Papernot et al. (2017) black-box attack through a substitute trained on label-only queries.

    Attributes:
        queries: ``[ρ+1]`` cumulative oracle queries after each substitute round.
        substitute_accuracy: ``[ρ+1]`` agreement of the substitute with the oracle on the
            evaluation inputs.
        target_error: ``[ρ+1]`` oracle misclassification rate on adversarial examples crafted on
            the substitute after each round (over examples the oracle gets right when clean).
        noise_error: ``[ρ+1]`` the same for random sign noise of equal norm.
        eps: the attack radius; lambdas: ``[ρ]`` augmentation step λ used at each round.
    """

    queries: np.ndarray
    substitute_accuracy: np.ndarray
    target_error: np.ndarray
    noise_error: np.ndarray
    eps: float
    lambdas: np.ndarray

    def _plot(self, fig) -> None:
        fig.set_size_inches(5.2, 3.4)
        ax = fig.subplots()
        ax.plot(self.queries, self.target_error, "o-", label="substitute's adversarial examples")
        ax.plot(self.queries, self.noise_error, "s--", label="random noise, equal norm")
        ax.plot(self.queries, self.substitute_accuracy, ":", color="0.4", label="substitute agreement")
        ax.set(xlabel="oracle queries (labels only)", ylabel="rate", ylim=(-0.02, 1.02),
               title=f"black-box attack, ε={self.eps:g}", xscale="log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)


@dataclasses.dataclass
class SpheresResult(Result):
    """Adversarial spheres (Gilmer et al. 2018): error rate against distance to the nearest error.

    Attributes:
        dim: n; radii: ``[2]``.
        error_rate: test error rate (both spheres).
        inner_error_rate: µ(E), error rate on fresh points of the inner sphere.
        distances: ``[M]`` distance from each correctly classified inner-sphere point to the
            nearest error found by the manifold attack (inf if none found).
        mean_distance: d(E) estimate: the mean over inner-sphere points (0 for errors).
        bound_theorem: ``r·Φ⁻¹(1 − µ)/√n`` (Theorem 5.1 with the O(·) constant 1, radius r).
        bound_cap: the exact isoperimetric value: d(cap) for a spherical cap of measure µ.
    """

    dim: int
    radii: list
    error_rate: float
    inner_error_rate: float
    distances: np.ndarray
    mean_distance: float
    bound_theorem: float
    bound_cap: float

    def _plot(self, fig) -> None:
        fig.set_size_inches(5.2, 3.4)
        ax = fig.subplots()
        fin = self.distances[np.isfinite(self.distances)]
        ax.hist(fin, bins=30, color="C0", alpha=0.8, label="distance to nearest error")
        ax.axvline(self.mean_distance, color="C0", ls="-", label=f"d(E) ≈ {self.mean_distance:.3f}")
        ax.axvline(self.bound_cap, color="C3", ls="--", label=f"cap bound {self.bound_cap:.3f}")
        ax.set(xlabel="L2 distance (on the inner sphere)", ylabel="points",
               title=f"spheres n={self.dim}: µ(E)={self.inner_error_rate:.2%}")
        ax.legend(fontsize=8)


__all__ = ["AttackResult", "RobustCurve", "FoolingResult", "TransferResult", "SubstituteResult",
           "SpheresResult"]
