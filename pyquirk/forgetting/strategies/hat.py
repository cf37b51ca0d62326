"""Hard attention to the task (HAT; Serrà, Surís, Miron & Karatzoglou, ICML 2018).

The network has a unit gate (:class:`pyquirk.nn.Gate`) after each hidden layer's activation. Task t
owns an embedding ``e_t^l`` per gated layer l (our ``e[t]``: all gated units concatenated, ``[U]``,
initialised N(0, 1) like the official ``torch.nn.Embedding``), and the layer's units are multiplied
by the attention ``a_t^l = σ(s·e_t^l)``. The gate entries of θ are never trained: before every pass
they are *set* to ``a``; the engine's gradient on them is ``∂L/∂a``, and the chain rule to the
embeddings is done here. Per step (batch b = 1 … B of an epoch), following the paper and the
official code (``joansj/hat``, ``src/approaches/hat.py``):

1. Annealing: ``s = 1/s_max + (s_max − 1/s_max)·(b − 1)/(B − 1)`` (paper, Eq. 3; the code uses the
   example offset ``i/N`` instead of ``(b−1)/(B−1)``); ``s = s_max`` at test time.
2. Loss: ``L = CE + c·R`` with the attention regulariser over all gated units
   ``R = Σ_i a_{t,i}(1 − a_i^{<t}) / Σ_i (1 − a_i^{<t})`` (for t = 0, ``a^{<0} = 0``).
3. Gradient conditioning (t > 0): the gradient of the weight between input unit j (layer l−1)
   and output unit i (layer l) is multiplied by ``1 − min(a_i^{l,<t}, a_j^{l−1,<t})``, a bias's by
   ``1 − a_i^{l,<t}``; the first layer's inputs are not gated (factor ``1 − a_i``); the heads are
   not conditioned (each task has its own). Entries whose factor is exactly 0 are also frozen
   in the optimizer (masked update), so momentum or weight decay cannot move them.
4. Embedding gradient: ``∂L/∂e = ∂L/∂a · s·σ(s e)(1 − σ(s e))`` then the compensation
   ``· s_max·[cosh(clamp(s e, ±50)) + 1] / (s·[cosh(e) + 1])`` (paper Eq. 6; ``thres_cosh=50``).
5. One optimizer step on the weights, and one plain-SGD step on ``e_t`` (lr ``lr_e``, default the
   weights' lr; the official code uses plain SGD for everything: momentum on the compensated
   gradients, up to s_max/4 = 100 times the raw ones, makes the masks oscillate), then the clamp
   ``e ← clamp(e, −6, 6)`` (the official code's ``thres_emb=6`` clamps the *embedding* e, not s·e;
   at s_max = 400 this allows ``|s·e| ≤ 2400``).
6. After the task: ``a_t = σ(s_max·e_t)`` and the cumulative mask ``a^{≤t} = max(a^{<t}, a_t)``.

Computed in float64: σ' vanishes where σ(s·e) rounds to 1 (s·e ≳ 37; PyTorch's float32 from ≳ 17).
The official code also clips the gradient norm at 10⁴ (never reached here; not done) and uses
dropout (the engine has none). ``binary=True`` hardens the stored masks and the test-time gates
to ``1[e > 0]`` (σ(s_max e) ≥ ½), so that conditioning freezes the used weights exactly.
HAT needs the task ID at test time: the task-incremental setting only.
"""
from __future__ import annotations

import numpy as np

from ...nn.layers import Dense, Flatten, Gate, _Conv
from ...seeds import stream
from .base import Strategy


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def hat_structure(net):
    """For each Dense/Conv layer: its weight and bias specs and the gate units on its outputs and inputs.

    Returns:
        ``(layers, gate_index)``: ``layers`` a list of dicts ``{"weight", "bias", "out", "in"}``
        where ``out`` is ``[out]`` indices into the concatenated gate vector ``[U]`` (None when the
        layer's outputs are not gated, e.g. the heads) and ``in`` is ``[in]`` indices (−1 where the
        input is not gated: the data, or an ungated layer); ``gate_index`` the θ positions of the
        gate vector ``[U]``, in layout order.
    """
    specs = {(s.layer, s.kind): s for s in net.layout}
    offset, u = {}, 0
    for s in net.layout:
        if s.kind == "gate":
            offset[s.layer], u = u, u + s.size
    shape = net.input_shape
    cur = -np.ones(shape[0], np.int64)          # gate of each input unit (flat) or channel (conv)
    layers, pending = [], None
    for i, layer in enumerate(net.layers):
        if isinstance(layer, (Dense, _Conv)):
            pending = {"weight": specs[(i, "weight")], "bias": specs[(i, "bias")], "in": cur, "out": None}
            layers.append(pending)
            cur = -np.ones(specs[(i, "bias")].size, np.int64)
        elif isinstance(layer, Gate):
            units = specs[(i, "gate")].size
            if pending is None or pending["out"] is not None or pending["bias"].size != units or np.any(cur >= 0):
                raise ValueError(f"HAT needs each Gate (layer {i}) to follow the units of one Dense/Conv "
                                 f"layer, at most one Gate per layer")
            cur = pending["out"] = offset[i] + np.arange(units)
        elif isinstance(layer, Flatten):
            cur = np.repeat(cur, int(np.prod(layer.in_shape[1:])))
    return layers, np.flatnonzero(net.param_mask("gates"))


