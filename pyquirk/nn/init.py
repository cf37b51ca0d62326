"""Initialization schemes for a flat θ.

fan_in = in·prod(kernel), fan_out = out·prod(kernel). Every scheme multiplies its standard
deviation (or bound) by ``gain``:

==================  =====================================  ======================================
scheme              normal: std                            uniform: bound
==================  =====================================  ======================================
lecun               gain/√fan_in                           gain·√(3/fan_in)
glorot (xavier)     gain·√(2/(fan_in+fan_out))             gain·√(6/(fan_in+fan_out))
he (kaiming)        gain·√(2/fan_in)                       gain·√(6/fan_in)
scaled_normal       gain/√fan_in  (σ_w² = gain², the mean-field scale-sweep parameterisation)
orthogonal          gain·Q, Q from the QR of a Gaussian [out, fan_in] with sign fix (Saxe 2014)
==================  =====================================  ======================================

Biases start at zero and unit gates at one. Draws come from the ``init`` RNG stream, layer by layer in θ order.
"""
from __future__ import annotations

import math

import numpy as np

from .._validate import check_choice

SCHEMES = ("lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal",
           "he_uniform", "orthogonal", "scaled_normal")


def _orthogonal(rng, rows, cols, gain):
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return gain * (q if rows >= cols else q.T)


def init_weight(rng: np.random.Generator, shape: tuple, scheme: str, gain: float) -> np.ndarray:
    """One weight tensor ``[out, in, *kernel]`` in float64."""
    out, fan_in = shape[0], math.prod(shape[1:])
    fan_out = out * math.prod(shape[2:])
    if scheme == "orthogonal":
        return _orthogonal(rng, out, fan_in, gain).reshape(shape)
    family, dist = scheme.rsplit("_", 1)
    var = {"lecun": 1 / fan_in, "scaled": 1 / fan_in, "glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in}[family]
    std = gain * math.sqrt(var)
    if dist == "normal":
        return rng.normal(0.0, std, size=shape)
    return rng.uniform(-math.sqrt(3) * std, math.sqrt(3) * std, size=shape)


def initialize(net, rng: np.random.Generator, scheme: str = "he_normal", gain: float = 1.0,
               dtype=np.float32) -> np.ndarray:
    """θ ``[P]`` for ``net`` drawn with ``scheme`` from ``rng``."""
    check_choice(scheme, SCHEMES, "init scheme")
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    theta = np.zeros(net.n_params, dtype=np.float64)
    for spec in net.layout:
        if spec.kind == "weight":
            theta[spec.slice] = init_weight(rng, spec.shape, scheme, gain).ravel()
        elif spec.kind == "gate":
            theta[spec.slice] = 1.0  # gates start open
    return theta.astype(dtype)
