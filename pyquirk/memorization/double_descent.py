"""Over-parameterisation: test error against width at a stated label-noise level (double descent).

Belkin et al. (2019) and Nakkiran et al. (2019): as a model grows past the size at which it can
just fit (interpolate) its noisy training set, test error first rises to a peak at that
interpolation threshold, then falls again. Two models of width h, both two-layer
(``d → h → C``, ReLU), on the same noisy labels (:class:`~pyquirk.data.corruptions.PartialLabels`
with p = ``noise``; test labels true):

- ``"random_features"`` (Belkin's random-feature networks): the first layer is random and fixed,
  ``φ(x) = ReLU(W x)`` with ``W: [h, d]`` drawn N(0, 1/d) from the ``init`` stream (the widths of one
  seed are nested: width h uses the first h rows of one ``W``); the output layer ``A: [h, C]`` is
  trained to convergence on one-hot targets by least squares. From a zero start, gradient descent
  on the squared loss converges to the minimum-norm solution ``A = Φ⁺ Y``, which we compute
  directly (SVD, float64). Each of the C outputs is then a regression with h parameters on N
  equations, so the interpolation threshold is exactly ``h = N`` (``N·C`` trainable parameters).
  Milliseconds per width.
- ``"mlp"``: every layer trained by :func:`pyquirk.train.fit` (Adam, full batch by default, a
  fixed number of steps, no early stopping or regularisation), cross-entropy or MSE; one
  population over seeds per width (widths have different P, so they cannot share one θ).

``n_params`` is the trainable parameter count: ``h·C`` for random features, ``(d+1)·h + (h+1)·C``
for the MLP. The plot marks ``n_params = N`` and ``N·C``.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._validate import check_choice, check_fraction, check_positive_int
from ..results import Result
from ..seeds import Seeds, as_seeds
from ._runs import blas_threads_limit, init_population, member_seeds, mlp, stack_members

MODELS = ("random_features", "mlp")
#: default widths per model, for the default n_train = 500 (random features cross h = N = 500)
DEFAULT_WIDTHS = {
    "random_features": (10, 25, 50, 100, 200, 300, 400, 450, 500, 550, 600, 700, 850, 1000, 1500,
                        2000, 4000),
    "mlp": (2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256),
}


@dataclasses.dataclass
class DoubleDescentResult(Result):
    """A width sweep.

    Attributes:
        model: ``"random_features"`` or ``"mlp"``; widths: [W] hidden widths h.
        n_params: [W] trainable parameters; n_train, n_classes: N and C; noise: label-noise p.
        train_error: [W, S] on the noisy training labels; test_error: [W, S] on true test labels.
        test_loss: [W, S] (squared error for random features, the training loss for the MLP).
    """

    model: str
    widths: np.ndarray
    n_params: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray
    test_loss: np.ndarray
    n_train: int = 0
    n_classes: int = 0
    noise: float = 0.0

    @property
    def peak(self) -> int:
        """Index of the width with the largest mean test error (beyond the smallest width)."""
        err = self.test_error.mean(axis=1)
        return int(np.argmax(err[1:]) + 1) if len(err) > 1 else 0

    @property
    def interpolation(self) -> int:
        """Index of the smallest width whose mean train error is 0 (−1 if none interpolates)."""
        hit = np.flatnonzero(self.train_error.mean(axis=1) == 0)
        return int(hit[0]) if hit.size else -1

    def summary(self) -> dict:
        """Peak and interpolation threshold, in widths and in parameters (and per N)."""
        k, i = self.peak, self.interpolation
        thr = None if i < 0 else {"width": int(self.widths[i]), "n_params": int(self.n_params[i]),
                                  "params_per_example": float(self.n_params[i] / self.n_train)}
        err = self.test_error.mean(axis=1)
        return {"peak_width": int(self.widths[k]), "peak_n_params": int(self.n_params[k]),
                "peak_params_per_example": float(self.n_params[k] / self.n_train),
                "peak_test_error": float(err[k]),
                "min_test_error_below_peak": float(err[:k].min()) if k else float("nan"),
                "final_test_error": float(err[-1]), "interpolation_threshold": thr}

    def _plot(self, fig) -> None:
        fig.set_size_inches(6.8, 4.0)
        ax = fig.subplots()
        x = self.n_params
        for key, color, lab in (("train_error", "C0", "train (noisy labels)"),
                                ("test_error", "C3", "test")):
            v = getattr(self, key)
            ax.errorbar(x, v.mean(axis=1), yerr=v.std(axis=1), color=color, marker="o", ms=3,
                        label=lab)
        for mult, ls in ((1, "--"), (self.n_classes, ":")):
            lab = "#params = N" if mult == 1 else "#params = N·C"
            ax.axvline(mult * self.n_train, color="0.4", ls=ls, lw=1, label=lab)
        if self.interpolation >= 0:
            ax.axvline(x[self.interpolation], color="C2", lw=1, alpha=0.7, label="interpolation")
        ax.set(xscale="log", xlabel="trainable parameters", ylabel="error", ylim=(0, 1),
               title=f"{self.model.replace('_', ' ')}: N={self.n_train}, label noise {self.noise:.0%}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def _check_widths(widths) -> np.ndarray:
    w = np.asarray(widths)
    if w.ndim != 1 or w.size == 0 or w.dtype.kind not in "iu" or (w < 1).any():
        raise ValueError(f"widths must be a non-empty list of positive integers, got {widths!r}")
    if (np.diff(w) <= 0).any():
        raise ValueError(f"widths must be strictly increasing, got {w.tolist()}")
    return w.astype(np.int64)


def double_descent(ds=None, widths=None, *, noise: float = 0.15, model: str = "random_features",
                   n_train: int | None = None, n_test: int | None = None, n_seeds: int = 3,
                   seeds=None, steps: int = 4000, optimizer=None, batch_size: int | None = None,
                   loss: str = "ce", blas_threads: int | None = 1, progress: bool = False,
                   backend: str | None = None) -> DoubleDescentResult:
    """Train width-h two-layer ReLU networks on labels with ``noise`` and record their errors.

    Args:
        ds: a classification Dataset (default MNIST-1D; its first ``n_train`` = 500 training
            examples and ``n_test`` test examples).
        widths: increasing hidden widths (default ``DEFAULT_WIDTHS[model]``).
        noise: label-noise level p in [0, 1] (``partial`` corruption of the training labels).
        model: ``"random_features"`` (closed form, fast) or ``"mlp"`` (every layer trained).
        n_seeds: S seeds per width; seeds: base Seeds (seed s shifts every stream by s: its
            ``init`` stream draws the weights, its ``corruption`` stream the noisy labels).
        steps, optimizer, batch_size, loss: MLP training (default Adam(3e-3), full batch, CE).
        blas_threads: BLAS threads for the random-feature solves (threadpoolctl; None leaves the
            pools alone). The solves are small: multi-threaded LAPACK on them was 100× slower
            than one thread on 2 loaded cores (docs/memorization.md).
        progress: progress bar over widths; backend: engine backend (MLP only).

    Raises:
        ValueError: an unknown model, ``noise`` outside [0, 1], bad widths, ``n_train`` larger
            than the data set.
    """
    from ..data.corruptions import PartialLabels

    t0 = time.perf_counter()
    check_choice(model, MODELS, "model")
    noise = check_fraction(noise, "noise")
    widths = _check_widths(DEFAULT_WIDTHS[model] if widths is None else widths)
    if ds is None:
        from ..data import mnist1d
        ds = mnist1d().subset(n_train=n_train or 500, n_test=n_test)
    elif n_train is not None or n_test is not None:
        ds = ds.subset(n_train=n_train, n_test=n_test)
    if ds.n_classes < 2:
        raise ValueError("double_descent needs a classification data set")
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    noisy = PartialLabels(noise)
    y_noisy = stack_members([noisy(ds, r).y_train for r in runs])               # [S, N]
    X = ds.X_train.reshape(ds.n_train, -1)
    Xt = ds.X_test.reshape(ds.n_test, -1)
    from tqdm.auto import tqdm
    bar = tqdm(widths, desc=f"double descent ({model})", disable=not progress, leave=False)
    if model == "random_features":
        with blas_threads_limit(blas_threads):
            out = _random_features(X, y_noisy, Xt, ds.y_test, ds.n_classes, widths, runs, bar)
        n_params = widths * ds.n_classes
        sem = {"features": "phi(x) = relu(W x), W [h, d] ~ N(0, 1/d) from the init stream; "
                           "nested across widths (first h rows of one W per seed)",
               "fit": "minimum-norm least squares on one-hot targets (numpy.linalg.lstsq, float64) "
                      "= gradient descent from zero on the output layer, run to convergence"}
    else:
        out = _mlp(X, y_noisy, Xt, ds.y_test, ds.n_classes, widths, runs, steps, optimizer,
                   batch_size, loss, backend, bar)
        n_params = np.array([mlp(X.shape[1], int(h), ds.n_classes).n_params for h in widths])
        sem = out.pop("semantics")
    semantics = {"dataset": ds.to_dict(), "noise": noise, "noise_rule": noisy.to_dict(),
                 "test_labels": "true", "model": model, "n_seeds": len(runs), **sem}
    return DoubleDescentResult(
        model=model, widths=widths, n_params=np.asarray(n_params, dtype=np.int64), **out,
        n_train=ds.n_train, n_classes=ds.n_classes, noise=noise, semantics=semantics,
        seeds={"base": base.to_dict(), "runs": [r.to_dict() for r in runs]},
        counts={"fits": len(widths) * len(runs), "wall_time_s": time.perf_counter() - t0})


def _random_features(X, Y, Xt, yt, C, widths, runs, bar) -> dict:
    """Min-norm least squares on nested random ReLU features, per seed and width."""
    W_, S = len(widths), len(runs)
    tr, te, tl = (np.zeros((W_, S)) for _ in range(3))
    X64, Xt64, T = X.astype(np.float64), Xt.astype(np.float64), np.eye(C)
    proj = [r.rng("init").standard_normal((X.shape[1], widths[-1])) / np.sqrt(X.shape[1]) for r in runs]
    for i, h in enumerate(bar):
        for s in range(S):
            F, Ft = np.maximum(X64 @ proj[s][:, :h], 0), np.maximum(Xt64 @ proj[s][:, :h], 0)
            A = np.linalg.lstsq(F, T[Y[s]], rcond=None)[0]                   # [h, C]
            zt = Ft @ A
            tr[i, s] = np.mean((F @ A).argmax(1) != Y[s])
            te[i, s] = np.mean(zt.argmax(1) != yt)
            tl[i, s] = np.mean(((zt - T[yt]) ** 2).sum(1))
    return {"train_error": tr, "test_error": te, "test_loss": tl}


def _mlp(X, Y, Xt, yt, C, widths, runs, steps, optimizer, batch_size, loss, backend, bar) -> dict:
    """One population over seeds per width, trained for ``steps`` steps."""
    from ..train import Adam, fit
    steps = check_positive_int(steps, "steps")
    opt = optimizer if optimizer is not None else Adam(3e-3)
    B = len(X) if batch_size is None else check_positive_int(batch_size, "batch_size")
    W_, S = len(widths), len(runs)
    tr, te, tl = (np.zeros((W_, S)) for _ in range(3))
    for i, h in enumerate(bar):
        net = mlp(X.shape[1], int(h), C, loss=loss)
        res = fit(net, init_population(net, runs), X, Y, opt, steps=steps, batch_size=B,
                  seeds=runs, eval_every=steps, backend=backend)
        tr[i] = 1 - res.history["train_acc"][-1]
        te[i] = 1 - net.accuracy(res.theta, Xt, yt, backend=backend)
        tl[i] = net.loss(res.theta, Xt, yt, backend=backend)
    sem = {"optimizer": opt.config(), "steps": steps, "batch_size": B, "loss": loss,
           "init": "he_normal", "regularisation": "none", "early_stopping": "none"}
    return {"train_error": tr, "test_error": te, "test_loss": tl, "semantics": sem}


__all__ = ["MODELS", "DEFAULT_WIDTHS", "DoubleDescentResult", "double_descent"]
