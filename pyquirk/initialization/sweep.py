"""Initialization scale and scheme: who learns, and what the signal does at init.

LeCun et al. (1998/2002), Glorot & Bengio (2010), He et al. (2015), Saxe et al. (2014): the
variance of the initial weights decides whether forward activations and backward gradients keep
their size through depth. Too small and both vanish; too large and ReLU nets explode while tanh
nets saturate into a chaotic regime. Either way the net does not learn.

- :func:`init_sweep`: each scheme × gain (the ``gain`` of :mod:`pyquirk.nn.init`, multiplying
  the scheme's standard deviation) × activation × depth, trained with the same optimizer and
  steps. For one (activation, depth) every scheme, gain and seed share the architecture, so they
  train as one population (E = schemes · gains · seeds) through a :class:`DivergenceGuard`, so a
  member whose weights overflow is recorded as diverged instead of stopping the others.
- :func:`signal_stats`: at initialization, per layer, the standard deviation of the
  pre-activations on a probe batch (forward signal) and the norms of the weight gradients and of
  ∂loss/∂(layer input) (backward signal).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._validate import check_choice, check_positive_int
from ..memorization._runs import (ACTIVATIONS, DivergenceGuard, blas_threads_limit,
                                 classification_data, diverged, member_seeds, mlp)
from ..nn.init import SCHEMES
from ..results import Result
from ..seeds import Seeds, as_seeds

DEFAULT_SCHEMES = ("lecun_normal", "glorot_normal", "he_normal", "orthogonal")
DEFAULT_GAINS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
DEFAULT_DEPTHS = (2, 4, 8)


def _check_list(values, name, choices=None, positive=True):
    vals = [values] if isinstance(values, (str, int, float)) else list(values)
    if not vals:
        raise ValueError(f"{name} is empty")
    for v in vals:
        if choices is not None:
            check_choice(v, choices, name[:-1] if name.endswith("s") else name)
        elif positive and not (isinstance(v, (int, float, np.integer, np.floating))
                               and np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must hold positive finite numbers, got {v!r}")
    return vals


@dataclasses.dataclass
class InitSweepResult(Result):
    """Outcomes of the scheme × gain × activation × depth sweep.

    Attributes:
        schemes [A], gains [G], acts [2], depths [D]: the axes.
        train_loss, train_acc, test_acc: [acts, D, A, G, S] after training (NaN loss where
            diverged; accuracy of a diverged member is set to the chance level ``chance``).
        diverged: [acts, D, A, G, S] bool, θ became non-finite during training.
        chance: accuracy of always predicting the most frequent test class.
    """

    schemes: list
    gains: np.ndarray
    acts: list
    depths: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    diverged: np.ndarray
    chance: float = 0.1

    def learned(self, margin: float = 0.1) -> np.ndarray:
        """[acts, D, A, G] bool: mean test accuracy above ``chance + margin``."""
        return self.test_acc.mean(axis=-1) > self.chance + margin

    def cell(self, act: str, depth: int, scheme: str, gain: float) -> dict:
        """Mean outcome of one cell."""
        i = (self.acts.index(act), list(self.depths).index(depth), self.schemes.index(scheme),
             int(np.argmin(np.abs(np.log(self.gains) - np.log(gain)))))
        loss = float(np.nanmean(self.train_loss[i])) if not self.diverged[i].all() else float("nan")
        return {"test_acc": float(self.test_acc[i].mean()), "train_acc": float(self.train_acc[i].mean()),
                "train_loss": loss, "diverged": float(self.diverged[i].mean())}

    def draw(self, fig, metric: str = "test_acc") -> None:
        """Outcome maps: rows = activation, columns = scheme; gain across, depth up."""
        check_choice(metric, ("test_acc", "train_acc", "train_loss"), "metric")
        vals = getattr(self, metric)
        if metric == "train_loss":     # mean over the seeds that did not diverge (NaN if none)
            ok = np.isfinite(vals)
            m = np.where(ok, vals, 0).sum(-1) / np.where(ok.any(-1), ok.sum(-1), np.nan)
        else:
            m = vals.mean(axis=-1)
        if metric == "train_loss":
            m = np.log10(np.where(np.isfinite(m), m, np.nan))
        vmin, vmax = (0, 1) if metric != "train_loss" else (np.nanmin(m), np.nanmax(m))
        fig.set_size_inches(2.6 * len(self.schemes) + 1, 2.3 * len(self.acts) + 0.4)
        axes = np.atleast_2d(fig.subplots(len(self.acts), len(self.schemes), squeeze=False))
        im = None
        for a, act in enumerate(self.acts):
            for s, scheme in enumerate(self.schemes):
                ax = axes[a, s]
                im = ax.imshow(m[a, :, s, :], origin="lower", aspect="auto", vmin=vmin, vmax=vmax,
                               cmap="viridis")
                div = self.diverged[a, :, s].mean(axis=-1)
                for d, g in zip(*np.nonzero(div > 0.5)):
                    ax.text(g, d, "×", ha="center", va="center", color="w", fontsize=10)
                ax.set_xticks(range(len(self.gains)), [f"{g:g}" for g in self.gains], fontsize=7)
                ax.set_yticks(range(len(self.depths)), [str(d) for d in self.depths], fontsize=7)
                ax.set_title(f"{scheme} · {act}", fontsize=8)
                if a == len(self.acts) - 1:
                    ax.set_xlabel("gain (× scheme std)", fontsize=8)
                if s == 0:
                    ax.set_ylabel("hidden layers", fontsize=8)
        label = {"test_acc": "test accuracy", "train_acc": "train accuracy",
                 "train_loss": "log10 train loss"}[metric]
        fig.colorbar(im, ax=axes.ravel().tolist(), label=label + " (× = diverged)")

    def _plot(self, fig) -> None:
        self.draw(fig, "test_acc")


def init_sweep(ds=None, schemes=DEFAULT_SCHEMES, gains=DEFAULT_GAINS, acts=ACTIVATIONS,
               depths=DEFAULT_DEPTHS, *, width: int = 32, n_train: int | None = 1000,
               n_test: int | None = None, n_seeds: int = 1, seeds=None, optimizer=None,
               steps: int = 300, batch_size: int = 100, progress: bool = False,
               backend: str | None = None) -> InitSweepResult:
    """Train ``width``-wide MLPs from every scheme × gain, for each activation and depth.

    Args:
        ds: classification Dataset (default MNIST-1D; first ``n_train`` training examples).
        schemes: init schemes of :mod:`pyquirk.nn.init`; gains: multipliers of their std.
        acts: ``"relu"``/``"tanh"``; depths: numbers of hidden layers.
        width: hidden width; n_seeds, seeds: runs per cell (run s shifts every stream by s).
        optimizer: default ``SGD(0.05, momentum=0.9)``; steps, batch_size: training length.

    Returns:
        :class:`InitSweepResult`.
    """
    from ..train import SGD, fit

    t0 = time.perf_counter()
    schemes = _check_list(schemes, "schemes", SCHEMES)
    gains = np.asarray(_check_list(gains, "gains"), dtype=float)
    acts = _check_list(acts, "acts", ACTIVATIONS)
    depths = np.asarray([check_positive_int(d, "depth") for d in _check_list(depths, "depths")])
    ds, X, Xt = classification_data(ds, n_train, n_test)
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    opt = optimizer if optimizer is not None else SGD(0.05, momentum=0.9)
    A, G, S = len(schemes), len(gains), len(runs)
    shape = (len(acts), len(depths), A, G, S)
    out = {k: np.zeros(shape) for k in ("train_loss", "train_acc", "test_acc")}
    div = np.zeros(shape, dtype=bool)
    chance = float(np.bincount(ds.y_test, minlength=ds.n_classes).max() / ds.n_test)
    from tqdm.auto import tqdm
    cells = [(a, d) for a in range(len(acts)) for d in range(len(depths))]
    for a, d in tqdm(cells, desc="init sweep", disable=not progress, leave=False):
        net = mlp(X.shape[1], [width] * int(depths[d]), ds.n_classes, acts[a])
        theta0 = np.stack([net.init(r, scheme=sc, gain=float(g))
                           for sc in schemes for g in gains for r in runs])     # [A·G·S, P]
        guard = DivergenceGuard(net)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = fit(guard, theta0, X, ds.y_train, opt, steps=steps, batch_size=batch_size,
                      seeds=runs * (A * G), eval_every=steps, backend=backend)
            bad = diverged(res.theta)
            test = guard.logits(res.theta, Xt, backend=backend).argmax(-1) == ds.y_test
        out["train_loss"][a, d] = np.where(bad, np.nan, res.history["train_loss"][-1]).reshape(A, G, S)
        out["train_acc"][a, d] = np.where(bad, chance, res.history["train_acc"][-1]).reshape(A, G, S)
        out["test_acc"][a, d] = np.where(bad, chance, test.mean(-1)).reshape(A, G, S)
        div[a, d] = bad.reshape(A, G, S)
    semantics = {"dataset": ds.to_dict(), "width": width, "optimizer": opt.config(), "steps": steps,
                 "batch_size": batch_size, "gain": "multiplies the scheme's std (pyquirk.nn.init)",
                 "population": "one per (activation, depth): member = (scheme, gain, seed), "
                               "seed fastest; run s uses member_seeds(seeds, S)[s]",
                 "diverged": "θ non-finite at the end; its accuracy is recorded as the chance level",
                 "chance": "frequency of the most common test class"}
    return InitSweepResult(schemes=list(schemes), gains=gains, acts=list(acts), depths=depths,
                           diverged=div, chance=chance, **out, semantics=semantics,
                           seeds={"base": base.to_dict(), "runs": [r.to_dict() for r in runs]},
                           counts={"populations": len(cells), "members": A * G * S,
                                   "wall_time_s": time.perf_counter() - t0})


# ---------------------------------------------------------------------------------------------
# signal statistics at initialization
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SignalStatsResult(Result):
    """Per-layer signal sizes at initialization, for each activation × scheme × gain.

    Attributes:
        forward_std: [acts, A, G, L] std of each Dense layer's output (pre-activation) over the
            probe batch and units (layer L is the logits).
        grad_norm: [acts, A, G, L] Frobenius norm of each Dense layer's weight gradient.
        backward_rms: [acts, A, G, L] RMS of ∂loss/∂(Dense layer's output) (the backpropagated
            signal), per example (the loss is the batch mean, so this is scaled by N).
        All averaged over the seeds.
    """

    schemes: list
    gains: np.ndarray
    acts: list
    depth: int
    forward_std: np.ndarray
    grad_norm: np.ndarray
    backward_rms: np.ndarray

    def _plot(self, fig) -> None:
        fig.set_size_inches(10.0, 6.0)
        axes = fig.subplots(2, len(self.acts), squeeze=False)
        layers = np.arange(1, self.forward_std.shape[-1] + 1)
        one = int(np.argmin(np.abs(np.log(self.gains))))
        for a, act in enumerate(self.acts):
            for s, scheme in enumerate(self.schemes):
                for g in {0, one, len(self.gains) - 1}:
                    ls = "-" if g == one else (":" if g == 0 else "--")
                    lab = f"{scheme} ×{self.gains[g]:g}" if (g == one or s == 0) else None
                    axes[0, a].plot(layers, self.forward_std[a, s, g], ls=ls, color=f"C{s}", label=lab)
                    axes[1, a].plot(layers, self.grad_norm[a, s, g], ls=ls, color=f"C{s}")
            axes[0, a].set(yscale="log", title=f"{act}: forward std of pre-activations",
                           xlabel="layer")
            axes[1, a].set(yscale="log", title=f"{act}: weight-gradient norm", xlabel="layer")
            for ax in axes[:, a]:
                ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=6, ncol=2)


def signal_stats(ds=None, schemes=DEFAULT_SCHEMES, gains=DEFAULT_GAINS, acts=ACTIVATIONS, *,
                 depth: int = 10, width: int = 64, n_probe: int = 500, n_seeds: int = 2,
                 seeds=None, blas_threads: int | None = 1) -> SignalStatsResult:
    """Forward and backward signal per layer at init, on ``n_probe`` training examples.

    Uses the reference layers directly (``layer.forward``/``layer.vjp``) in float64, so the
    statistics are exact and do not overflow for the gains swept here. ``blas_threads``: see
    :func:`pyquirk.memorization._runs.blas_threads_limit` (None leaves the BLAS pools alone).
    """
    schemes = _check_list(schemes, "schemes", SCHEMES)
    gains = np.asarray(_check_list(gains, "gains"), dtype=float)
    acts = _check_list(acts, "acts", ACTIVATIONS)
    depth = check_positive_int(depth, "depth")
    ds, X, _ = classification_data(ds, None, None)
    n_probe = check_positive_int(n_probe, "n_probe")
    if n_probe > ds.n_train:
        raise ValueError(f"n_probe={n_probe} but the data set has {ds.n_train} training examples")
    X, y = X[:n_probe].astype(np.float64), ds.y_train[:n_probe]
    runs = member_seeds(seeds, n_seeds)
    A, G, S, L = len(schemes), len(gains), len(runs), depth + 1
    fwd, gn, bwd = (np.zeros((len(acts), A, G, L)) for _ in range(3))
    for a, act in enumerate(acts):
        net = mlp(X.shape[1], [width] * depth, ds.n_classes, act)
        theta = np.stack([net.init(r, scheme=sc, gain=float(g), dtype=np.float64)
                          for sc in schemes for g in gains for r in runs])      # [A·G·S, P]
        with np.errstate(over="ignore", invalid="ignore"), blas_threads_limit(blas_threads):
            f, w, b = _layer_signals(net, theta, X, y)
        for arr, v in ((fwd, f), (gn, w), (bwd, b)):
            arr[a] = v.reshape(A, G, S, L).mean(axis=2)
    return SignalStatsResult(schemes=list(schemes), gains=gains, acts=list(acts), depth=depth,
                             forward_std=fwd, grad_norm=gn, backward_rms=bwd,
                             semantics={"width": width, "depth": depth, "n_probe": n_probe,
                                        "dtype": "float64", "loss": "mean cross-entropy"},
                             seeds={"runs": [r.to_dict() for r in runs]})


def _layer_signals(net, theta, X, y):
    """Per Dense layer: output std [E, L], weight-grad norm [E, L], output-cotangent RMS [E, L]."""
    params = net.layer_params(theta)
    x, caches, dense = X[None], [], []
    fwd = []
    for i, (layer, p) in enumerate(zip(net.layers, params)):
        x, cache = layer.forward(p, x)
        caches.append(cache)
        if p:
            dense.append(i)
            fwd.append(x.std(axis=(-2, -1)))
    g = net.loss_fn.grad(x, y[None], 1.0 / x.shape[-2])
    gnorm, brms = {}, {}
    for i in reversed(range(len(net.layers))):
        if i in dense:
            brms[i] = np.sqrt((g ** 2).sum(axis=-1).mean(axis=-1)) * x.shape[-2]
        g, grads = net.layers[i].vjp(params[i], caches[i], g, need_gx=i > 0)
        if i in dense:
            gnorm[i] = np.sqrt((grads[0] ** 2).sum(axis=(-2, -1)))
    return (np.stack(fwd, -1), np.stack([gnorm[i] for i in dense], -1),
            np.stack([brms[i] for i in dense], -1))


__all__ = ["DEFAULT_SCHEMES", "DEFAULT_GAINS", "DEFAULT_DEPTHS", "InitSweepResult", "init_sweep",
           "SignalStatsResult", "signal_stats"]
