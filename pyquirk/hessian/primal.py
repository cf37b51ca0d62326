"""Hessian-vector products with the primal pass computed once per operator, not once per call.

``net.hvp(θ, X, y, V)`` shares one primal forward and backward pass among the k tangents of one
call. An iterative eigensolver calls it many times at the *same* θ and data, so that primal pass is
the same every time: for MLP 784-512-512-10 on N = 1024 it is 3.3 of the 8.2 GFLOP of a one-tangent
HVP (``bench.workloads.flops``). :class:`PrimalCache` runs it once, keeps every layer's cache (its input,
or a pool's indices) and every layer's output cotangent, and then each product is the tangent pass
alone: the R-forward, the loss's R-operator and the R-backward. For an MLP (Dense layers and
element-wise activations) the tangent pass is written on 2-D arrays, one BLAS GEMM per product with
the activation derivatives stored once (:meth:`PrimalCache._dense_hvp`); any other net runs the
reference layers' ``jvp``/``rvjp`` in the order of :func:`pyquirk.backends.reference.hvp`, whose
result it reproduces bit for bit. Both are tested against ``net.hvp`` on every layer type.

Memory: at most four activations per example per layer (inputs, cotangents, f'(x), g·f''(x)) in θ's dtype; for the
benchmark MLP (ReLU: f'' = 0 is not stored) that is 35 MB for N = 1024.
"""
from __future__ import annotations

import math

import numpy as np

from ..nn.layers import Dense, _Activation
from ..nn.net import Net

#: layers of the nets whose tangent pass runs on 2-D BLAS GEMMs (:meth:`PrimalCache._dense_hvp`),
#: where it was measured faster than the engine's HVP at every block size (docs/hessian.md §6)
DENSE_LAYERS = (Dense, _Activation)


def cache_bytes(net: Net, n_examples: int, itemsize: int) -> int:
    """Bytes a :class:`PrimalCache` holds for ``n_examples``: every layer's input and output cotangent."""
    per = sum(math.prod(getattr(layer, "in_shape", ())) for layer in net.layers) + net.n_outputs
    return 4 * per * n_examples * itemsize       # inputs, cotangents, f'(x) and g·f''(x) at most


def measured_net(net: Net) -> bool:
    """True for an MLP (Dense layers and element-wise activations only): the benchmarked fast path."""
    return all(isinstance(layer, DENSE_LAYERS) for layer in net.layers)