def conditioning(net, layers, a_prev) -> np.ndarray:
    """``[E, P]`` gradient factors ``1 − min(a_i^{<t}, a_j^{<t})`` (weights) and ``1 − a_i^{<t}``
    (biases); 1 for ungated layers' parameters and for the gate entries themselves.

    Args:
        a_prev: ``[E, U]`` the cumulative masks ``a^{<t}``.
    """
    E = a_prev.shape[0]
    factor = np.ones((E, net.n_params))
    for L in layers:
        if L["out"] is None:
            continue
        a_out = a_prev[:, L["out"]]                                                    # [E, out]
        a_in = np.where(L["in"] >= 0, a_prev[:, np.maximum(L["in"], 0)], 1.0)        # [E, in]
        w = L["weight"]
        f = 1.0 - np.minimum(a_out[:, :, None], a_in[:, None, :])                   # [E, out, in]
        f = np.broadcast_to(f.reshape(f.shape + (1,) * (len(w.shape) - 2)), (E,) + w.shape)
        factor[:, w.slice] = f.reshape(E, w.size)
        factor[:, L["bias"].slice] = 1.0 - a_out
    return factor


class HAT(Strategy):
    """Hard attention to the task (see the module docstring for every equation).

    Args:
        s_max: the largest gate slope (paper: 400).
        c: the attention regulariser's weight (paper: 0.75).
        e_clamp: embeddings are clamped to ``[−e_clamp, e_clamp]`` after each step (code: 6).
        cosh_clamp: ``s·e`` is clamped to this inside the compensation's cosh (code: 50).
        binary: harden stored masks and test-time gates to ``1[e > 0]``.
        lr_e: learning rate of the embeddings' plain SGD (default: the weights' optimizer's lr).
    """

    name = "hat"
    needs_gates = True

    def __init__(self, s_max: float = 400.0, c: float = 0.75, e_clamp: float = 6.0, cosh_clamp: float = 50.0,
                 binary: bool = False, lr_e: float | None = None):
        for nm, v in (("s_max", s_max), ("e_clamp", e_clamp), ("cosh_clamp", cosh_clamp)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{nm} must be a finite number > 0, got {v!r}")
        if s_max < 1:
            raise ValueError(f"s_max must be >= 1 (s anneals from 1/s_max up to s_max), got {s_max}")
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating)) or not np.isfinite(c) or c < 0:
            raise ValueError(f"c must be a finite number >= 0, got {c!r}")
        self.s_max, self.c, self.e_clamp, self.cosh_clamp = float(s_max), float(c), float(e_clamp), float(cosh_clamp)
        self.binary = bool(binary)
        if lr_e is not None and (isinstance(lr_e, bool) or not isinstance(lr_e, (int, float, np.floating))
                                 or not np.isfinite(lr_e) or lr_e <= 0):
            raise ValueError(f"lr_e must be a finite number > 0 or None, got {lr_e!r}")
        self.lr_e = None if lr_e is None else float(lr_e)

    def config(self):
        return {"name": self.name, "s_max": self.s_max, "c": self.c, "e_clamp": self.e_clamp,
                "cosh_clamp": self.cosh_clamp, "binary": self.binary, "lr_e": self.lr_e}

    # ---------------------------------------------------------------------------------- state
    def setup(self, run, theta0):
        if run.scenario.setting != "task":
            raise ValueError(f"HAT needs the task ID at test time: use setting='task', not "
                             f"{run.scenario.setting!r} (scenario.with_setting('task'))")
        self.layers, self.gidx = hat_structure(run.net)
        if self.gidx.size == 0:
            raise ValueError("HAT needs a gated net (a Gate after each hidden layer): "
                             "continual_mlp(scenario, gated=True)")
        E, U = run.E, self.gidx.size
        self.e = np.stack([stream("init", s.init, 1).standard_normal((run.T, U)) for s in run.seeds])
        self.a_prev = np.zeros((E, U))
        self.masks = np.full((E, run.T, U), np.nan)
        self._set_conditioning(run)

    def _set_conditioning(self, run):
        self.factor = conditioning(run.net, self.layers, self.a_prev)
        gates = run.net.param_mask("gates")
        self.trainable = (self.factor > 0) & ~gates
        self.factor_t = self.factor.astype(run.dtype)

    def mask_of(self, e):
        """Test-time attention ``σ(s_max·e)`` (or ``1[e > 0]`` when binary)."""
        return (e > 0).astype(np.float64) if self.binary else sigmoid(self.s_max * e)

    def with_gates(self, theta, a):
        th = theta.copy()
        th[:, self.gidx] = a
        return th

    # ---------------------------------------------------------------------------------- hooks
    def begin_task(self, run, theta, theta0, t):
        from ...train import SGD
        self._opt_e = SGD(self.lr_e or run.optimizer.lr)
        self._opt_state = self._opt_e.init(self.e[:, t])
        return theta

    def s_at(self, j: int, nb: int) -> float:
        """The slope for batch j (0-based) of nb: ``1/s_max + (s_max − 1/s_max)·j/(nb − 1)``."""
        smax = self.s_max
        return smax if nb == 1 else 1.0 / smax + (smax - 1.0 / smax) * j / (nb - 1)

    def loss_and_grads(self, run, theta, rows, t: int, s: float):
        """``L = CE + c·R`` at slope s, its gradient on θ (unconditioned, gate entries = ∂L/∂a) and
        ``∂L/∂e_t`` (no compensation): ``(L [E], grad [E, P], g_e [E, U])``."""
        e = self.e[:, t]
        a = sigmoid(s * e)                                                     # [E, U]
        loss, grad = run.loss_grad(self.with_gates(theta, a), rows)
        free = 1.0 - self.a_prev
        den = free.sum(axis=-1, keepdims=True)
        safe = np.where(den > 0, den, 1.0)
        reg = np.where(den[:, 0] > 0, (a * free).sum(axis=-1) / safe[:, 0], 0.0)
        g_a = grad[:, self.gidx].astype(np.float64) + self.c * np.where(den > 0, free / safe, 0.0)
        return loss + self.c * reg, grad, g_a * s * a * (1.0 - a)

    def compensation(self, e, s: float):
        """The paper's factor ``s_max·[cosh(clamp(s e, ±cosh_clamp)) + 1] / (s·[cosh(e) + 1])``."""
        return self.s_max / s * (np.cosh(np.clip(s * e, -self.cosh_clamp, self.cosh_clamp)) + 1.0) / (np.cosh(e) + 1.0)

    def step_grad(self, run, theta, rows, t, j, nb):
        s = self.s_at(j, nb)
        loss, grad, g_e = self.loss_and_grads(run, theta, rows, t, s)
        self._g_e = g_e * self.compensation(self.e[:, t], s)
        grad = grad * self.factor_t
        grad[:, self.gidx] = 0
        return loss, grad, self.trainable

    def after_step(self, run, t):
        e, self._opt_state = self._opt_e.step(self.e[:, t], self._g_e, self._opt_state)
        self.e[:, t] = np.clip(e, -self.e_clamp, self.e_clamp)

    def end_task(self, run, theta, t):
        a_t = self.mask_of(self.e[:, t])
        self.masks[:, t] = a_t
        self.a_prev = np.maximum(self.a_prev, a_t)
        self._set_conditioning(run)

    def eval_theta(self, run, theta, j):
        return self.with_gates(theta, self.mask_of(self.e[:, j]).astype(theta.dtype))

    def summary(self, run):
        used = np.nan_to_num(self.masks) > 0.5                                 # [E, T, U]
        per_layer = [L["out"] for L in self.layers if L["out"] is not None]
        return {"masks": self.masks, "embeddings": self.e,
                "used_per_layer": np.stack([used[..., idx].mean(axis=-1) for idx in per_layer], axis=-1),
                "cumulative_used": np.stack([(np.maximum.accumulate(used, axis=1)[..., idx]).mean(axis=-1)
                                             for idx in per_layer], axis=-1)}
