"""Functional optimizers over the flat parameter vector θ (PyTorch ``torch.optim`` semantics).

An optimizer is a small immutable object holding its hyper-parameters. It never holds state:

>>> opt = SGD(lr=0.1, momentum=0.9)
>>> state = opt.init(theta)                            # theta: [P] or [E, P]
>>> theta, state = opt.step(theta, grad, state, mask)  # grad: theta's shape; mask: [P] or [E, P]

Every operation is elementwise, so a population ``θ: [E, P]`` is updated in one call, and member e's
entries get the same bits as a single run on ``θ[e]``. The update equations (``g`` the gradient,
``t`` the step count starting at 1, state zero-initialised):

SGD (``torch.optim.SGD``, dampening 0)::

    g ← g + λ·θ                          (weight decay λ, L2 added to the gradient)
    v ← μ·v + g                          (momentum μ > 0 only; heavy ball)
    θ ← θ − lr·v                         (or, with ``nesterov``, θ ← θ − lr·(g + μ·v))

Adam (``torch.optim.Adam``, amsgrad off)::

    g ← g + λ·θ
    m ← β₁·m + (1 − β₁)·g
    v ← β₂·v + (1 − β₂)·g²
    θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)

Masked updates: where ``mask`` is False the entry is frozen. Its θ is returned bit-for-bit unchanged
and its optimizer state stays as it was (zero, for state created by ``init``), whatever its
gradient holds (even NaN). Adam's step count ``t`` is shared by all entries.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validate import as_float_array, check_choice, check_fraction

# ------------------------------------------------------------------------------------ helpers


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"lr must be a number, got {type(lr).__name__}")
    if not (math.isfinite(float(lr)) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    return float(lr)


def _check_nonneg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(float(value)) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def check_mask(mask, theta_shape: tuple, name: str = "mask") -> np.ndarray | None:
    """Validate a boolean update mask ``[P]`` or ``[E, P]`` against θ's shape (None passes)."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    P = theta_shape[-1]
    ok = arr.shape == (P,) or (len(theta_shape) == 2 and arr.shape == tuple(theta_shape))
    if not ok:
        want = f"[P={P}]" + (f" or [E={theta_shape[0]}, P={P}]" if len(theta_shape) == 2 else "")
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def _check_step_args(theta, grad, mask):
    theta = as_float_array(theta, "theta", ndim=(1, 2), finite=False)  # divergence propagates
    grad = np.asarray(grad)
    if grad.shape != theta.shape:
        raise ValueError(f"grad must have theta's shape {theta.shape}, got {grad.shape}")
    if grad.dtype != theta.dtype:
        grad = as_float_array(grad, "grad", dtype=theta.dtype, finite=False)
    return theta, grad, check_mask(mask, theta.shape)


def _axpy(a: float, x, y):
    """``a·x + y`` in x's dtype, in one new array and two passes over it.

    The same bits as the expression (each product and sum rounded once; ``θ − lr·d`` is
    ``(−lr)·d + θ`` exactly, since rounding is symmetric), without NumPy's temporary for ``a·x``
    (measured in docs/training.md).
    """
    out = np.multiply(x, a)
    out += y
    return out


def _masked(mask, new, old):
    """``new`` where trainable, ``old`` (exactly) where frozen."""
    return new if mask is None else np.where(mask, new, old)


# ------------------------------------------------------------------------------------ optimizers


