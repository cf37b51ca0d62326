"""Elastic weight consolidation (Kirkpatrick et al. 2017) and its online variant (Schwarz et al. 2018).

After task t the diagonal of the Fisher information at θ*_t is estimated from per-example
gradients of the task's head cross-entropy ``ℓ_n(θ) = −log p(y_n | x_n, θ)`` on n examples of the
task's training set:

    F_t = 1/n · Σ_n (∇θ ℓ_n(θ*_t))²                      (elementwise square, ``[P]``)

- ``fisher="true"`` (default): y_n is *sampled* from the model's own predictive distribution
  p(· | x_n, θ*_t) over the task's head — the Fisher information proper (a one-sample Monte-Carlo
  estimate of ``E_{y∼p} [(∇ log p)²]``);
- ``fisher="empirical"``: y_n is the true label (the "empirical Fisher", Martens 2020).

Examples and sampled labels come from the member's ``probes`` stream,
``stream("probes", seeds.probes, 0)``. The per-example gradients are ONE engine pass per chunk:
θ broadcast to ``[r, P]`` with per-member data ``X[:, None]`` ``[r, 1, D]`` (r rows = examples ×
members), so ``net.vjp`` returns the r per-example gradients ``[r, P]``.

Penalty while learning task t (added to the mean batch loss; λ = ``lam``):

- separate (Kirkpatrick et al.): ``λ/2 · Σ_{s<t} Σ_i F_{s,i} (θ_i − θ*_{s,i})²``, one anchor per task;
- online (Schwarz et al. 2018, §"online EWC"; Chaudhry et al.'s EWC++ uses the same running
  Fisher): ``F̃_s = γ·F̃_{s−1} + F_s`` and ``λ/2 · Σ_i F̃_{t−1,i} (θ_i − θ*_{t−1,i})²``, one
  anchor (the last θ*), γ ≤ 1 the decay (γ = 1: no decay).

Both run over every parameter (weights, biases, all heads; a head's Fisher is zero for the other
tasks' losses).
"""
from __future__ import annotations

import numpy as np

from ..._validate import check_choice, check_positive_int
from .base import Strategy

FISHER_KINDS = ("true", "empirical")


def fisher_diagonal(net, theta, X, y, lo, hi, *, kind: str = "true", rngs=None, chunk: int = 512,
                    backend: str | None = None, fused: bool = True):
    """Diagonal Fisher from per-example gradients of the head cross-entropy, one engine pass per chunk.

    Args:
        net: the network; theta: ``[E, P]`` (E members, each with its own examples).
        X: ``[E, n, D]`` examples per member; y: ``[E, n]`` true output indices (used by
            ``kind="empirical"``); lo, hi: ``[E, n]`` each example's head ``[lo, hi)``.
        kind: ``"true"`` (labels sampled from the model, needs ``rngs``) or ``"empirical"``.
        rngs: ``E`` Generators for the sampled labels (one draw ``rng.random(n)`` per member).
        chunk: rows (examples × members) per engine pass.
        fused: when every example has the same head, take the per-example gradients as one fused
            ``loss_and_grad`` on the head's :class:`~pyquirk.forgetting.loop.HeadView` (False: the
            reference path, logits → head cotangent → ``net.vjp``; the two agree, tested).

    Returns:
        ``(F [E, P], labels [E, n])``: the mean squared per-example gradients and the labels
        (output indices) they were taken at.
    """
    check_choice(kind, FISHER_KINDS, "fisher")
    from ..loop import head_view

    theta = np.asarray(theta)
    E, n = np.shape(y)
    chunk = check_positive_int(chunk, "chunk")
    Xf = np.asarray(X).reshape(E * n, 1, -1)
    y_f, lo_f, hi_f = (np.asarray(a, np.int64).reshape(-1) for a in (y, lo, hi))
    if kind == "true":
        if rngs is None or len(rngs) != E:
            raise ValueError("fisher='true' needs one Generator per member (rngs) to sample labels")
        u = np.concatenate([rng.random(n) for rng in rngs])                      # [E·n]
    view = None
    if fused and np.all(lo_f == lo_f[0]) and np.all(hi_f == hi_f[0]):
        view = head_view(net, int(lo_f[0]), int(hi_f[0]))
    # the parameter space the gradients live in: the head's view (then scattered once) or all of θ
    net_s, theta_s, off = (net, theta, 0) if view is None else (view.net, view.gather(theta), view.lo)
    labels = np.empty(E * n, np.int64)
    F = np.zeros(theta_s.shape, np.float64)
    for s in range(0, E * n, chunk):
        r = np.arange(s, min(s + chunk, E * n))
        member = r // n
        th = theta_s[member]                                                      # [r, P_s]
        if kind == "true":      # inverse-CDF draw from the softmax over the example's head
            z = net_s.logits(th, Xf[r], backend=backend)[:, 0]                    # [r, C_s]
            c = off + np.arange(z.shape[-1])
            zm = np.where((c >= lo_f[r, None]) & (c < hi_f[r, None]), z.astype(np.float64), -np.inf)
            p = np.exp(zm - zm.max(axis=-1, keepdims=True))
            cdf = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
            labels[r] = off + np.minimum((cdf < u[r, None]).sum(axis=-1), hi_f[r] - 1 - off)
        else:
            labels[r] = y_f[r]
        if view is not None:    # the view's CE over all its outputs is the head's CE
            G = net_s.loss_and_grad(th, Xf[r], labels[r, None] - off, backend=backend)[1]
        else:
            from ..loop import head_cross_entropy
            z = net.logits(th, Xf[r], backend=backend)                            # [r, 1, C]
            _, g = head_cross_entropy(z, labels[r, None], lo_f[r, None], hi_f[r, None], 1.0)
            G = net.vjp(th, Xf[r], g, backend=backend)                            # [r, P]
        G2 = np.square(G)
        for m in np.unique(member):
            F[m] += G2[member == m].sum(axis=0, dtype=np.float64)
    if view is not None:
        F_full = np.zeros(theta.shape, np.float64)
        F_full[:, view.idx] = F
        F = F_full
    return (F / n).astype(theta.dtype), labels.reshape(E, n)


