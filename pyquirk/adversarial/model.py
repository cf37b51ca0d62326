"""The model interface every attack sees: logits, per-sample input gradients, declared bounds.

DESIGN §4 ("Attacks"): a model is ``logits(x)`` plus ``input_grad``, with declared input bounds
(default ``[0, 1]``); preprocessing lives inside the model. :class:`Model` wraps a
:class:`pyquirk.nn.Net` and its flat θ and counts the engine calls it makes, so every result can
report its forward and gradient calls.

Data may be shared ``X: [N, *in]`` or stacked on the engine's population axis ``X: [E, N, *in]``
(the attacks stack ε values × restarts there: θ is broadcast to ``[E, P]`` without a copy, and
member e computes exactly the bits a single call on ``X[e]`` computes).
"""
from __future__ import annotations

import numpy as np

from .. import backends
from .._validate import as_float_array, as_labels

_COUNT_KEYS = ("forward_calls", "grad_calls", "forward_rows", "grad_rows")


def _check_bounds(bounds) -> tuple[float, float]:
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be a pair (lo, hi), got {bounds!r}")
    lo, hi = (float(b) for b in bounds)
    if np.isnan(lo) or np.isnan(hi) or not lo < hi:
        raise ValueError(f"bounds must satisfy lo < hi (±inf allowed), got {bounds!r}")
    return lo, hi


