"""``Net``: an architecture (layers + input shape + loss) whose parameters are one flat vector θ.

θ has shape ``[P]`` for one network or ``[E, P]`` for a population of E networks of the same
architecture. The layout is PyTorch's: for each parameter layer in order, the weight
(``[out, in]`` or ``[out, in, *kernel]``) then the bias ``[out]``; names follow
``nn.Sequential`` (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...).

Data is shared, ``X: [N, *input_shape]``, or per member, ``X: [E, N, *input_shape]``; labels
likewise ``y: [N]`` or ``[E, N]`` (integer classes for cross-entropy; float targets
``[..., N, C]`` or integer classes, one-hot encoded, for MSE). Passes compute in θ's dtype.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import backends
from .._validate import as_float_array, as_labels, check_choice
from ..seeds import Seeds, stream
from . import init as _init
from .layers import Layer, make_layer
from .losses import LOSSES


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """Where one parameter tensor lives in θ."""

    name: str        # e.g. "0.weight"
    layer: int       # index of the layer in ``net.layers``
    kind: str        # "weight", "bias" or "gate"
    shape: tuple
    offset: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)


class Net:
    """A feed-forward network over a flat parameter vector.

    Args:
        layers: layer instances (or parameter-free names such as ``"relu"``), applied in order.
        input_shape: feature shape of one example, e.g. ``(40,)`` or ``(1, 40)`` for Conv1d.
        loss: ``"ce"`` (softmax cross-entropy) or ``"mse"``.
    """

    def __init__(self, layers, input_shape, loss: str = "ce"):
        self.layers: list[Layer] = [make_layer(layer) for layer in layers]
        if not self.layers:
            raise ValueError("layers is empty")
        self.input_shape = tuple(int(s) for s in np.atleast_1d(input_shape))
        if any(s < 1 for s in self.input_shape):
            raise ValueError(f"input_shape must be positive, got {self.input_shape}")
        self.loss_name = check_choice(loss, LOSSES, "loss")
        self.loss_fn = LOSSES[loss]()
        shape, layout, offset = self.input_shape, [], 0
        for i, layer in enumerate(self.layers):
            shape = layer.build(shape)
            for kind, pshape in layer.param_shapes:
                size = math.prod(pshape)
                layout.append(ParamSpec(f"{i}.{kind}", i, kind, tuple(pshape), offset, size))
                offset += size
        if len(shape) != 1:
            raise ValueError(f"the last layer must output a flat vector of logits, got shape {shape}")
        self.n_outputs = shape[0]
        self.layout: list[ParamSpec] = layout
        self.n_params = offset
        if self.n_params == 0:
            raise ValueError("the network has no parameters")

    def __repr__(self):
        return f"Net({self.layers!r}, input_shape={self.input_shape}, loss={self.loss_name!r}) # P={self.n_params}"

    # ---------------------------------------------------------------- flat θ <-> tensors
    def unflatten(self, theta) -> dict:
        """Views ``{name: [*lead, *shape]}`` into θ ``[*lead, P]`` (no copies)."""
        theta = np.asarray(theta)
        self._check_p(theta.shape, "theta")
        return {s.name: theta[..., s.slice].reshape(theta.shape[:-1] + s.shape) for s in self.layout}

    def layer_params(self, theta) -> list[tuple]:
        """Per layer, the tuple of its parameter views (``()`` for parameter-free layers)."""
        views = self.unflatten(theta)
        return [tuple(views[f"{i}.{kind}"] for kind, _ in layer.param_shapes)
                for i, layer in enumerate(self.layers)]

    def flatten(self, per_layer: list, lead: tuple, dtype) -> np.ndarray:
        """Inverse of :meth:`layer_params`: per-layer tensors ``[*lead, *shape]`` -> ``[*lead, P]``."""
        out = np.empty(tuple(lead) + (self.n_params,), dtype=dtype)
        tensors = (t for group in per_layer for t in group)
        for spec, t in zip(self.layout, tensors):
            out[..., spec.slice] = np.broadcast_to(t, tuple(lead) + spec.shape).reshape(tuple(lead) + (spec.size,))
        return out

    def param_mask(self, select="all") -> np.ndarray:
        """Boolean ``[P]`` selecting ``"all"``, ``"weights"``, ``"biases"``, ``"gates"``, or a list of names.

        Names may be parameter names (``"0.weight"``) or layer indices as strings (``"0"``).
        """
        mask = np.zeros(self.n_params, dtype=bool)
        kinds = {"weights": "weight", "biases": "bias", "gates": "gate"}
        if isinstance(select, str) and (select == "all" or select in kinds):
            for s in self.layout:
                mask[s.slice] = select == "all" or s.kind == kinds[select]
            return mask
        names = [select] if isinstance(select, str) else list(select)
        known = {s.name for s in self.layout} | {str(s.layer) for s in self.layout}
        for name in names:
            check_choice(str(name), sorted(known) + ["all", "weights", "biases", "gates"], "parameter selection")
        for s in self.layout:
            mask[s.slice] |= s.name in names or str(s.layer) in map(str, names)
        return mask

    def init(self, seed=0, scheme: str = "he_normal", gain: float = 1.0, dtype=np.float32) -> np.ndarray:
        """θ ``[P]`` from the ``init`` stream (an int seed, a ``Seeds`` or a Generator); see :mod:`.init`."""
        if isinstance(seed, np.random.Generator):
            rng = seed
        elif isinstance(seed, Seeds):
            rng = seed.rng("init")
        else:
            rng = stream("init", seed)
        return _init.initialize(self, rng, scheme, gain, dtype)

    # ---------------------------------------------------------------- validation
    def _check_p(self, shape, name):
        if len(shape) == 0 or shape[-1] != self.n_params:
            raise ValueError(f"{name} must have last dimension P={self.n_params}, got shape {tuple(shape)}")

    def _theta(self, theta, finite=True):
        theta = as_float_array(theta, "theta", ndim=(1, 2), finite=finite)
        self._check_p(theta.shape, "theta")
        return theta[None] if theta.ndim == 1 else theta

    def _lead(self, arr_shape, feat_ndim, E, name):
        """Size of the member axis of data (1 = shared), checking it against E."""
        extra = len(arr_shape) - feat_ndim
        if extra == 1:
            return 1
        if extra == 2 and arr_shape[0] in (1, E):
            return arr_shape[0]
        raise ValueError(f"{name} has shape {tuple(arr_shape)}; expected [N, ...] shared or [E={E}, N, ...] "
                         f"per member")

    def _X(self, X, theta, finite=True):
        X = as_float_array(X, "X", dtype=theta.dtype, finite=finite)
        d = len(self.input_shape)
        if X.shape[X.ndim - d:] != self.input_shape or X.ndim < d + 1:
            raise ValueError(f"X must have shape [N, {', '.join(map(str, self.input_shape))}] or "
                             f"[E, N, ...], got {X.shape}")
        if self._lead(X.shape, d, theta.shape[0], "X") == 1 and X.ndim == d + 1:
            X = X[None]
        return X

    def _y(self, y, X, theta, native=False):
        N = X.shape[1]
        if self.loss_fn.label_kind == "class" or np.asarray(y).dtype.kind in "iu":
            one_hot = self.loss_fn.label_kind == "target"
            y = as_labels(y, "y", None if native and not one_hot else self.n_outputs)
            if one_hot:
                y = np.eye(self.n_outputs, dtype=theta.dtype)[y]
        else:
            y = as_float_array(y, "y", dtype=theta.dtype, finite=not native)
        feat = 0 if self.loss_fn.label_kind == "class" else 1
        if feat and y.shape[-1] != self.n_outputs:
            raise ValueError(f"y targets must have {self.n_outputs} outputs, got shape {y.shape}")
        self._lead(y.shape, feat, theta.shape[0], "y")
        if y.ndim == feat + 1:
            y = y[None]
        if y.shape[1] != N:
            raise ValueError(f"y has {y.shape[1]} samples but X has {N}")
        return y

    def _prepare(self, theta, X, y=None, finite=True, native=False):
        theta2 = self._theta(theta, finite and not native)
        X3 = self._X(X, theta2, finite and not native)
        return theta2, X3, (None if y is None else self._y(y, X3, theta2, native))

    def _native_ready(self, theta, X, y) -> bool:
        """Whether θ, X and class labels y are arrays a native backend takes as they are (it then
        checks their shapes, label range and finiteness itself, with errors that name them)."""
        d = len(self.input_shape)
        return (type(theta) is np.ndarray and type(X) is np.ndarray and theta.ndim in (1, 2)
                and theta.dtype.type in (np.float32, np.float64) and X.dtype == theta.dtype
                and (X.ndim == d + 1 or (X.ndim == d + 2 and theta.ndim == 2))
                and (y is None or (self.loss_fn.label_kind == "class" and type(y) is np.ndarray
                                   and y.dtype == np.int64 and y.ndim == X.ndim - d)))

    def _backend(self, backend, theta, X, y=None, finite=True):
        """Validate θ, X (and y) for a pass: ``(backend module, kwargs for its pass, t, X3, y3)``.

        NumPy looks for NaN/inf in θ, X and MSE targets and checks the range of class labels here,
        unless the backend does both itself (``SCANS_FINITE``: the cpu backend, in the threads that
        read them next); then the wish ``finite`` goes to it as ``check_finite``, and the caller
        leaves V or g to it as well. Right after a native pass the caches hold the pass's arrays,
        not Python's, so each NumPy call here costs tens of µs: a tenth of a small net's HVP.
        """
        mod = backends.get(backend)
        native = getattr(mod, "SCANS_FINITE", False)
        if native and self._native_ready(theta, X, y):
            return (mod, {"check_finite": finite}, theta if theta.ndim == 2 else theta[None],
                    X if X.ndim > len(self.input_shape) + 1 else X[None],
                    None if y is None else y if y.ndim == 2 else y[None])
        t, X3, y3 = self._prepare(theta, X, y, finite, native)
        return mod, ({"check_finite": finite} if native else {}), t, X3, y3

    @staticmethod
    def _squeeze(out, theta):
        # (theta.ndim where it can: np.ndim's dispatch took 13-20 µs right after a native pass)
        return out[0] if (theta.ndim if type(theta) is np.ndarray else np.ndim(theta)) == 1 else out

    # ---------------------------------------------------------------- passes
    def logits(self, theta, X, backend: str | None = None) -> np.ndarray:
        """Logits ``[N, C]`` (or ``[E, N, C]`` for θ ``[E, P]``)."""
        mod, kw, t, X3, _ = self._backend(backend, theta, X)
        return self._squeeze(mod.logits(self, t, X3, **kw), theta)

    def loss(self, theta, X, y, per_sample: bool = False, backend: str | None = None):
        """Mean loss (scalar, or ``[E]``); ``per_sample=True`` gives ``[N]`` (or ``[E, N]``)."""
        mod, kw, t, X3, y3 = self._backend(backend, theta, X, y)
        losses = mod.loss(self, t, X3, y3, **kw)
        return self._squeeze(losses if per_sample else losses.mean(axis=-1), theta)

    def loss_and_grad(self, theta, X, y, backend: str | None = None):
        """(mean loss, ∇θ mean loss): scalar and ``[P]``, or ``[E]`` and ``[E, P]``."""
        mod, kw, t, X3, y3 = self._backend(backend, theta, X, y)
        loss, grad = mod.loss_and_grad(self, t, X3, y3, **kw)
        return self._squeeze(loss, theta), self._squeeze(grad, theta)

    def grad(self, theta, X, y, backend: str | None = None) -> np.ndarray:
        """∇θ of the mean loss: ``[P]`` or ``[E, P]``."""
        return self.loss_and_grad(theta, X, y, backend)[1]

    def vjp(self, theta, X, g, backend: str | None = None) -> np.ndarray:
        """Pull a cotangent on the logits back to θ: ``Σ_{n,c} g[n,c] ∂z[n,c]/∂θ``.

        This is the gradient of any loss computed outside the engine from the logits (soft-target
        distillation, custom penalties): pass ``g = ∂loss/∂logits``.

        Args:
            g: ``[N, C]`` (or ``[E, N, C]`` for θ ``[E, P]``), matching ``logits(θ, X)``.
        Returns:
            ``[P]`` or ``[E, P]``.
        """
        mod, kw, t, X3, _ = self._backend(backend, theta, X)
        g = as_float_array(g, "g", dtype=t.dtype, ndim=(2, 3), finite=not kw)
        expected = (t.shape[0], X3.shape[1], self.n_outputs)
        if g.shape[-2:] != expected[1:] or (g.ndim == 3 and g.shape[0] != expected[0]):
            raise ValueError(f"g must have shape {list(expected[1:])} or {list(expected)}, got {g.shape}")
        g3 = np.broadcast_to(g, expected)
        out = mod.vjp(self, t, X3, g3, **kw)
        return self._squeeze(out, theta)

    def hvp(self, theta, X, y, V, backend: str | None = None) -> np.ndarray:
        """Exact Hessian-vector products of the mean loss (Pearlmutter's R-operator).

        Args:
            V: tangents ``[P]``, ``[k, P]``, or per member ``[E, k, P]``.
        Returns:
            ``H V`` with V's shape, with a leading ``E`` axis when θ is ``[E, P]``.
        """
        mod, kw, t, X3, y3 = self._backend(backend, theta, X, y)
        V = as_float_array(V, "V", dtype=t.dtype, ndim=(1, 2, 3), finite=not kw)
        self._check_p(V.shape, "V")
        if V.ndim == 3 and (np.ndim(theta) != 2 or V.shape[0] != t.shape[0]):
            raise ValueError(f"V of shape {V.shape} needs θ of shape [{V.shape[0]}, P]")
        V2 = V.reshape(-1, self.n_params)  # shared tangents become a broadcast view, no copy
        V3 = V if V.ndim == 3 else V2[None] if t.shape[0] == 1 else np.broadcast_to(V2, (t.shape[0],) + V2.shape)
        out = mod.hvp(self, t, X3, y3, V3, **kw)
        if V.ndim == 1:
            out = out[:, 0]
        return self._squeeze(out, theta)

    def input_grad(self, theta, X, y, target=None, backend: str | None = None, with_logits: bool = False,
                   check_finite: bool = True):
        """∂ loss_i / ∂ x_i for every sample i (each sample's own loss, not the mean), X's shape.

        Untargeted: the gradient of CE(x, y), which an attack ascends. Targeted (``target`` given):
        the gradient of CE(x, target), which a targeted attack descends. ``with_logits=True``
        also returns the logits of the same forward pass: ``(logits, grad)``. ``check_finite=False``
        skips the NaN/inf scan of θ and X (as in SciPy: for a loop whose inputs are finite by
        construction, e.g. an attack's iterates; non-finite input then gives non-finite output).
        """
        mod, kw, t, X3, y3 = self._backend(backend, theta, X, y if target is None else target, check_finite)
        z, gx = mod.input_grad(self, t, X3, y3, **kw)
        gx = gx if np.ndim(X) > len(self.input_shape) + 1 or np.ndim(theta) == 2 else gx[0]
        return (self._squeeze(z, theta), gx) if with_logits else gx

    def accuracy(self, theta, X, y, backend: str | None = None):
        """Fraction of correct arg-max predictions: scalar, or ``[E]``."""
        mod, kw, t, X3, y3 = self._backend(backend, theta, X, y)
        z = mod.logits(self, t, X3, **kw)
        labels = y3 if y3.ndim == 2 else y3.argmax(-1)
        return self._squeeze((z.argmax(-1) == labels).mean(axis=-1), theta)
