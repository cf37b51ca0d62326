"""The reference (NumPy) twins of the data-parallel kernels: the specification of each one.

Every function here has a twin of the same name and signature in
:mod:`pyquirk.backends.numba_kernels`; the tests run both on identical inputs. Inputs arrive already
validated and normalised by :mod:`pyquirk.kernels` (the public entry points), so these functions
state the math and nothing else. They favour clarity over speed.

Shared conventions:

- ``theta: [P]`` is the flat parameter vector; ``segments`` is a list of ``(offset, size)`` pairs,
  sorted by offset and non-overlapping, naming the slices of θ that form a selection scope.
- Batch kernels see ``x: [M, D]`` (one sample row per ε value, restart and example, features
  flattened) and ``x0: [N, D]`` with ``M % N == 0``: row ``m`` belongs to ``x0[m % N]``.
- Per-row scalars ``eps``, ``alpha``: ``[M]`` float64. ``lo``, ``hi``: float scalars.
- Element-wise arithmetic runs in the data's dtype (scalars rounded to it first); norms are
  accumulated in float64, and per-row scale factors are computed in float64, then rounded.
"""
from __future__ import annotations

import numpy as np

#: floor of ‖g‖ in the L2 steepest step (DESIGN §4)
L2_STEP_FLOOR = 1e-12
#: added to ‖d‖ in filter normalization (Li et al. 2018)
FILTER_NORM_EPS = 1e-10


# ------------------------------------------------------------------------------------ pruning
def magnitude_select(theta, k, segments):
    """Keep mask ``[P]``: prune the k entries of the scope with the smallest ``(|θ_i|, i)``."""
    idx = np.concatenate([np.arange(o, o + s) for o, s in segments])  # increasing flat indices
    mag = np.abs(theta[idx])
    if not np.all(np.isfinite(mag)):
        raise ValueError("theta contains NaN or infinite values in the selection scope")
    order = np.argsort(mag, kind="stable")   # stable: equal magnitudes stay in index order
    mask = np.ones(theta.shape[0], dtype=bool)
    mask[idx[order[:k]]] = False
    return mask


def per_segment_select(theta, ks, segments):
    """Keep mask ``[P]``: in each segment its own ``ks[j]`` smallest ``(|θ_i|, i)`` are pruned."""
    mask = np.ones(theta.shape[0], dtype=bool)
    for k, seg in zip(ks, segments):
        mask &= magnitude_select(theta, k, [seg])
    return mask


def apply_mask(theta, mask, out):
    """``out[e, i] = θ[e, i] if mask[e or 0, i] else +0``; ``theta: [E, P]``, ``mask: [1 or E, P]``."""
    out[...] = np.where(mask, theta, theta.dtype.type(0))
    return out


# ------------------------------------------------------------------------------------ attacks
def _rows(x, x0):
    """View ``x: [M, D]`` as ``[M // N, N, D]`` so that ``x0: [N, D]`` broadcasts over it."""
    return x.reshape(-1, x0.shape[0], x.shape[1]), x0[None]


def _row_norms(a):
    """Euclidean norm of each row of ``a: [M, D]``, accumulated in float64 -> ``[M]``."""
    return np.sqrt(np.sum(np.square(a, dtype=np.float64), axis=1))


def project_linf(x, x0, eps, lo, hi):
    """``clip(x0 + clip(x − x0, −ε, ε), lo, hi)`` per row, in x's dtype -> ``[M, D]``."""
    dt = x.dtype.type
    x3, x03 = _rows(x, x0)
    e = eps.astype(x.dtype).reshape(x3.shape[0], x3.shape[1], 1)
    delta = np.clip(x3 - x03, -e, e)
    return np.clip(x03 + delta, dt(lo), dt(hi)).reshape(x.shape)


