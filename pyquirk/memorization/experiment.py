"""Zhang et al. (2017), "Understanding deep learning requires rethinking generalization", Fig. 1.

One architecture and one set of hyper-parameters, trained under each corruption of the data
(:mod:`pyquirk.data.corruptions`), several seeds each. All K corruptions × S seeds train as ONE
population of E = K·S networks in lockstep (per-member inputs ``[E, N, *in]`` and labels
``[E, N]``), one engine call per step.

Member (k, s), at index ``e = k·S + s``, uses the run seeds ``member_seeds(seeds, S)[s]`` for
its initialisation, example order and corruption, so the corruption is the only thing that differs
between the members of one seed, and the population reproduces the K·S separate runs exactly.

Time-to-fit (DESIGN §4) is the first record step (a multiple of ``eval_every``) at which the
accuracy on the member's own (corrupted) training set reaches ``threshold`` (1.0 = 100 %); −1 if
it never does within ``steps``. Test accuracy is on the test split with TRUE labels (and the
corrupted inputs for input corruptions), after training.
"""
from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from .._validate import check_fraction, check_positive_int
from ..results import Result
from ..seeds import Seeds, as_seeds
from ._runs import first_reached, init_population, member_seeds, mlp, stack_members

#: Zhang's Fig. 1 conditions: label noise p = 0 … 1 plus the three input corruptions
DEFAULT_CORRUPTIONS = ("true", "partial:0.2", "partial:0.4", "partial:0.6", "partial:0.8",
                       "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
#: default architecture and training (MNIST-1D subset; see docs/memorization.md)
DEFAULTS = {"n_train": 1000, "hidden": (128, 128), "lr": 0.05, "momentum": 0.9,
            "batch_size": 50, "steps": 3000, "eval_every": 10}


def _label_p(c) -> float:
    """Label-noise level of a corruption: p for partial, 0 for true, 1 for random labels, else NaN."""
    if c.kind == "true":
        return 0.0
    return float(c.p) if c.kind in ("partial", "random_labels") else float("nan")


@dataclasses.dataclass
class MemorizationResult(Result):
    """K corruptions × S seeds trained from the same initialisations.

    Attributes:
        conditions: [K] labels, e.g. ``"partial 0.2"``; corruptions: [K] ``to_dict()`` specs.
        p: [K] label-noise level (0 true, p partial, 1 random labels, NaN input corruptions).
        steps: [T] record steps.
        train_loss, train_acc: [T, K, S] on each member's own (corrupted) training set.
        time_to_fit: [K, S] first record step with train accuracy >= ``threshold``; −1 never.
        final_train_acc, final_test_acc: [K, S] after the last step (test labels are true).
        threshold: accuracy that counts as fitted; n_train, n_test, n_params: sizes.
    """

    conditions: list
    corruptions: list
    p: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    time_to_fit: np.ndarray
    final_train_acc: np.ndarray
    final_test_acc: np.ndarray
    threshold: float = 1.0
    n_train: int = 0
    n_test: int = 0
    n_params: int = 0

    def index(self, condition: str) -> int:
        """Row of ``condition`` (a label such as ``"random labels"`` or a kind like ``"random_labels"``)."""
        if condition in self.conditions:
            return self.conditions.index(condition)
        kinds = [spec.get("kind") for spec in self.corruptions]
        if kinds.count(condition) == 1:
            return kinds.index(condition)
        raise KeyError(f"no condition {condition!r}; have {self.conditions}")

    def mean_time_to_fit(self, condition: str) -> float:
        """Mean time-to-fit over the seeds that fitted (NaN if none did)."""
        t = self.time_to_fit[self.index(condition)]
        return float(t[t >= 0].mean()) if (t >= 0).any() else float("nan")

    def time_to_fit_ratio(self, condition: str = "random_labels", reference: str = "true") -> float:
        """``mean time-to-fit(condition) / mean time-to-fit(reference)``."""
        return self.mean_time_to_fit(condition) / self.mean_time_to_fit(reference)

    def label_noise_curve(self) -> dict:
        """Label-noise conditions sorted by p: ``{"p": [J], "test_error": [J, S], "time_to_fit": [J, S]}``."""
        rows = [k for k in np.argsort(self.p, kind="stable") if np.isfinite(self.p[k])]
        return {"p": self.p[rows], "test_error": 1.0 - self.final_test_acc[rows],
                "time_to_fit": self.time_to_fit[rows]}

    def summary(self) -> dict:
        """Per condition: mean time-to-fit, fitted fraction, final train/test accuracy (means)."""
        return {lab: {"time_to_fit": self.mean_time_to_fit(lab),
                      "fitted": float((self.time_to_fit[k] >= 0).mean()),
                      "train_acc": float(self.final_train_acc[k].mean()),
                      "test_acc": float(self.final_test_acc[k].mean())}
                for k, lab in enumerate(self.conditions)}

    def _plot(self, fig) -> None:
        fig.set_size_inches(12.0, 3.6)
        ax_loss, ax_ttf, ax_err = fig.subplots(1, 3)
        for k, lab in enumerate(self.conditions):
            ls = "-" if np.isfinite(self.p[k]) else "--"
            ax_loss.plot(self.steps, self.train_loss[:, k].mean(axis=-1), ls=ls, color=f"C{k % 10}",
                         label=lab)
        ax_loss.set(xlabel="step", ylabel="training loss", title="(a) learning curves", yscale="log")
        ax_loss.legend(fontsize=7)
        curve = self.label_noise_curve()
        ttf = np.where(curve["time_to_fit"] >= 0, curve["time_to_fit"], np.nan).astype(float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)         # a p where no seed fitted
            ax_ttf.errorbar(curve["p"], np.nanmean(ttf, axis=1), yerr=np.nanstd(ttf, axis=1), marker="o",
                            label="label noise")
        for k, lab in enumerate(self.conditions):
            if not np.isfinite(self.p[k]) and (self.time_to_fit[k] >= 0).any():
                ax_ttf.axhline(self.mean_time_to_fit(lab), color=f"C{k % 10}", ls="--", lw=0.8,
                               label=lab)
        ax_ttf.set(xlabel="label corruption p", ylabel=f"steps to {self.threshold:.0%} train acc",
                   title="(b) time to fit")
        ax_ttf.legend(fontsize=7)
        err = curve["test_error"]
        ax_err.errorbar(curve["p"], err.mean(axis=1), yerr=err.std(axis=1), marker="o")
        ax_err.axhline(1 - 1 / max(2, self.semantics.get("n_classes", 10)), color="0.5", ls=":",
                       lw=0.8, label="chance")
        ax_err.set(xlabel="label corruption p", ylabel="test error", title="(c) test error",
                   ylim=(0, 1))
        ax_err.legend(fontsize=7)
        for ax in (ax_loss, ax_ttf, ax_err):
            ax.grid(alpha=0.3)


def _default_dataset(n_train, n_test):
    from ..data import mnist1d
    return mnist1d().subset(n_train=n_train, n_test=n_test)


def memorization(ds=None, corruptions=DEFAULT_CORRUPTIONS, *, n_train: int | None = None,
                 n_test: int | None = None, hidden=DEFAULTS["hidden"], act: str = "relu",
                 n_seeds: int = 3, seeds=None, optimizer=None, batch_size: int = DEFAULTS["batch_size"],
                 steps: int = DEFAULTS["steps"], threshold: float = 1.0,
                 eval_every: int = DEFAULTS["eval_every"], stop_when_fit: bool = True,
                 init: str = "he_normal", population: bool = True, progress: bool = False,
                 backend: str | None = None) -> MemorizationResult:
    """Train one MLP under each corruption, ``n_seeds`` seeds each, as one population.

    Args:
        ds: a classification :class:`~pyquirk.data.Dataset` (default: MNIST-1D, its first
            ``n_train`` training examples, default 1000, and ``n_test`` test examples).
        corruptions: K corruption specs (names like ``"partial:0.2"``, dicts or ``Corruption``).
        n_train, n_test: subset sizes taken from ``ds`` (first examples); None keeps all
            (with the default data set, ``n_train`` defaults to 1000).
        hidden, act: the MLP's hidden widths and activation (``"relu"``/``"tanh"``).
        n_seeds: S runs per corruption; seeds: base ``Seeds`` (run s shifts every stream by s).
        optimizer: default ``SGD(0.05, momentum=0.9)``; batch_size: examples per step.
        steps: the most optimizer steps; threshold: train accuracy counted as fitted.
        eval_every: steps between record points (the time-to-fit resolution).
        stop_when_fit: stop once every member has fitted (else train all ``steps``).
        init: init scheme for ``net.init``.
        population: True trains all K·S runs in lockstep; False loops over them (one ``fit``
            each; with ``stop_when_fit`` each run then stops at its own time-to-fit).
        progress: show a progress bar; backend: engine backend.

    Returns:
        :class:`MemorizationResult`.

    Raises:
        ValueError: an unknown corruption or p outside [0, 1] (from ``make_corruption``), a
            ``threshold`` outside (0, 1], ``n_train`` larger than the data set.
    """
    from ..data.corruptions import make_corruption
    from ..train import SGD, fit

    t0 = time.perf_counter()
    if ds is None:
        ds = _default_dataset(n_train or DEFAULTS["n_train"], n_test)
    elif n_train is not None or n_test is not None:
        ds = ds.subset(n_train=n_train, n_test=n_test)
    if ds.n_classes < 2:
        raise ValueError("memorization needs a classification data set")
    if isinstance(corruptions, str):
        corruptions = [corruptions]
    corr = [make_corruption(c) for c in corruptions]
    if not corr:
        raise ValueError("corruptions is empty")
    threshold = check_fraction(threshold, "threshold")
    if threshold == 0:
        raise ValueError("threshold must lie in (0, 1], got 0")
    steps = check_positive_int(steps, "steps")
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    K, S = len(corr), len(runs)
    opt = optimizer if optimizer is not None else SGD(DEFAULTS["lr"], momentum=DEFAULTS["momentum"])

    flat = ds.X_train.reshape(ds.n_train, -1)
    net = mlp(flat.shape[1], hidden, ds.n_classes, act)
    data = [c(ds, runs[s]) for c in corr for s in range(S)]                    # member e = k·S + s
    Xtr = stack_members([d.X_train.reshape(ds.n_train, -1) for d in data])   # [E, N, D]
    ytr = stack_members([d.y_train for d in data])                           # [E, N]
    Xte = stack_members([d.X_test.reshape(ds.n_test, -1) for d in data])     # [E, M, D]
    theta0 = np.tile(init_population(net, runs, init), (K, 1))               # [E, P]
    member_runs = [runs[s] for _ in range(K) for s in range(S)]
    kw = dict(steps=steps, batch_size=batch_size, eval_every=eval_every,
              stop_at=threshold if stop_when_fit else None, backend=backend)
    if population:
        res = fit(net, theta0, Xtr, ytr, opt, seeds=member_runs, progress=progress, **kw)
        hist_steps, loss, acc, theta = (res.history["steps"], res.history["train_loss"],
                                        res.history["train_acc"], res.theta)
    else:
        hist_steps, loss, acc, theta = _loop(fit, net, theta0, Xtr, ytr, opt, member_runs, kw, progress)
    test_acc = net.accuracy(theta, Xte, ds.y_test, backend=backend)          # [E]
    train_acc = acc[-1]
    T = len(hist_steps)
    semantics = {
        "dataset": ds.to_dict(), "n_classes": ds.n_classes, "net": repr(net), "act": act,
        "hidden": list(np.atleast_1d(hidden).tolist()), "init": init, "optimizer": opt.config(),
        "batch_size": batch_size, "steps": steps, "eval_every": eval_every,
        "stop_when_fit": stop_when_fit, "population": population, "n_seeds": S,
        "member_rule": "member e = k·S + s: corruption k, run seeds member_seeds(seeds, S)[s] "
                       "(init, order and corruption streams)",
        "time_to_fit": f"first record step (every {eval_every}) with accuracy on the member's own "
                       f"training labels >= {threshold}; -1 if never within {steps} steps",
        "test": "test split, TRUE labels; inputs corrupted like the training inputs",
        "label_corruption_splits": "train labels only", "input_corruption_splits": "train and test",
    }
    return MemorizationResult(
        conditions=[c.label for c in corr], corruptions=[c.to_dict() for c in corr],
        p=np.array([_label_p(c) for c in corr], dtype=float), steps=np.asarray(hist_steps),
        train_loss=np.asarray(loss, dtype=float).reshape(T, K, S),
        train_acc=np.asarray(acc, dtype=float).reshape(T, K, S),
        time_to_fit=first_reached(hist_steps, acc, threshold).reshape(K, S),
        final_train_acc=np.asarray(train_acc, dtype=float).reshape(K, S),
        final_test_acc=np.asarray(test_acc, dtype=float).reshape(K, S), threshold=threshold,
        n_train=ds.n_train, n_test=ds.n_test, n_params=net.n_params, semantics=semantics,
        seeds={"base": base.to_dict(), "runs": [r.to_dict() for r in runs]},
        counts={"members": K * S, "wall_time_s": time.perf_counter() - t0})


def _loop(fit, net, theta0, Xtr, ytr, opt, member_runs, kw, progress):
    """The per-run loop: one ``fit`` per member; histories padded with their last value."""
    runs = [fit(net, theta0[e], Xtr[e], ytr[e], opt, seeds=member_runs[e], progress=progress, **kw)
            for e in range(len(member_runs))]
    longest = max(runs, key=lambda r: len(r.history["steps"]))
    steps = longest.history["steps"]
    pad = lambda v: np.concatenate([v, np.full(len(steps) - len(v), v[-1])])  # noqa: E731
    loss = np.stack([pad(r.history["train_loss"]) for r in runs], axis=1)
    acc = np.stack([pad(r.history["train_acc"]) for r in runs], axis=1)
    return steps, loss, acc, np.stack([r.theta for r in runs])


__all__ = ["DEFAULT_CORRUPTIONS", "DEFAULTS", "MemorizationResult", "memorization"]