class PrimalCache:
    """The primal quantities of the mean-loss Hessian of ``net`` at ``θ`` on one batch ``(X, y)``.

    ``hvp(V)`` with ``V: [k, P]`` returns ``H V`` ``[k, P]`` (Hessian of the batch's mean loss) in
    θ's dtype; no primal work is repeated between calls.
    """

    def __init__(self, net: Net, theta, X, y):
        t, X3, y3 = net._prepare(theta, X, y)               # [1, P], [1, N, ...], [1, N(, C)]
        self.net, self.dtype = net, t.dtype
        self.params = net.layer_params(t[:, None, :])        # model dims (1, 1), broadcast over k
        self.y = y3[:, None]
        x, self.caches = X3[:, None], []
        for layer, p in zip(net.layers, self.params):
            x, cache = layer.forward(p, x)                   # what the layer's jvp/rvjp need (its input, pool indices)
            self.caches.append(cache)
        self.z, self.scale = x, 1.0 / x.shape[-2]
        g = net.loss_fn.grad(x, self.y, self.scale)
        self.cotangents = [None] * len(net.layers)           # ∂(mean loss)/∂(output of layer i)
        for i in reversed(range(len(net.layers))):
            self.cotangents[i] = g
            if i > 0:
                g, _ = net.layers[i].vjp(self.params[i], self.caches[i], g, need_gx=True)
        self.dense = measured_net(net)
        if self.dense:                                       # 2-D views and activation derivatives, once
            self.x2 = [c[0, 0] for c in self.caches]
            self.g2 = [c[0, 0] for c in self.cotangents]
            self.W2 = [p[0][0, 0] if p else None for p in self.params]
            self.d1 = [layer.df(x) if isinstance(layer, _Activation) else None
                       for layer, x in zip(net.layers, self.x2)]
            d2 = [layer.d2f(x) if isinstance(layer, _Activation) else None for layer, x in zip(net.layers, self.x2)]
            self.gd2 = [None if d is None or not d.any() else g * d for d, g in zip(d2, self.g2)]

    def hvp(self, V) -> np.ndarray:
        """``H V`` for ``V: [k, P]`` (θ's dtype): the R-forward and R-backward passes only."""
        V = np.ascontiguousarray(V, dtype=self.dtype)
        return self._dense_hvp(V) if self.dense else self._layer_hvp(V)

    def _layer_hvp(self, V) -> np.ndarray:
        """Any net: the reference layers' ``jvp``/``rvjp`` with the stored primal quantities."""
        net = self.net
        dparams = net.layer_params(V[None])                  # model dims (1, k)
        dxs, dx = [], None
        for layer, p, dp, cache in zip(net.layers, self.params, dparams, self.caches):
            dxs.append(dx)
            dx = layer.jvp(p, dp, cache, dx)
        dg = net.loss_fn.rgrad(self.z, self.y, dx, self.scale)
        dgrads = [None] * len(net.layers)
        for i in reversed(range(len(net.layers))):
            dg, dgrads[i] = net.layers[i].rvjp(self.params[i], dparams[i], self.caches[i], dxs[i],
                                               self.cotangents[i], dg, need_gx=i > 0)
        return net.flatten(dgrads, (1, V.shape[0]), self.dtype)[0]

    def _dense_hvp(self, V) -> np.ndarray:
        """An MLP: the same R-operator written on 2-D arrays, one BLAS GEMM per product.

        Tangent quantities are ``[k, N, features]``; GEMMs with a shared matrix (W, the primal
        activations or cotangents) run on all k tangents at once, the ones with a tangent's own
        ``dW`` run per tangent, and the weight gradients are written straight into the output.
        Activation derivatives f'(x) and g·f''(x) were computed once, with the primal pass.
        """
        net, k, N = self.net, V.shape[0], self.x2[0].shape[0]
        dparams, out = net.layer_params(V), np.empty_like(V)
        grads = net.layer_params(out)                        # views of the output, [k, ...] per layer
        dxs, dx = [], None
        for i, layer in enumerate(net.layers):                # R-forward
            dxs.append(dx)
            if self.d1[i] is not None:
                dx = None if dx is None else self.d1[i] * dx
                continue
            dW, db = dparams[i]
            dy = np.empty((k, N, dW.shape[1]), dtype=self.dtype)
            for t in range(k):
                np.matmul(self.x2[i], dW[t].T, out=dy[t])
            if dx is not None:
                dy += _shared(dx, self.W2[i].T)
            dy += db[:, None, :]
            dx = dy
        dg = net.loss_fn.rgrad(self.z[0, 0], self.y[0, 0], dx, self.scale)
        for i in reversed(range(len(net.layers))):           # R-backward
            if self.d1[i] is not None:
                dg = dg * self.d1[i]
                if self.gd2[i] is not None and dxs[i] is not None:
                    dg += self.gd2[i] * dxs[i]
                continue
            dW, _ = dparams[i]
            gW, gb = grads[i]
            for t in range(k):
                np.matmul(dg[t].T, self.x2[i], out=gW[t])
                if dxs[i] is not None:
                    gW[t] += self.g2[i].T @ dxs[i][t]
            gb[...] = dg.sum(axis=1)
            if i > 0:
                dgx = _shared(dg, self.W2[i])
                for t in range(k):
                    dgx[t] += self.g2[i] @ dW[t]
                dg = dgx
        return out


def _shared(T, M) -> np.ndarray:
    """``T @ M`` for tangents ``T: [k, N, a]`` and one matrix ``M: [a, b]``: a single GEMM."""
    k, N, a = T.shape
    return (T.reshape(k * N, a) @ M).reshape(k, N, M.shape[1])


__all__ = ["PrimalCache", "cache_bytes", "measured_net"]