def project_l2(x, x0, eps, lo, hi):
    """``clip(x0 + δ·s, lo, hi)`` with ``δ = x − x0``, ``s = min(1, ε/‖δ‖₂)`` (s = 1 when ‖δ‖ ≤ ε)."""
    dt = x.dtype.type
    x3, x03 = _rows(x, x0)
    delta = (x3 - x03).reshape(x.shape)
    nrm = _row_norms(delta)
    scale = np.where(nrm <= eps, 1.0, eps / np.where(nrm > 0, nrm, 1.0)).astype(x.dtype)
    delta = (delta * scale[:, None]).reshape(x3.shape)
    return np.clip(x03 + delta, dt(lo), dt(hi)).reshape(x.shape)


def steepest_step(x, g, alpha, norm):
    """L∞: ``x + α·sign(g)``; L2: ``x + g·s`` with ``s = α / max(‖g‖₂, 1e-12)`` per row."""
    if norm == "linf":
        return x + alpha.astype(x.dtype)[:, None] * np.sign(g)
    scale = (alpha / np.maximum(_row_norms(g), L2_STEP_FLOOR)).astype(x.dtype)
    return x + g * scale[:, None]


def random_start(x0, eps, norm, noise, radial, lo, hi):
    """A start uniform in the ε-ball around ``x0[m % N]``, clipped to ``[lo, hi]`` -> ``[M, D]``.

    ``noise: [M, D]`` float64 and ``radial: [M]`` float64 are the draws (made by the caller):
    - L∞: ``noise ~ U[−1, 1)``; ``δ = ε·noise`` (float64, then rounded to the dtype).
    - L2: ``noise ~ N(0, I)``, ``radial ~ U[0, 1)``; ``δ = noise · (ε·radial^(1/D) / ‖noise‖₂)``.
    Then ``clip(x0 + δ, lo, hi)`` in the dtype.
    """
    dt = x0.dtype.type
    M, D = noise.shape
    if norm == "linf":
        delta = (eps[:, None] * noise).astype(x0.dtype)
    else:
        r = eps * radial ** (1.0 / D)
        nrm = _row_norms(noise)
        delta = (noise * (r / np.where(nrm > 0, nrm, 1.0))[:, None]).astype(x0.dtype)
    x3 = delta.reshape(-1, x0.shape[0], D)
    return np.clip(x0[None] + x3, dt(lo), dt(hi)).reshape(M, D)


# ------------------------------------------------------------------------------------ landscape
def grid_points(theta, d1, d2, alphas, betas, out):
    """``out[t] = (θ + α_t·d₁) + β_t·d₂``, each point computed fresh in θ's dtype -> ``[T, P]``."""
    a = alphas.astype(theta.dtype)[:, None]
    b = betas.astype(theta.dtype)[:, None]
    out[...] = (theta[None] + a * d1[None]) + b * d2[None]
    return out


def filter_normalize(direction, theta, net, keep_biases):
    """Li et al. (2018) filter normalization of ``direction: [E, P]`` against ``theta: [E or 1, P]``.

    Weights (ndim ≥ 2): per output unit/channel f (dim 0), ``d_f · (‖θ_f‖ / (‖d_f‖ + 1e-10))``.
    1-D parameters (biases): zero, or with ``keep_biases`` the whole vector normalised the same way.
    Norms are float64; the scale factor is rounded to the dtype before the multiply.
    """
    out = np.array(direction, copy=True)
    E = direction.shape[0]
    for spec in net.layout:
        d = direction[:, spec.slice]
        if len(spec.shape) <= 1 and not keep_biases:
            out[:, spec.slice] = 0
            continue
        rows = spec.shape[0] if len(spec.shape) >= 2 else 1
        d = d.reshape(E * rows, -1)
        t = np.broadcast_to(theta[:, spec.slice], (E, spec.size)).reshape(E * rows, -1)
        scale = (_row_norms(t) / (_row_norms(d) + FILTER_NORM_EPS)).astype(direction.dtype)
        out[:, spec.slice] = (d * scale[:, None]).reshape(E, spec.size)
    return out
