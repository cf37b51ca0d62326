"""Peer implementations of the benchmark workloads: PyTorch ``torch.func`` and JAX, when installed.

Each peer is written the way a user of that library would write it: a loss of a flat parameter
vector, differentiated with the library's own transforms. Peers are optional; a missing one is
reported, not an error.
"""
from __future__ import annotations

import numpy as np


def _split(theta, sizes, reshape):
    out, off = [], 0
    for i, o in zip(sizes[:-1], sizes[1:]):
        out.append((reshape(theta[off:off + o * i], (o, i)), theta[off + o * i:off + o * i + o]))
        off += o * i + o
    return out


def torch_peer():
    """Functions of (θ, X, y) built on torch.func, or None when torch is missing."""
    try:
        import torch
        from torch.func import grad, jvp, vmap
    except ImportError:
        return None

    def make(sizes):
        def loss(theta, X, y):
            h = X
            layers = _split(theta, sizes, lambda t, s: t.reshape(s))
            for j, (W, b) in enumerate(layers):
                h = h @ W.T + b
                if j < len(layers) - 1:
                    h = torch.relu(h)
            return torch.nn.functional.cross_entropy(h, y)

        g = grad(loss)
        ns = {
            "loss": loss,
            "grad": g,
            "hvp": lambda th, X, y, v: jvp(lambda t: g(t, X, y), (th,), (v,))[1],
            "hvp_block": lambda th, X, y, V: vmap(lambda v: jvp(lambda t: g(t, X, y), (th,), (v,))[1])(V),
            "pop_grad": vmap(g),
            "input_grad": lambda th, X, y: grad(lambda x: loss(th, x, y) * x.shape[0])(X),
        }
        return ns

    return {"name": "torch.func", "make": make, "asarray": lambda a: torch.from_numpy(np.ascontiguousarray(a)),
            "sync": lambda out: out, "torch": torch}


def jax_peer():
    """The same workloads with jax.jit, or None when JAX is missing."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None

    def make(sizes):
        def loss(theta, X, y):
            h = X
            layers = _split(theta, sizes, lambda t, s: t.reshape(s))
            for j, (W, b) in enumerate(layers):
                h = h @ W.T + b
                if j < len(layers) - 1:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h)
            return -jnp.take_along_axis(logp, y[:, None], 1).mean()

        g = jax.grad(loss)
        hvp = lambda th, X, y, v: jax.jvp(lambda t: g(t, X, y), (th,), (v,))[1]
        return {
            "loss": jax.jit(loss),
            "grad": jax.jit(g),
            "hvp": jax.jit(hvp),
            "hvp_block": jax.jit(lambda th, X, y, V: jax.vmap(lambda v: hvp(th, X, y, v))(V)),
            "pop_grad": jax.jit(jax.vmap(g)),
            "input_grad": jax.jit(lambda th, X, y: jax.grad(lambda x: loss(th, x, y) * x.shape[0])(X)),
        }

    return {"name": "jax.jit", "make": make, "asarray": jnp.asarray,
            "sync": lambda out: jax.block_until_ready(out)}


def peers():
    return [p for p in (torch_peer(), jax_peer()) if p is not None]
