"""Example order: early examples matter more than late ones (Erhan et al. 2010), and curricula.

:func:`order_sensitivity` — for each init seed i (θ₀ fixed), a base example stream (one
permutation per epoch, from the ``order`` stream) is trained R times with ONLY the order of its
first k examples changed (the early set: positions 0..k−1 of epoch 0, re-permuted among
themselves), and R times with only its last k changed (the late set: the last k positions of the
last epoch). Same examples, same init, same everything else. The variance of the final function
is then measured on a fixed probe set (test examples chosen by the ``probes`` stream):

- logit variance: ``mean_{m,c} Var_r z_r[m, c]`` (unbiased, over the R runs);
- disagreement: mean over pairs of runs of the fraction of probes whose arg-max differs;
- per-run deviation ``d_r = mean_{m,c} (z_r[m, c] − z̄[m, c])²`` from the condition's mean
  function; early vs late deviations (pooled over init seeds) are compared with a one-sided
  Mann–Whitney U test (``scipy.stats.mannwhitneyu(alternative="greater")``), runs being
  independent samples.

All I init seeds × 2 conditions × R runs train as ONE population, orders given per member.

:func:`curriculum` — easy-to-hard, hard-to-easy and random orders with everything else fixed
(the same init seeds, data and hyper-parameters): difficulty is a reference model's held-out
loss (2-fold cross-fitting: a net trained on each half scores the other half). The ordered
curricula present the examples sorted by difficulty in every epoch; ``random`` draws a fresh
permutation per epoch from the ``order`` stream. Test accuracies are compared with a paired
t-test against random (pairs share the init seed).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from ._validate import check_choice, check_positive_int
from .memorization._runs import classification_data, member_seeds, mlp
from .results import Result
from .seeds import Seeds, as_seeds, stream

CONDITIONS = ("early", "late")
CURRICULA = ("random", "easy_to_hard", "hard_to_easy")


def base_stream(seed: Seeds, n: int, epochs: int) -> np.ndarray:
    """int64 ``[epochs, n]``: one ``permutation(n)`` per epoch from ``seed.rng("order")``."""
    rng = seed.rng("order")
    return np.stack([rng.permutation(n) for _ in range(epochs)])


def vary_segment(order: np.ndarray, which: str, k: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``order [epochs, N]`` with its first (``"early"``) or last (``"late"``) k
    positions of the run re-permuted among themselves; each epoch stays a permutation.

    Raises:
        ValueError: ``which`` unknown; ``k`` < 2 or larger than the data set (one epoch).
    """
    check_choice(which, CONDITIONS, "segment")
    n = order.shape[-1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not 2 <= k <= n:
        raise ValueError(f"k={k} must lie in [2, {n}] (the number of training examples)")
    out = order.copy()
    row, sl = (0, slice(0, k)) if which == "early" else (-1, slice(n - k, n))
    out[row, sl] = out[row, sl][rng.permutation(k)]
    return out


def probe_indices(seed: Seeds, n_test: int, n_probe: int) -> np.ndarray:
    """Sorted test indices ``[n_probe]`` drawn from ``seed.rng("probes")``."""
    n_probe = check_positive_int(n_probe, "n_probe")
    if n_probe > n_test:
        raise ValueError(f"n_probe={n_probe} but the test split has {n_test} examples")
    return np.sort(seed.rng("probes").permutation(n_test)[:n_probe])


def function_spread(z: np.ndarray) -> dict:
    """Spread of R runs' logits ``z: [R, M, C]``.

    Returns:
        ``{"logit_var": float, "disagreement": float, "deviation": [R]}`` (see the module doc).
    """
    R = z.shape[0]
    mean = z.mean(axis=0)
    pred = z.argmax(-1)                                                      # [R, M]
    iu = np.triu_indices(R, 1)
    dis = (pred[:, None, :] != pred[None, :, :]).mean(-1)[iu].mean() if R > 1 else 0.0
    return {"logit_var": float(z.var(axis=0, ddof=1).mean()) if R > 1 else 0.0,
            "disagreement": float(dis), "deviation": ((z - mean) ** 2).mean(axis=(1, 2))}


@dataclasses.dataclass
class OrderResult(Result):
    """Early-set vs late-set order variation.

    Attributes:
        k: size of the varied segment; n_runs: R per (init seed, condition).
        logit_var, disagreement: [I, 2] per init seed, columns (early, late).
        deviation: [I, 2, R] per-run squared deviation from the condition's mean function.
        test_acc: [I, 2, R]; p_value: one-sided Mann–Whitney U (early > late) on the pooled
            deviations; p_value_seeds: [I] the same test per init seed.
    """

    k: int
    n_runs: int
    logit_var: np.ndarray
    disagreement: np.ndarray
    deviation: np.ndarray
    test_acc: np.ndarray
    p_value: float
    p_value_seeds: np.ndarray

    @property
    def ratio(self) -> float:
        """Mean early logit variance over mean late logit variance."""
        return float(self.logit_var[:, 0].mean() / self.logit_var[:, 1].mean())

    def _plot(self, fig) -> None:
        fig.set_size_inches(8.0, 3.4)
        ax_v, ax_d = fig.subplots(1, 2)
        I = self.logit_var.shape[0]
        x = np.arange(I)
        for j, (cond, c) in enumerate(zip(CONDITIONS, ("C3", "C0"))):
            ax_v.bar(x + (j - 0.5) * 0.38, self.logit_var[:, j], 0.38, color=c,
                     label=f"{cond} {self.k} examples varied")
            ax_d.bar(x + (j - 0.5) * 0.38, self.disagreement[:, j], 0.38, color=c)
        ax_v.set(xlabel="init seed", ylabel="logit variance across runs",
                 title=f"final-function variance (MWU p = {self.p_value:.2g})")
        ax_d.set(xlabel="init seed", ylabel="prediction disagreement", title="disagreement on probes")
        for ax in (ax_v, ax_d):
            ax.set_xticks(x)
            ax.grid(alpha=0.3, axis="y")
        ax_v.legend(fontsize=7)


def order_sensitivity(ds=None, k: int = 200, *, n_runs: int = 8, n_init: int = 3,
                      hidden=(64, 64), act: str = "relu", n_train: int | None = 500,
                      epochs: int = 10, batch_size: int = 10, optimizer=None, n_probe: int = 500,
                      seeds=None, progress: bool = False, backend: str | None = None) -> OrderResult:
    """Erhan et al. (2010): vary only the first k or only the last k examples' order.

    Args:
        ds: classification Dataset (default MNIST-1D; its first ``n_train`` examples).
        k: size of the early and late sets (2 <= k <= n_train; k should span several batches,
            since permuting within one batch changes nothing but summation order).
        n_runs: R orders per condition; n_init: init seeds (run seeds ``member_seeds``).
        hidden, act, epochs, batch_size: the MLP and training; optimizer: default ``Adam(1e-3)``
            (with plain constant-rate SGD and short training the last steps dominate instead;
            see docs/initialization.md).
        n_probe: probe examples from the test split (``probes`` stream).

    Returns:
        :class:`OrderResult`.
    """
    from scipy import stats

    from .train import Adam, fit

    t0 = time.perf_counter()
    ds, X, Xt = classification_data(ds, n_train, None)
    epochs = check_positive_int(epochs, "epochs")
    R = check_positive_int(n_runs, "n_runs", minimum=2)
    vary_segment(np.arange(ds.n_train)[None], "early", k, np.random.default_rng(0))  # validates k
    base = Seeds() if seeds is None else as_seeds(seeds)
    inits = member_seeds(base, n_init)
    opt = optimizer if optimizer is not None else Adam(1e-3)
    net = mlp(X.shape[1], hidden, ds.n_classes, act)
    probes = probe_indices(base, ds.n_test, n_probe)
    theta0, orders = [], []
    for s in inits:
        th, stream0 = net.init(s), base_stream(s, ds.n_train, epochs)
        for c, cond in enumerate(CONDITIONS):
            for r in range(R):
                orders.append(vary_segment(stream0, cond, k, stream("order", s.order, 1 + c, r)))
                theta0.append(th)
    I = len(inits)
    res = fit(net, np.stack(theta0), X, ds.y_train, opt, epochs=epochs, batch_size=batch_size,
              order=np.stack(orders), eval_every=epochs * -(-ds.n_train // batch_size),
              progress=progress, backend=backend)
    z = net.logits(res.theta, Xt[probes], backend=backend).astype(np.float64)
    z = z.reshape(I, 2, R, len(probes), -1)
    acc = (z.argmax(-1) == ds.y_test[probes]).mean(-1)
    spread = [[function_spread(z[i, c]) for c in range(2)] for i in range(I)]
    dev = np.array([[sp["deviation"] for sp in row] for row in spread])     # [I, 2, R]
    mwu = lambda a, b: float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)  # noqa: E731
    semantics = {"dataset": ds.to_dict(), "net": repr(net), "optimizer": opt.config(),
                 "epochs": epochs, "batch_size": batch_size, "k": k,
                 "early": "positions 0..k-1 of epoch 0 re-permuted", "late":
                 "last k positions of the last epoch re-permuted", "probes": len(probes),
                 "test": "one-sided Mann-Whitney U on per-run deviations, early > late",
                 "member_rule": "member = (init seed i, condition c, run r), r fastest"}
    return OrderResult(
        k=int(k), n_runs=R, logit_var=np.array([[sp["logit_var"] for sp in row] for row in spread]),
        disagreement=np.array([[sp["disagreement"] for sp in row] for row in spread]),
        deviation=dev, test_acc=acc, p_value=mwu(dev[:, 0].ravel(), dev[:, 1].ravel()),
        p_value_seeds=np.array([mwu(dev[i, 0], dev[i, 1]) for i in range(I)]),
        semantics=semantics, seeds={"base": base.to_dict(), "inits": [s.to_dict() for s in inits]},
        counts={"members": len(theta0), "wall_time_s": time.perf_counter() - t0})


# ---------------------------------------------------------------------------------------------
# curricula
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class CurriculumResult(Result):
    """Curricula with the order as the only change.

    Attributes:
        curricula: [K] names; difficulty: [N] reference held-out loss per training example.
        steps: [T]; test_acc_curve: [T, K, S]; test_acc: [K, S] final.
        p_vs_random: [K] paired t-test p-values against ``random`` (NaN for random itself).
    """

    curricula: list
    difficulty: np.ndarray
    steps: np.ndarray
    test_acc_curve: np.ndarray
    test_acc: np.ndarray
    p_vs_random: np.ndarray

    def _plot(self, fig) -> None:
        fig.set_size_inches(6.4, 3.6)
        ax = fig.subplots()
        for k, name in enumerate(self.curricula):
            m = self.test_acc_curve[:, k].mean(-1)
            ax.plot(self.steps, m, color=f"C{k}", label=f"{name} ({self.test_acc[k].mean():.3f})")
            ax.fill_between(self.steps, m - self.test_acc_curve[:, k].std(-1),
                            m + self.test_acc_curve[:, k].std(-1), color=f"C{k}", alpha=0.2)
        ax.set(xlabel="step", ylabel="test accuracy", title="curricula (order is the only change)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def curriculum(ds=None, curricula=CURRICULA, *, n_seeds: int = 4, hidden=(64, 64),
               act: str = "relu", n_train: int | None = 1000, epochs: int = 10,
               batch_size: int = 50, optimizer=None, reference_steps: int = 300, seeds=None,
               progress: bool = False, backend: str | None = None) -> CurriculumResult:
    """Train the same nets (same init seeds) with different example orders.

    Args:
        curricula: names from ``CURRICULA``.
        reference_steps: training steps of each of the two cross-fitted reference nets.
        Others as :func:`order_sensitivity`; optimizer default ``SGD(0.05, momentum=0.9)``.
    """
    from scipy import stats

    from .train import SGD, fit

    t0 = time.perf_counter()
    curricula = [check_choice(c, CURRICULA, "curriculum") for c in
                 ([curricula] if isinstance(curricula, str) else list(curricula))]
    if not curricula:
        raise ValueError("curricula is empty")
    ds, X, Xt = classification_data(ds, n_train, None)
    epochs = check_positive_int(epochs, "epochs")
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    opt = optimizer if optimizer is not None else SGD(0.05, momentum=0.9)
    net = mlp(X.shape[1], hidden, ds.n_classes, act)
    difficulty = _cross_fitted_loss(net, X, ds.y_train, opt, reference_steps, batch_size, base, backend)
    easy = np.argsort(difficulty, kind="stable")
    orders = []
    for name in curricula:
        for s in runs:
            if name == "random":
                orders.append(base_stream(s, ds.n_train, epochs))
            else:
                row = easy if name == "easy_to_hard" else easy[::-1]
                orders.append(np.tile(row, (epochs, 1)))
    K, S = len(curricula), len(runs)
    theta0 = np.tile(np.stack([net.init(s) for s in runs]), (K, 1))
    nb = -(-ds.n_train // batch_size)
    res = fit(net, theta0, X, ds.y_train, opt, epochs=epochs, batch_size=batch_size,
              order=np.stack(orders), eval_data=(Xt, ds.y_test), eval_every=nb, progress=progress,
              backend=backend)
    curve = np.asarray(res.history["test_acc"], dtype=float).reshape(-1, K, S)
    final = curve[-1]
    ref = curricula.index("random") if "random" in curricula else None
    p = np.array([float("nan") if ref is None or k == ref or S < 2
                  else float(stats.ttest_rel(final[k], final[ref]).pvalue) for k in range(K)])
    semantics = {"dataset": ds.to_dict(), "net": repr(net), "optimizer": opt.config(),
                 "epochs": epochs, "batch_size": batch_size,
                 "difficulty": f"held-out cross-entropy of a reference net (2-fold cross-fitting, "
                               f"{reference_steps} steps each, init from the base seeds' init "
                               f"sub-stream 7)",
                 "ordered": "every epoch sorted by difficulty (ties by index)",
                 "random": "permutation per epoch from member_seeds[s].rng('order')",
                 "test": "scipy.stats.ttest_rel against random, pairs share the init seed"}
    return CurriculumResult(curricula=curricula, difficulty=difficulty,
                            steps=np.asarray(res.history["steps"]), test_acc_curve=curve,
                            test_acc=final, p_vs_random=p, semantics=semantics,
                            seeds={"base": base.to_dict(), "runs": [s.to_dict() for s in runs]},
                            counts={"members": K * S, "wall_time_s": time.perf_counter() - t0})


def _cross_fitted_loss(net, X, y, opt, steps, batch_size, base, backend) -> np.ndarray:
    """Per-example loss of a reference net that did not train on the example (2 folds)."""
    from .train import fit
    n = len(X)
    half = n // 2
    fold = np.zeros(n, dtype=np.int64)
    fold[base.rng("order", member=7).permutation(n)[half:]] = 1
    idx = [np.flatnonzero(fold == f) for f in (0, 1)]
    m = min(len(i) for i in idx)                  # equal sizes for per-member data
    Xs = np.stack([X[i[:m]] for i in idx])
    ys = np.stack([y[i[:m]] for i in idx])
    th = np.stack([net.init(base.rng("init", member=7)) for _ in range(2)])
    res = fit(net, th, Xs, ys, opt, steps=check_positive_int(steps, "reference_steps"),
              batch_size=batch_size, seeds=[base, base], eval_every=steps, backend=backend)
    loss = np.asarray(net.loss(res.theta, X, y, per_sample=True, backend=backend))   # [2, n]
    return np.where(fold == 0, loss[1], loss[0]).astype(np.float64)


__all__ = ["CONDITIONS", "CURRICULA", "base_stream", "vary_segment", "probe_indices",
           "function_spread", "OrderResult", "order_sensitivity", "CurriculumResult", "curriculum"]