class EWC(Strategy):
    """Elastic weight consolidation.

    Args:
        lam: λ ≥ 0, the penalty strength.
        fisher: ``"true"`` (sampled labels, default) or ``"empirical"`` (true labels).
        online: False: a penalty per past task (Kirkpatrick); True: one running Fisher (Schwarz).
        gamma: decay γ in (0, 1] of the running Fisher (online only).
        n_samples: examples per task for the Fisher (all of the task's when larger or None).
    """

    name = "ewc"

    def __init__(self, lam: float = 10.0, fisher: str = "true", online: bool = False, gamma: float = 1.0,
                 n_samples: int | None = 200):
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) \
                or not np.isfinite(lam) or lam < 0:
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) or not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.lam, self.fisher, self.online, self.gamma = float(lam), check_choice(fisher, FISHER_KINDS, "fisher"), \
            bool(online), float(gamma)
        self.n_samples = None if n_samples is None else check_positive_int(n_samples, "n_samples")

    def config(self):
        return {"name": self.name, "lam": self.lam, "fisher": self.fisher, "online": self.online,
                "gamma": self.gamma, "n_samples": self.n_samples}

    def setup(self, run, theta0):
        self.F, self.anchor = [], []                  # separate: per task; online: one entry
        self.fisher_norms = []
        self._sums = None

    def penalty(self, run, theta):
        """``λ/2·Σ_s Σ_i F_s,i (θ_i − θ*_s,i)²`` and its gradient ``λ·(A θ − B)``, with the running
        sums ``A = Σ_s F_s``, ``B = Σ_s F_s θ*_s``, ``C = Σ_s F_s θ*_s²`` (one anchor when online)."""
        if not self.F or self.lam == 0:
            return None
        A, B, C = self._sums
        th = theta.astype(np.float64)
        value = 0.5 * self.lam * ((A * th - 2 * B) * th + C).sum(axis=-1)
        return value, self.lam * (A * th - B)

    def end_task(self, run, theta, t):
        rows_t = run.task_rows[t]
        n = len(rows_t) if self.n_samples is None else min(self.n_samples, len(rows_t))
        pick = np.stack([rows_t[np.sort(rng.choice(len(rows_t), n, replace=False))] for rng in run.probe_rngs])
        F, _ = fisher_diagonal(run.net, theta, run.X[pick], run.y[pick], run.lo[pick], run.hi[pick],
                               kind=self.fisher, rngs=run.probe_rngs, backend=run.backend)
        F = F.astype(np.float64)
        run.counts["per_sample_grads"] += int(pick.size)
        self.fisher_norms.append(np.abs(F).sum(axis=-1))
        self.consolidate(F, theta.astype(np.float64))

    def consolidate(self, F, anchor) -> None:
        """Add task t's Fisher ``F [E, P]`` and anchor θ*_t ``[E, P]`` (online: fold into F̃)."""
        if self.online:
            self.F = [F if not self.F else self.gamma * self.F[0] + F]
            self.anchor = [anchor]
        else:
            self.F.append(F)
            self.anchor.append(anchor)
        self._sums = (sum(self.F), sum(F * a for F, a in zip(self.F, self.anchor)),
                      sum(F * a * a for F, a in zip(self.F, self.anchor)))

    def summary(self, run):
        return {"fisher_l1": np.stack(self.fisher_norms, axis=-1) if self.fisher_norms else np.zeros((run.E, 0)),
                "fisher_final": np.stack(self.F).sum(axis=0) if self.F else None}
