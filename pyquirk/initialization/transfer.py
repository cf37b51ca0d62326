"""Starting points that are not random: transfer (Yosinski et al. 2014) and unsupervised
pre-training (Erhan et al. 2010).

:func:`transfer` — task A = classes 0..C/2−1, task B = the other classes (both relabelled from 0;
digits 0–4 and 5–9 on MNIST-1D). Base nets are trained on A. A net for B of the same
architecture then starts with its first n hidden layers (weights and biases) copied from a base
net and the rest drawn afresh; the copied layers are either frozen (Yosinski's AnB, via the
training mask) or fine-tuned (AnB+). n = 0 is the random-init baseline (Yosinski's "baseB").
All conditions × seeds train on B as ONE population, with per-member masks.

:func:`pretraining` — greedy layer-wise autoencoders: hidden layer l is the encoder of an
autoencoder ``h_{l−1} → act(W h_{l−1} + b) → V(·) + c`` (linear decoder, squared error) trained
on the previous layer's codes of the training inputs; the stacked encoders plus a fresh output
layer are then fine-tuned on the labels, against a random init trained the same way. Erhan et
al. report better test error and much lower variance across seeds with pre-training.

Seeds: run s uses ``member_seeds(seeds, S)[s]``; the base nets and autoencoders draw their init
from its ``init`` stream's sub-stream 1 (``rng("init", member=1)``), the B nets' fresh layers and
the random-init baselines from its ``init`` stream itself, so a condition and its baseline differ
only in the layers that were copied or pre-trained.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._validate import check_positive_int
from ..memorization._runs import classification_data, init_population, member_seeds, mlp
from ..results import Result
from ..seeds import Seeds, as_seeds


def _dense_slices(net) -> list[np.ndarray]:
    """Per Dense layer (in order), a bool [P] mask of its weight and bias."""
    out = []
    for i, layer in enumerate(net.layers):
        if layer.param_shapes:
            out.append(net.param_mask([str(i)]))
    return out


def _split_tasks(ds):
    half = ds.n_classes // 2
    a = ds.subset(classes=list(range(half)), relabel=True)
    b = ds.subset(classes=list(range(half, 2 * half)), relabel=True)
    return a, b, half


@dataclasses.dataclass
class TransferResult(Result):
    """Yosinski's transfer experiment.

    Attributes:
        n_layers: [K] copied hidden layers per condition (0 = random-init baseline).
        frozen: [K] bool, copied layers frozen (AnB) or fine-tuned (AnB+).
        test_acc, train_acc: [K, S] on task B after training; base_test_acc: [S] of the base
            nets on task A.
        theta: [K, S, P] final parameters on task B; base_theta: [S, P] the task-A nets.
    """

    n_layers: np.ndarray
    frozen: np.ndarray
    test_acc: np.ndarray
    train_acc: np.ndarray
    base_test_acc: np.ndarray
    theta: np.ndarray | None = None
    base_theta: np.ndarray | None = None

    def curve(self, frozen: bool) -> tuple[np.ndarray, np.ndarray]:
        """(n [L+1], test accuracy [L+1, S]) for AnB (``frozen``) or AnB+, n = 0 the baseline."""
        rows = [0] + [k for k in range(len(self.n_layers))
                      if self.n_layers[k] > 0 and self.frozen[k] == frozen]
        return self.n_layers[rows], self.test_acc[rows]

    def _plot(self, fig) -> None:
        fig.set_size_inches(6.0, 3.8)
        ax = fig.subplots()
        for frozen, c, lab in ((True, "C3", "AnB (copied, frozen)"),
                               (False, "C0", "AnB+ (copied, fine-tuned)")):
            n, acc = self.curve(frozen)
            ax.errorbar(n, acc.mean(1), yerr=acc.std(1), color=c, marker="o", capsize=3, label=lab)
        base = self.test_acc[0]
        ax.axhspan(base.mean() - base.std(), base.mean() + base.std(), color="0.8", alpha=0.5)
        ax.axhline(base.mean(), color="0.3", lw=1, label="random init (baseB)")
        ax.set(xlabel="layers copied from the task-A net (n)", ylabel="task-B test accuracy",
               title="Transfer A → B (Yosinski et al. 2014)")
        ax.set_xticks(sorted(set(self.n_layers.tolist())))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def transfer(ds=None, *, hidden=(64, 64, 64), act: str = "relu", n_train_a: int | None = 1000,
             n_train_b: int | None = 300, n_seeds: int = 3, seeds=None, optimizer=None,
             steps: int = 400, base_steps: int = 600, batch_size: int = 50,
             progress: bool = False, backend: str | None = None) -> TransferResult:
    """Copy the first n hidden layers of nets trained on task A into nets for task B.

    Args:
        ds: classification Dataset with an even number of classes (default MNIST-1D).
        hidden, act: the MLP (same for A and B, with C/2 outputs).
        n_train_a, n_train_b: training examples of task A and B (None keeps all).
        n_seeds, seeds: runs per condition; optimizer: default ``Adam(1e-3)``.
        steps: training steps on B; base_steps: on A.

    Returns:
        :class:`TransferResult` with K = 2·L + 1 conditions (baseline, then for n = 1..L the
        frozen and fine-tuned variants).
    """
    from ..train import Adam, fit

    t0 = time.perf_counter()
    ds, _, _ = classification_data(ds, None, None)
    if ds.n_classes % 2:
        raise ValueError(f"transfer splits the classes in two halves; got {ds.n_classes} classes")
    task_a, task_b, C = _split_tasks(ds)
    task_a = task_a.subset(n_train=min(n_train_a or task_a.n_train, task_a.n_train))
    task_b = task_b.subset(n_train=n_train_b) if n_train_b is not None else task_b
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    opt = optimizer if optimizer is not None else Adam(1e-3)
    flat = lambda X: X.reshape(len(X), -1)  # noqa: E731
    net = mlp(flat(ds.X_train).shape[1], hidden, C, act)
    L = len(net.layers) // 2
    layers = _dense_slices(net)

    theta_a0 = np.stack([net.init(r.rng("init", member=1)) for r in runs])
    kw = dict(batch_size=batch_size, backend=backend, progress=progress)
    base_run = fit(net, theta_a0, flat(task_a.X_train), task_a.y_train, opt, steps=base_steps,
                   seeds=runs, eval_every=base_steps, **kw)
    base_acc = net.accuracy(base_run.theta, flat(task_a.X_test), task_a.y_test, backend=backend)

    fresh = init_population(net, runs)                                      # [S, P]
    conds = [(0, False)] + [(n, fz) for n in range(1, L + 1) for fz in (True, False)]
    theta0, mask = [], []
    for n, fz in conds:
        copied = np.zeros(net.n_params, dtype=bool)
        for sl in layers[:n]:
            copied |= sl
        theta0.append(np.where(copied, base_run.theta, fresh))
        mask.append(np.broadcast_to(~(copied & fz), fresh.shape))
    theta0, mask = np.concatenate(theta0), np.concatenate(mask)
    K, S = len(conds), len(runs)
    res = fit(net, theta0, flat(task_b.X_train), task_b.y_train, opt, steps=steps,
              seeds=runs * K, mask=mask, eval_every=steps, **kw)
    test = net.accuracy(res.theta, flat(task_b.X_test), task_b.y_test, backend=backend)
    semantics = {"task_a": f"classes 0..{C - 1}", "task_b": f"classes {C}..{2 * C - 1} (relabelled)",
                 "n_train_a": task_a.n_train, "n_train_b": task_b.n_train, "n_test_b": task_b.n_test,
                 "net": repr(net), "optimizer": opt.config(), "steps_b": steps, "steps_a": base_steps,
                 "batch_size": batch_size, "copied": "weights and biases of hidden layers 1..n",
                 "frozen": "training mask False on the copied layers",
                 "member_rule": "member e = k·S + s: condition k, run s"}
    return TransferResult(n_layers=np.array([c[0] for c in conds]), frozen=np.array([c[1] for c in conds]),
                          test_acc=np.asarray(test, dtype=float).reshape(K, S),
                          train_acc=np.asarray(res.history["train_acc"][-1], dtype=float).reshape(K, S),
                          base_test_acc=np.asarray(base_acc, dtype=float),
                          theta=res.theta.reshape(K, S, -1), base_theta=base_run.theta, semantics=semantics,
                          seeds={"base": base.to_dict(), "runs": [r.to_dict() for r in runs]},
                          counts={"members": K * S, "wall_time_s": time.perf_counter() - t0})


# ---------------------------------------------------------------------------------------------
# greedy layer-wise autoencoder pre-training
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PretrainResult(Result):
    """Pre-trained against random init.

    Attributes:
        test_acc, train_acc: [2, S]; row 0 random init, row 1 pre-trained.
        recon_loss: [L, S] final reconstruction error of each layer's autoencoder.
        levene_p: p-value of Levene's test (Brown–Forsythe, median-centred) for equal variances
            of the test accuracies; welch_p: Welch's t-test for equal means.
    """

    test_acc: np.ndarray
    train_acc: np.ndarray
    recon_loss: np.ndarray
    levene_p: float = float("nan")
    welch_p: float = float("nan")

    def _plot(self, fig) -> None:
        fig.set_size_inches(5.0, 3.6)
        ax = fig.subplots()
        for i, (lab, c) in enumerate((("random init", "C0"), ("pre-trained", "C1"))):
            v = self.test_acc[i]
            ax.scatter(np.full(len(v), i) + np.linspace(-0.08, 0.08, len(v)), v, color=c, s=14)
            ax.errorbar(i + 0.2, v.mean(), yerr=v.std(), color=c, marker="o", capsize=4)
        ax.set_xticks([0, 1], ["random init", "AE pre-trained"])
        ax.set(ylabel="test accuracy", title=f"Erhan et al. 2010: std {self.test_acc[0].std():.3f} "
               f"vs {self.test_acc[1].std():.3f}")
        ax.grid(alpha=0.3)


def pretraining(ds=None, *, hidden=(64,) * 5, act: str = "tanh", n_train: int | None = 500,
                n_test: int | None = None, n_seeds: int = 6, seeds=None, optimizer=None,
                steps: int = 400, pretrain_steps: int = 300, batch_size: int = 50,
                progress: bool = False, backend: str | None = None) -> PretrainResult:
    """Greedy layer-wise autoencoder pre-training vs random init (same fine-tuning).

    Args:
        ds: classification Dataset (default MNIST-1D, first ``n_train`` training examples).
        hidden, act: the MLP; each hidden layer is pre-trained as an autoencoder's encoder.
        n_seeds, seeds: runs; optimizer: default ``SGD(0.05, momentum=0.9)`` for every phase.
        steps: supervised fine-tuning steps; pretrain_steps: per autoencoder.
    """
    from scipy import stats

    from ..nn import Dense, Net, ReLU, Tanh
    from ..train import SGD, fit

    t0 = time.perf_counter()
    ds, X, Xt = classification_data(ds, n_train, n_test)
    base = Seeds() if seeds is None else as_seeds(seeds)
    runs = member_seeds(base, n_seeds)
    opt = optimizer if optimizer is not None else SGD(0.05, momentum=0.9)
    net = mlp(X.shape[1], hidden, ds.n_classes, act)
    dense = _dense_slices(net)
    S = len(runs)
    kw = dict(batch_size=batch_size, backend=backend, progress=progress)
    pre = init_population(net, runs)                                         # output layer: fresh
    codes = np.broadcast_to(X, (S,) + X.shape)                               # [S, N, d]
    recon = []
    for l, h in enumerate(hidden):
        h = check_positive_int(h, f"hidden[{l}]")
        ae = Net([Dense(h), ReLU() if act == "relu" else Tanh(), Dense(codes.shape[-1])],
                 input_shape=(codes.shape[-1],), loss="mse")
        th = np.stack([ae.init(r.rng("init", member=1 + l)) for r in runs])
        res = fit(ae, th, np.ascontiguousarray(codes), np.ascontiguousarray(codes), opt,
                  steps=pretrain_steps, seeds=runs, eval_every=pretrain_steps, **kw)
        recon.append(res.history["train_loss"][-1])
        enc = res.theta[:, :h * codes.shape[-1] + h]                           # encoder W, b
        pre[:, dense[l]] = enc
        W = enc[:, :-h].reshape(S, h, codes.shape[-1])
        z = codes @ np.swapaxes(W, 1, 2) + enc[:, None, -h:]
        codes = np.maximum(z, 0) if act == "relu" else np.tanh(z)
    theta0 = np.concatenate([init_population(net, runs), pre])               # [2S, P]
    res = fit(net, theta0, X, ds.y_train, opt, steps=steps, seeds=runs * 2, eval_every=steps, **kw)
    test = np.asarray(net.accuracy(res.theta, Xt, ds.y_test, backend=backend), dtype=float).reshape(2, S)
    lev = stats.levene(test[0], test[1], center="median").pvalue if S > 2 else float("nan")
    welch = stats.ttest_ind(test[0], test[1], equal_var=False).pvalue if S > 1 else float("nan")
    semantics = {"dataset": ds.to_dict(), "net": repr(net), "optimizer": opt.config(),
                 "steps": steps, "pretrain_steps": pretrain_steps, "batch_size": batch_size,
                 "autoencoder": "encoder Dense(h)+act, linear decoder, squared error, on the "
                                "previous layer's codes of the training inputs (no labels)",
                 "rows": ["random init", "pre-trained"],
                 "tests": "scipy.stats.levene(center='median') and ttest_ind(equal_var=False)"}
    return PretrainResult(test_acc=test,
                          train_acc=np.asarray(res.history["train_acc"][-1], dtype=float).reshape(2, S),
                          recon_loss=np.asarray(recon, dtype=float), levene_p=float(lev),
                          welch_p=float(welch), semantics=semantics,
                          seeds={"base": base.to_dict(), "runs": [r.to_dict() for r in runs]},
                          counts={"members": 2 * S, "wall_time_s": time.perf_counter() - t0})


__all__ = ["TransferResult", "transfer", "PretrainResult", "pretraining"]
