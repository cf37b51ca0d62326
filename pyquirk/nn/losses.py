"""Losses with their gradient and R-operator, on logits ``z: [*B, N, C]``.

``scale`` multiplies the per-sample gradient: ``1/N`` for the mean loss (the engine's default),
``1`` for the gradient of each sample's own loss (``input_grad``).
"""
from __future__ import annotations

import numpy as np


def _one_hot(y, C, dtype):
    return (y[..., None] == np.arange(C)).astype(dtype)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class CrossEntropy:
    """Softmax cross-entropy with integer labels ``y: [*B, N]``; stable log-sum-exp."""

    name = "ce"
    label_kind = "class"

    def per_sample(self, z, y):
        m = z.max(axis=-1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]
        return lse - (z * _one_hot(y, z.shape[-1], z.dtype)).sum(axis=-1)

    def grad(self, z, y, scale):
        """∂(scale·l)/∂z = scale·(softmax(z) − onehot(y))."""
        return scale * (softmax(z) - _one_hot(y, z.shape[-1], z.dtype))

    def rgrad(self, z, y, dz, scale):
        """R-operator of ``grad``: scale·(diag(s) − s sᵀ)·dz."""
        s = softmax(z)
        sdz = s * dz
        return scale * (sdz - s * sdz.sum(axis=-1, keepdims=True))


class MSE:
    """Mean squared error over outputs, ``l = mean_c (z_c − t_c)²``, targets ``t: [*B, N, C]``.

    The batch mean of ``l`` equals PyTorch's ``MSELoss(reduction="mean")``.
    """

    name = "mse"
    label_kind = "target"

    def per_sample(self, z, t):
        return ((z - t) ** 2).mean(axis=-1)

    def grad(self, z, t, scale):
        return scale * 2 * (z - t) / z.shape[-1]

    def rgrad(self, z, t, dz, scale):
        return scale * 2 * dz / z.shape[-1]


LOSSES = {"ce": CrossEntropy, "cross_entropy": CrossEntropy, "mse": MSE}