@dataclasses.dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent with optional heavy-ball/Nesterov momentum and L2 weight decay.

    Args:
        lr: learning rate, finite and > 0.
        momentum: μ in [0, 1); 0 disables the velocity buffer.
        nesterov: Nesterov momentum (needs μ > 0), as ``torch.optim.SGD(nesterov=True)``.
        weight_decay: λ >= 0, added to the gradient as λ·θ.
    """

    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "lr", _check_lr(self.lr))
        object.__setattr__(self, "momentum", check_fraction(self.momentum, "momentum", high_open=True))
        object.__setattr__(self, "weight_decay", _check_nonneg(self.weight_decay, "weight_decay"))
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {type(self.nesterov).__name__}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def config(self) -> dict:
        return {"name": "sgd", **dataclasses.asdict(self)}

    def init(self, theta) -> dict:
        """State for θ ``[P]`` or ``[E, P]``: ``{"t": 0, "velocity": zeros like θ or None}``."""
        theta = as_float_array(theta, "theta", ndim=(1, 2))
        return {"t": 0, "velocity": np.zeros_like(theta) if self.momentum > 0 else None}

    def step(self, theta, grad, state: dict, mask=None):
        """One update. Returns new ``(theta, state)``; the inputs are not modified.

        Args:
            theta: [P] or [E, P]; grad: same shape; mask: bool [P] or [E, P], False = frozen.
        """
        theta, g, mask = _check_step_args(theta, grad, mask)
        if self.weight_decay:
            g = _axpy(self.weight_decay, theta, g)
        v = state["velocity"]
        if self.momentum > 0:
            v = _masked(mask, _axpy(self.momentum, v, g), v)
            d = _axpy(self.momentum, v, g) if self.nesterov else v
        else:
            d = g
        new = _masked(mask, _axpy(-self.lr, d, theta), theta)
        return new, {"t": state["t"] + 1, "velocity": v}


@dataclasses.dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) with PyTorch's bias correction and L2 weight decay.

    Args:
        lr: learning rate, finite and > 0.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε > 0, added to the bias-corrected √v.
        weight_decay: λ >= 0, added to the gradient as λ·θ (``torch.optim.Adam``, not AdamW).
    """

    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "lr", _check_lr(self.lr))
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        betas = tuple(check_fraction(b, f"betas[{i}]", high_open=True) for i, b in enumerate(self.betas))
        object.__setattr__(self, "betas", betas)
        eps = _check_nonneg(self.eps, "eps")
        if eps == 0:
            raise ValueError("eps must be > 0")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "weight_decay", _check_nonneg(self.weight_decay, "weight_decay"))

    def config(self) -> dict:
        return {"name": "adam", **dataclasses.asdict(self), "betas": list(self.betas)}

    def init(self, theta) -> dict:
        """State for θ ``[P]`` or ``[E, P]``: ``{"t": 0, "m": zeros, "v": zeros}``."""
        theta = as_float_array(theta, "theta", ndim=(1, 2))
        return {"t": 0, "m": np.zeros_like(theta), "v": np.zeros_like(theta)}

    def step(self, theta, grad, state: dict, mask=None):
        """One update. Returns new ``(theta, state)``; the inputs are not modified.

        Args:
            theta: [P] or [E, P]; grad: same shape; mask: bool [P] or [E, P], False = frozen.
        """
        theta, g, mask = _check_step_args(theta, grad, mask)
        b1, b2 = self.betas
        t = state["t"] + 1
        if self.weight_decay:
            g = g + self.weight_decay * theta
        m = _masked(mask, b1 * state["m"] + (1 - b1) * g, state["m"])
        v = _masked(mask, b2 * state["v"] + (1 - b2) * (g * g), state["v"])
        step_size = self.lr / (1 - b1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + self.eps
        new = _masked(mask, theta - step_size * (m / denom), theta)
        return new, {"t": t, "m": m, "v": v}


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(spec, **options):
    """An optimizer from an instance, a name (``"sgd"``, ``"adam"``) plus options, or a config dict.

    >>> make_optimizer("sgd", lr=0.1, momentum=0.9) == SGD(0.1, momentum=0.9)
    True

    Raises:
        ValueError: unknown name; TypeError: unknown option (named) or a bad spec type.
    """
    if isinstance(spec, (SGD, Adam)):
        if options:
            raise TypeError("options can only be given with an optimizer name")
        return spec
    if isinstance(spec, dict):
        options = {**{k: v for k, v in spec.items() if k != "name"}, **options}
        spec = spec.get("name")
    if not isinstance(spec, str):
        raise TypeError(f"optimizer must be an SGD/Adam instance, a name or a config dict, "
                        f"got {type(spec).__name__}")
    cls = OPTIMIZERS[check_choice(spec.lower(), OPTIMIZERS, "optimizer")]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for optimizer {spec!r}; "
                        f"expected some of {sorted(known)}")
    return cls(**options)


__all__ = ["SGD", "Adam", "make_optimizer", "check_mask", "OPTIMIZERS"]