class Model:
    """A classifier as the attacks see it: a :class:`~pyquirk.nn.Net`, its θ ``[P]``, and bounds.

    Args:
        net: the architecture (cross-entropy loss; an MSE net works for logits and
            :meth:`logit_grad` only).
        theta: ``[P]`` float32/float64 parameters.
        bounds: ``(lo, hi)``: the box every input and every adversarial example lives in
            (default ``(0, 1)``; ``±inf`` for an unbounded input space).
        backend: engine backend for every pass (see :mod:`pyquirk.backends`).
        name: a label used in results and plots.

    Attributes:
        counts: engine work so far, ``{"forward_calls", "grad_calls", "forward_rows",
            "grad_rows"}``; a gradient call includes its forward pass and is not also counted as
            a forward call. ``*_rows`` count sample evaluations.
        train_idx: indices of the training examples the model saw, when known (set by
            :func:`~pyquirk.adversarial.transfer.train_disjoint`), else None.
    """

    def __init__(self, net, theta, bounds=(0.0, 1.0), *, backend: str | None = None, name: str = "model"):
        theta = as_float_array(theta, "theta", ndim=1)
        net._check_p(theta.shape, "theta")
        self.net, self.theta, self.backend, self.name = net, theta, backend, str(name)
        self.bounds = _check_bounds(bounds)
        self.counts = dict.fromkeys(_COUNT_KEYS, 0)
        self.train_idx = None
        self._mse_twin = None

    def __repr__(self):
        return f"Model({self.name!r}, {self.net!r}, bounds={self.bounds})"

    # ---------------------------------------------------------------- properties
    @property
    def n_classes(self) -> int:
        return int(self.net.n_outputs)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.net.input_shape)

    @property
    def dtype(self):
        return self.theta.dtype

    def snapshot(self) -> dict:
        """A copy of :attr:`counts` (subtract two snapshots to count one experiment's work)."""
        return dict(self.counts)

    def since(self, snap: dict) -> dict:
        """Counts accrued since ``snap`` (from :meth:`snapshot`)."""
        return {k: self.counts[k] - snap[k] for k in _COUNT_KEYS}

    # ---------------------------------------------------------------- validation
    def check_inputs(self, X, name: str = "X") -> np.ndarray:
        """``X: [N, *input_shape]`` in θ's dtype, finite and inside :attr:`bounds`, or a clear error."""
        X = as_float_array(X, name, dtype=self.dtype)
        if X.ndim != len(self.input_shape) + 1 or X.shape[1:] != self.input_shape:
            raise ValueError(f"{name} must have shape [N, {', '.join(map(str, self.input_shape))}], "
                             f"got {X.shape}")
        lo, hi = self.bounds
        xmin, xmax = float(X.min()), float(X.max())
        if xmin < lo or xmax > hi:
            raise ValueError(f"{name} has values outside the model's bounds [{lo}, {hi}] "
                             f"(min {xmin:.6g}, max {xmax:.6g}); declare the bounds your data lives "
                             f"in, e.g. Model(net, theta, bounds=data_bounds(X))")
        return X

    def check_labels(self, y, N: int, name: str = "y") -> np.ndarray:
        y = as_labels(y, name, self.n_classes)
        if y.shape != (N,):
            raise ValueError(f"{name} must have shape [{N}] (one class per example), got {y.shape}")
        return y

    # ---------------------------------------------------------------- passes
    def _theta_for(self, X):
        """θ ``[P]`` for shared data (and for one member), or θ broadcast to ``[E, P]`` (no copy)."""
        if X.ndim == len(self.input_shape) + 2 and X.shape[0] > 1:
            return np.broadcast_to(self.theta, (X.shape[0], self.theta.shape[0]))
        return self.theta

    @staticmethod
    def _rows(X, d):
        return int(np.prod(X.shape[:X.ndim - d]))

    def logits(self, X) -> np.ndarray:
        """Logits ``[N, C]`` (or ``[E, N, C]`` for ``X: [E, N, *in]``). One forward call."""
        z = self.net.logits(self._theta_for(X), X, backend=self.backend)
        self.counts["forward_calls"] += 1
        self.counts["forward_rows"] += self._rows(X, len(self.input_shape))
        return z

    def loss_grad(self, X, labels, check_finite: bool = True):
        """Logits and each sample's own cross-entropy gradient w.r.t. its input.

        Args:
            X: ``[N, *in]`` or ``[E, N, *in]``.
            labels: ``[N]`` or ``[E, N]`` int classes (the CE label: y untargeted, t targeted).
            check_finite: False skips the NaN/inf scan of θ and X (:meth:`pyquirk.nn.Net.input_grad`),
                for iterates that are finite by construction.
        Returns:
            ``(z, g)``: ``[.., N, C]`` and ``∂CE(z_i, labels_i)/∂x_i`` with X's shape. One call.
        """
        z, g = self.net.input_grad(self._theta_for(X), X, labels, backend=self.backend, with_logits=True,
                                   check_finite=check_finite)
        self.counts["grad_calls"] += 1
        self.counts["grad_rows"] += self._rows(X, len(self.input_shape))
        return z, g

    def attack_loop(self, x0, labels, start, alpha, eps, steps: int, norm: str, targeted: bool):
        """Every iteration of a PGD attack in one engine call, where the backend has one (cpu).

        Args:
            x0: ``[n, *in]`` clean inputs; labels: ``[n]`` int64 CE labels (y, or t when targeted).
            start: ``[E, n, *in]`` the start of each member; it receives the last iterate.
            alpha, eps: ``[E, n]`` float64 step sizes and radii.
        Returns:
            ``(z, x_best, z_best, m_best)``, the results of the loop in
            :func:`pyquirk.adversarial.attacks._iterate` (bit for bit), or None when the backend
            has no such loop (the caller then runs it in Python). Counts ``steps`` gradient calls
            and one forward call, as that loop does.
        """
        fn = getattr(backends.get(self.backend), "attack_loop", None)
        out = None if fn is None else fn(self.net, self.theta, x0, labels, start, alpha, eps, steps, norm, targeted,
                                         *self.bounds)
        if out is not None:
            rows = start.shape[0] * start.shape[1]
            self.counts["grad_calls"] += steps
            self.counts["grad_rows"] += steps * rows
            self.counts["forward_calls"] += 1
            self.counts["forward_rows"] += rows
        return out

    def logit_grad(self, X, classes):
        """``(z, ∂z_c/∂x)``: the Jacobian row of logit ``c = classes[i]`` for each sample.

        The engine exposes loss gradients only, so this uses the MSE twin of the same architecture
        (same θ layout): with targets ``t = z − (C/2)·e_c`` the MSE gradient w.r.t. the logits is
        ``2(z − t)/C = e_c``, whose back-propagation is exactly ``∂z_c/∂x`` (up to the rounding of
        ``z − t``). Costs one forward call plus one gradient call.

        Args:
            X: ``[N, *in]``; classes: ``[N]`` int.
        Returns:
            ``(z [N, C], J [N, *in])``.
        """
        from ..nn.net import Net
        if self._mse_twin is None:
            self._mse_twin = Net(self.net.layers, self.net.input_shape, loss="mse")
        z = self.logits(X)
        C = z.shape[-1]
        t = z.copy()
        t[np.arange(z.shape[0]), classes] -= C / 2.0
        _, J = self._mse_twin.input_grad(self.theta, X, t, backend=self.backend, with_logits=True)
        self.counts["grad_calls"] += 1
        self.counts["grad_rows"] += X.shape[0]
        return z, J

    def predict(self, X) -> np.ndarray:
        """Arg-max classes ``[N]`` (first maximum on ties). One forward call."""
        return self.logits(X).argmax(-1)


def as_model(model, theta=None, bounds=None, **kwargs) -> Model:
    """A :class:`Model` from a Model (returned as is) or from ``(net, theta, bounds)``."""
    if isinstance(model, Model):
        if theta is not None or bounds is not None:
            raise TypeError("pass theta/bounds only with a Net, not with a Model")
        return model
    if theta is None:
        raise TypeError(f"expected a pyquirk.adversarial.Model, or a Net with theta; got "
                        f"{type(model).__name__} without theta")
    return Model(model, theta, (0.0, 1.0) if bounds is None else bounds, **kwargs)


def data_bounds(*arrays, margin: float = 0.0) -> tuple[float, float]:
    """``(min − margin, max + margin)`` over the given arrays: a stated box for standardised data."""
    if not arrays:
        raise ValueError("data_bounds needs at least one array")
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    return lo - float(margin), hi + float(margin)


__all__ = ["Model", "as_model", "data_bounds"]
