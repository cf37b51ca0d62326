"""The reference backend: the engine's passes in plain NumPy, layer by layer.

Inputs arrive normalised by :class:`pyquirk.nn.Net`: ``theta: [E, P]``, ``X: [Ex, N, *in]`` and
``y: [Ey, N]`` (or ``[Ey, N, C]`` targets) with ``Ex, Ey`` in ``{1, E}``; tangents ``V: [E, k, P]``.
Each fast backend implements the same five functions and is tested against these.
"""
from __future__ import annotations


def _forward(net, params, x):
    """Primal pass; returns the logits and each layer's cache."""
    caches = []
    for layer, p in zip(net.layers, params):
        x, cache = layer.forward(p, x)
        caches.append(cache)
    return x, caches


def _backward(net, params, caches, g, need_input=False):
    """Reverse pass from ``g = ∂loss/∂logits``; returns (∂/∂input or None, per-layer param grads)."""
    grads = [None] * len(net.layers)
    for i in reversed(range(len(net.layers))):
        g, grads[i] = net.layers[i].vjp(params[i], caches[i], g, need_gx=need_input or i > 0)
    return g, grads


def logits(net, theta, X):
    """``[E, N, C]``."""
    return _forward(net, net.layer_params(theta), X)[0]


def loss(net, theta, X, y):
    """Per-sample losses ``[E, N]``."""
    return net.loss_fn.per_sample(logits(net, theta, X), y)


def loss_and_grad(net, theta, X, y):
    """Mean loss ``[E]`` and its gradient ``[E, P]``."""
    params = net.layer_params(theta)
    z, caches = _forward(net, params, X)
    g = net.loss_fn.grad(z, y, 1.0 / z.shape[-2])
    _, grads = _backward(net, params, caches, g)
    return net.loss_fn.per_sample(z, y).mean(axis=-1), net.flatten(grads, theta.shape[:1], theta.dtype)


def vjp(net, theta, X, g):
    """``∂/∂θ Σ_{n,c} g[n, c]·z[n, c]`` for a cotangent ``g: [E, N, C]`` on the logits -> ``[E, P]``."""
    params = net.layer_params(theta)
    _, caches = _forward(net, params, X)
    _, grads = _backward(net, params, caches, g)
    return net.flatten(grads, theta.shape[:1], theta.dtype)


def hvp(net, theta, X, y, V):
    """Exact ``H v`` for k tangents ``V: [E, k, P]`` -> ``[E, k, P]`` (forward-over-reverse).

    The primal quantities carry model dims ``(E, 1)`` and the tangents ``(E, k)``, so the k
    tangents share one primal forward and backward pass and broadcast through each layer.
    """
    params = net.layer_params(theta[:, None, :])
    dparams = net.layer_params(V)
    x, y = X[:, None], y[:, None]
    # forward: primal and R{·} side by side, keeping each layer's input tangent
    caches, dxs, dx = [], [], None
    for layer, p, dp in zip(net.layers, params, dparams):
        dxs.append(dx)
        x, cache = layer.forward(p, x)
        dx = layer.jvp(p, dp, cache, dx)
        caches.append(cache)
    scale = 1.0 / x.shape[-2]
    g, dg = net.loss_fn.grad(x, y, scale), net.loss_fn.rgrad(x, y, dx, scale)
    # backward: the cotangent and its R{·}
    dgrads = [None] * len(net.layers)
    for i in reversed(range(len(net.layers))):
        layer = net.layers[i]
        need = i > 0
        g_next, _ = layer.vjp(params[i], caches[i], g, need_gx=need)
        dg, dgrads[i] = layer.rvjp(params[i], dparams[i], caches[i], dxs[i], g, dg, need_gx=need)
        g = g_next
    return net.flatten(dgrads, V.shape[:2], theta.dtype)


def input_grad(net, theta, X, y):
    """Logits ``[E, N, C]`` and each sample's own-loss gradient w.r.t. its input ``[E, N, *in]``."""
    params = net.layer_params(theta)
    z, caches = _forward(net, params, X)
    gx, _ = _backward(net, params, caches, net.loss_fn.grad(z, y, 1.0), need_input=True)
    return z, gx
