"""Layers of the reference engine: forward, VJP and R-op side by side, in plain NumPy.

This file is the specification that every fast path is judged against, so it favours clarity
over speed.

Array conventions
-----------------
Every array carries leading *model* dimensions ``B`` before the sample axis ``N``:

- ``x: [*B, N, *features]``; for convolutions ``features = (C, *S)`` (channels, then spatial dims).
- parameters ``W: [*B, *shape]``, ``b: [*B, out]``.

``B`` is ``(E,)`` for a population of E networks and ``(E, k)`` inside an HVP, where k tangents
share one primal pass. Size-1 model dims broadcast (shared data has ``B = (1,)``).

Each layer implements four maps, with ``cache`` what ``forward`` saved:

- ``forward(p, x) -> (y, cache)``
- ``vjp(p, cache, gy, need_gx) -> (gx, gp)``: reverse mode; parameter gradients are summed over N.
- ``jvp(p, dp, cache, dx) -> dy``: the R-operator of the forward pass (Pearlmutter 1994).
- ``rvjp(p, dp, cache, dx, gy, dgy, need_gx) -> (dgx, dgp)``: the R-operator of the backward pass,
  i.e. the directional derivative of ``vjp`` along ``(dp, dx, dgy)``.

A tangent of ``None`` means zero (e.g. the network input has no tangent).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf

from .._validate import check_choice, check_positive_int


def _t(a):
    """aᵀ over the last two axes, as a contiguous array.

    NumPy's stacked matmul only takes its BLAS path when the left operand is contiguous;
    a transposed view there is ~20× slower.
    """
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))


class Layer:
    """Base class. ``build(in_shape)`` fixes the shapes and returns the output feature shape."""

    #: (suffix, shape) of each parameter, set by ``build``; e.g. [("weight", (10, 40)), ("bias", (10,))]
    param_shapes: list = []

    def build(self, in_shape: tuple) -> tuple:
        self.in_shape = tuple(in_shape)
        self.param_shapes = []
        return self.in_shape

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def config(self) -> dict:
        return {}


# --------------------------------------------------------------------------------------------
# Parameter layers: y = op(x, W) + b is bilinear in (x, W), so all four maps follow from three
# linear maps: op(x, W), its adjoint in x (op_x) and its adjoint in W (op_w).
# --------------------------------------------------------------------------------------------

class _Bilinear(Layer):
    def forward(self, p, x):
        W, b = p
        return self.op(x, W) + self.expand_bias(b), x

    def vjp(self, p, x, gy, need_gx=True):
        W, _ = p
        gx = self.op_x(gy, W) if need_gx else None
        return gx, (self.op_w(x, gy), self.sum_bias(gy))

    def jvp(self, p, dp, x, dx):
        W, _ = p
        dW, db = dp
        dy = self.op(x, dW) + self.expand_bias(db)
        return dy if dx is None else dy + self.op(dx, W)

    def rvjp(self, p, dp, x, dx, gy, dgy, need_gx=True):
        W, _ = p
        dW, _ = dp
        dgx = self.op_x(dgy, W) + self.op_x(gy, dW) if need_gx else None
        dgW = self.op_w(x, dgy)
        if dx is not None:
            dgW = dgW + self.op_w(dx, gy)
        return dgx, (dgW, self.sum_bias(dgy))


class Dense(_Bilinear):
    """Fully connected: ``y = x Wᵀ + b`` with ``W: [out, in]`` (PyTorch layout)."""

    def __init__(self, out_features: int, in_features: int | None = None):
        self.out_features = check_positive_int(out_features, "out_features")
        self.in_features = None if in_features is None else check_positive_int(in_features, "in_features")

    def config(self):
        return {"out_features": self.out_features, "in_features": self.in_features}

    def build(self, in_shape):
        if len(in_shape) != 1:
            raise ValueError(f"Dense expects a flat input, got feature shape {tuple(in_shape)}; add Flatten()")
        if self.in_features is not None and self.in_features != in_shape[0]:
            raise ValueError(f"Dense(in_features={self.in_features}) receives {in_shape[0]} features")
        self.in_shape, self.in_features = tuple(in_shape), in_shape[0]
        self.param_shapes = [("weight", (self.out_features, self.in_features)), ("bias", (self.out_features,))]
        return (self.out_features,)

    def op(self, x, W):  # [*B, N, in], [*B, out, in] -> [*B, N, out]
        return x @ np.swapaxes(W, -1, -2)

    def op_x(self, gy, W):  # adjoint in x: [*B, N, out] -> [*B, N, in]
        return gy @ W

    def op_w(self, x, gy):  # adjoint in W, summed over N: -> [*B, out, in]
        return _t(gy) @ x

    def expand_bias(self, b):
        return b[..., None, :]

    def sum_bias(self, gy):
        return gy.sum(axis=-2)


class _Conv(_Bilinear):
    """Convolution over ``d`` spatial dims by im2col + GEMM. ``W: [out, in, *kernel]``."""

    d = 0

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0):
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel = self._tuple(kernel_size, "kernel_size", 1)
        self.stride = self._tuple(stride, "stride", 1)
        self.padding = self._tuple(padding, "padding", 0)

    def _tuple(self, v, name, minimum):
        v = (v,) * self.d if isinstance(v, (int, np.integer)) else tuple(v)
        if len(v) != self.d:
            raise ValueError(f"{name} needs {self.d} values, got {v}")
        return tuple(check_positive_int(int(e), name, minimum=minimum) for e in v)

    def config(self):
        return {"out_channels": self.out_channels, "kernel_size": self.kernel,
                "stride": self.stride, "padding": self.padding}

    def build(self, in_shape):
        if len(in_shape) != self.d + 1:
            raise ValueError(f"{type(self).__name__} expects input (channels, {self.d} spatial dims), "
                             f"got feature shape {tuple(in_shape)}")
        self.in_shape = tuple(in_shape)
        C, S = in_shape[0], in_shape[1:]
        self.out_spatial = tuple((s + 2 * p - k) // st + 1
                                 for s, p, k, st in zip(S, self.padding, self.kernel, self.stride))
        if min(self.out_spatial) < 1:
            raise ValueError(f"{type(self).__name__}: kernel {self.kernel} does not fit input {tuple(S)}")
        self.param_shapes = [("weight", (self.out_channels, C) + self.kernel), ("bias", (self.out_channels,))]
        return (self.out_channels,) + self.out_spatial

    # im2col: [*B, N, C, *S] -> [*B, N, prod(So), C*prod(K)]
    def patches(self, x):
        d = self.d
        pad = [(0, 0)] * (x.ndim - d) + [(p, p) for p in self.padding]
        win = sliding_window_view(np.pad(x, pad), self.kernel, axis=tuple(range(-d, 0)))
        win = win[(Ellipsis,) + tuple(slice(None, None, s) for s in self.stride) + (slice(None),) * d]
        c_axis = win.ndim - 2 * d - 1
        perm = (list(range(c_axis)) + list(range(c_axis + 1, c_axis + 1 + d))
                + [c_axis] + list(range(win.ndim - d, win.ndim)))
        cols = win.transpose(perm)  # [*B, N, *So, C, *K]
        return cols.reshape(cols.shape[:c_axis] + (math.prod(self.out_spatial), -1))

    # col2im, the adjoint of ``patches``: [*B, N, prod(So), C*prod(K)] -> [*B, N, C, *S]
    def unpatches(self, cols):
        d, C = self.d, self.in_shape[0]
        lead = cols.shape[:-2]
        cols = cols.reshape(lead + self.out_spatial + (C,) + self.kernel)
        padded = tuple(s + 2 * p for s, p in zip(self.in_shape[1:], self.padding))
        out = np.zeros(lead + (C,) + padded, dtype=cols.dtype)
        c_axis = len(lead) + d
        for k in np.ndindex(*self.kernel):
            block = np.moveaxis(cols[(Ellipsis,) + k], c_axis, len(lead))  # [*lead, C, *So]
            sl = tuple(slice(ki, ki + st * so, st) for ki, st, so in zip(k, self.stride, self.out_spatial))
            out[(Ellipsis,) + sl] += block
        crop = tuple(slice(p, p + s) for p, s in zip(self.padding, self.in_shape[1:]))
        return out[(Ellipsis,) + crop]

    def _wmat(self, W):  # [*B, out, C, *K] -> [*B, out, C*prod(K)]
        return W.reshape(W.shape[:-self.d - 1] + (-1,))

    def _to_channels_first(self, y):  # [*B, N, prod(So), out] -> [*B, N, out, *So]
        # contiguous, so later reductions sum in the same order whatever the model dims are
        # (this keeps the population axis bit-exact)
        y = np.ascontiguousarray(np.swapaxes(y, -1, -2))
        return y.reshape(y.shape[:-1] + self.out_spatial)

    def _to_channels_last(self, gy):  # [*B, N, out, *So] -> [*B, N, prod(So), out]
        return _t(gy.reshape(gy.shape[:-self.d] + (-1,)))

    def op(self, x, W):
        return self._to_channels_first(self.patches(x) @ np.swapaxes(self._wmat(W), -1, -2)[..., None, :, :])

    def op_x(self, gy, W):
        return self.unpatches(self._to_channels_last(gy) @ self._wmat(W)[..., None, :, :])

    def op_w(self, x, gy):
        g, cols = self._to_channels_last(gy), self.patches(x)
        g = g.reshape(g.shape[:-3] + (-1, g.shape[-1]))            # merge N and positions
        cols = cols.reshape(cols.shape[:-3] + (-1, cols.shape[-1]))
        gW = _t(g) @ cols                                            # [*B, out, C*prod(K)]
        return gW.reshape(gW.shape[:-1] + self.param_shapes[0][1][1:])

    def expand_bias(self, b):
        return b.reshape(b.shape[:-1] + (1, b.shape[-1]) + (1,) * self.d)

    def sum_bias(self, gy):
        return gy.sum(axis=(-self.d - 2,) + tuple(range(-self.d, 0)))


class Conv1d(_Conv):
    """1-D convolution, input ``[N, C, L]``, weight ``[out, C, k]``."""
    d = 1


class Conv2d(_Conv):
    """2-D convolution, input ``[N, C, H, W]``, weight ``[out, C, kh, kw]``."""
    d = 2


class Gate(Layer):
    """Multiplicative unit gates, ``y = x · g`` per unit (Dense) or channel (conv), ``g: [units]``.

    HAT (Serrà et al. 2018) sets ``g = σ(s·e_t)`` per task; as a parameter in θ (kind ``"gate"``,
    initialised to 1) its gradient is available to any chain rule. Like a Dense layer this is
    bilinear in (x, g), so the four maps have the same shape.
    """

    def build(self, in_shape):
        self.in_shape = tuple(in_shape)
        self.param_shapes = [("gate", (in_shape[0],))]
        return self.in_shape

    def expand(self, g):  # [*B, U] -> [*B, 1, U, 1, ...] against x [*B, N, U, *S]
        return g.reshape(g.shape[:-1] + (1, g.shape[-1]) + (1,) * (len(self.in_shape) - 1))

    def reduce(self, t):  # sum over N and spatial dims: [*B, N, U, *S] -> [*B, U]
        spatial = tuple(range(-len(self.in_shape) + 1, 0))
        return t.sum(axis=(-len(self.in_shape) - 1,) + spatial)

    def forward(self, p, x):
        return x * self.expand(p[0]), x

    def vjp(self, p, x, gy, need_gx=True):
        return gy * self.expand(p[0]), (self.reduce(gy * x),)

    def jvp(self, p, dp, x, dx):
        dy = x * self.expand(dp[0])
        return dy if dx is None else dy + dx * self.expand(p[0])

    def rvjp(self, p, dp, x, dx, gy, dgy, need_gx=True):
        dgx = dgy * self.expand(p[0]) + gy * self.expand(dp[0])
        dgg = self.reduce(dgy * x)
        return dgx, ((dgg if dx is None else dgg + self.reduce(gy * dx)),)


# --------------------------------------------------------------------------------------------
# Layers that are linear in x for a fixed cache (pooling, flatten): jvp applies the same linear
# map to the tangent, rvjp applies the adjoint to the tangent of the cotangent.
# --------------------------------------------------------------------------------------------

class _LinearInX(Layer):
    def jvp(self, p, dp, cache, dx):
        return None if dx is None else self.apply(cache, dx)

    def vjp(self, p, cache, gy, need_gx=True):
        return (self.adjoint(cache, gy) if need_gx else None), ()

    def rvjp(self, p, dp, cache, dx, gy, dgy, need_gx=True):
        return self.vjp(p, cache, dgy, need_gx)


class _Pool(_LinearInX):
    """Pooling over the trailing spatial dims of ``[*B, N, C, *S]`` (1-D or 2-D, from the input)."""

    def __init__(self, kernel_size, stride=None):
        self.kernel_arg, self.stride_arg = kernel_size, stride

    def config(self):
        return {"kernel_size": self.kernel_arg, "stride": self.stride_arg}

    def build(self, in_shape):
        if len(in_shape) not in (2, 3):
            raise ValueError(f"{type(self).__name__} expects (channels, L) or (channels, H, W), got {tuple(in_shape)}")
        d = len(in_shape) - 1
        as_tuple = lambda v, name: tuple(check_positive_int(int(e), name) for e in ((v,) * d if np.isscalar(v) else v))
        self.kernel = as_tuple(self.kernel_arg, "kernel_size")
        self.stride = self.kernel if self.stride_arg is None else as_tuple(self.stride_arg, "stride")
        if len(self.kernel) != d or len(self.stride) != d:
            raise ValueError(f"{type(self).__name__}: kernel/stride need {d} values")
        self.d, self.in_shape, self.param_shapes = d, tuple(in_shape), []
        self.out_spatial = tuple((s - k) // st + 1 for s, k, st in zip(in_shape[1:], self.kernel, self.stride))
        if min(self.out_spatial) < 1:
            raise ValueError(f"{type(self).__name__}: kernel {self.kernel} does not fit input {tuple(in_shape[1:])}")
        return (in_shape[0],) + self.out_spatial

    def windows(self, x):  # [*B, N, C, *S] -> [*B, N, C, *So, prod(K)]
        d = self.d
        win = sliding_window_view(x, self.kernel, axis=tuple(range(-d, 0)))
        win = win[(Ellipsis,) + tuple(slice(None, None, s) for s in self.stride) + (slice(None),) * d]
        return win.reshape(win.shape[:-d] + (-1,))

    def scatter(self, weights_of_offset, gy):
        """Adjoint of reading windows: sum ``gy * weights_of_offset(j)`` back into each offset j."""
        out = np.zeros(gy.shape[:-self.d] + self.in_shape[1:], dtype=gy.dtype)
        for j, k in enumerate(np.ndindex(*self.kernel)):
            sl = tuple(slice(ki, ki + st * so, st) for ki, st, so in zip(k, self.stride, self.out_spatial))
            out[(Ellipsis,) + sl] += gy * weights_of_offset(j)
        return out


class MaxPool(_Pool):
    """Max pooling; the arg-max (first maximum on ties) is fixed by the primal pass."""

    def forward(self, p, x):
        win = self.windows(x)
        idx = win.argmax(axis=-1)
        return np.take_along_axis(win, idx[..., None], -1)[..., 0], idx

    def apply(self, idx, dx):
        idx = np.broadcast_to(idx, np.broadcast_shapes(idx.shape, dx.shape[:-self.d] + idx.shape[-self.d:]))
        return np.take_along_axis(self.windows(dx), idx[..., None], -1)[..., 0]

    def adjoint(self, idx, gy):
        return self.scatter(lambda j: idx == j, gy)


class AvgPool(_Pool):
    """Average pooling (no padding)."""

    def forward(self, p, x):
        return self.windows(x).mean(axis=-1), None

    def apply(self, cache, dx):
        return self.windows(dx).mean(axis=-1)

    def adjoint(self, cache, gy):
        return self.scatter(lambda j: 1.0 / math.prod(self.kernel), gy)


class Flatten(_LinearInX):
    """``[*B, N, *features] -> [*B, N, prod(features)]``."""

    def build(self, in_shape):
        self.in_shape, self.param_shapes = tuple(in_shape), []
        return (math.prod(in_shape),)

    def forward(self, p, x):
        return self.apply(None, x), None

    def apply(self, cache, dx):
        return dx.reshape(dx.shape[:dx.ndim - len(self.in_shape)] + (-1,))

    def adjoint(self, cache, gy):
        return gy.reshape(gy.shape[:-1] + self.in_shape)


# --------------------------------------------------------------------------------------------
# Element-wise activations: y = f(x).  vjp: gy·f'(x).  jvp: f'(x)·dx.
# rvjp: dgy·f'(x) + gy·f''(x)·dx.
# --------------------------------------------------------------------------------------------

class _Activation(Layer):
    def forward(self, p, x):
        return self.f(x), x

    def vjp(self, p, x, gy, need_gx=True):
        return gy * self.df(x), ()

    def jvp(self, p, dp, x, dx):
        return None if dx is None else self.df(x) * dx

    def rvjp(self, p, dp, x, dx, gy, dgy, need_gx=True):
        dgx = dgy * self.df(x)
        return (dgx if dx is None else dgx + gy * self.d2f(x) * dx), ()


class Identity(_Activation):
    def f(self, x):
        return x

    def df(self, x):
        return np.ones_like(x)

    def d2f(self, x):
        return np.zeros_like(x)


class ReLU(_Activation):
    """max(x, 0); the derivative at 0 is taken as 0 (PyTorch's convention)."""

    def f(self, x):
        return np.maximum(x, 0)

    def df(self, x):
        return (x > 0).astype(x.dtype)

    def d2f(self, x):
        return np.zeros_like(x)


class LeakyReLU(_Activation):
    """x for x > 0, slope·x otherwise (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = float(negative_slope)

    def config(self):
        return {"negative_slope": self.negative_slope}

    def f(self, x):
        return np.where(x > 0, x, self.negative_slope * x)

    def df(self, x):
        return np.where(x > 0, 1.0, self.negative_slope).astype(x.dtype)

    def d2f(self, x):
        return np.zeros_like(x)


class Tanh(_Activation):
    def f(self, x):
        return np.tanh(x)

    def df(self, x):
        return 1 - np.tanh(x) ** 2

    def d2f(self, x):
        t = np.tanh(x)
        return -2 * t * (1 - t ** 2)


class Sigmoid(_Activation):
    def f(self, x):
        return 0.5 * (1 + np.tanh(0.5 * x))  # overflow-free logistic

    def df(self, x):
        s = self.f(x)
        return s * (1 - s)

    def d2f(self, x):
        s = self.f(x)
        return s * (1 - s) * (1 - 2 * s)


class GELU(_Activation):
    """Exact GELU, x·Φ(x) (PyTorch's default, not the tanh approximation)."""

    def f(self, x):
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))

    def df(self, x):
        return 0.5 * (1 + erf(x / math.sqrt(2))) + x * _phi(x)

    def d2f(self, x):
        return _phi(x) * (2 - x ** 2)


def _phi(x):
    """Standard normal density."""
    return np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)


ACTIVATIONS = {"identity": Identity, "relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh,
               "sigmoid": Sigmoid, "gelu": GELU}
LAYERS = {"dense": Dense, "conv1d": Conv1d, "conv2d": Conv2d, "maxpool": MaxPool, "avgpool": AvgPool,
          "flatten": Flatten, "gate": Gate, **ACTIVATIONS}


def make_layer(spec) -> Layer:
    """A layer from an instance or a name such as ``"relu"`` (only parameter-free names)."""
    if isinstance(spec, Layer):
        return spec
    if isinstance(spec, str):
        cls = LAYERS[check_choice(spec.lower(), LAYERS, "layer name")]
        try:
            return cls()
        except TypeError:
            raise ValueError(f"layer {spec!r} needs arguments; pass an instance such as {cls.__name__}(...)") from None
    raise TypeError(f"a layer must be a pyquirk.nn layer or a layer name, got {type(spec).__name__}")
