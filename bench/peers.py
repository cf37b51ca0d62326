"""Peer implementations of the benchmark workloads: PyTorch ``torch.func`` and JAX, when installed.

Each peer is written the way a user of that library would write it: a loss of a flat parameter
vector, differentiated with the library's own transforms. Peers are optional; a missing one is
reported, not an error.
"""
from __future__ import annotations

import numpy as np


def _mlp_logits(theta, X, sizes, relu):
    """The MLP of ``bench.workloads.mlp`` in any array library with ``@``, ``.T`` and ``reshape``."""
    h, off = X, 0
    for j, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = theta[off:off + o * i].reshape((o, i)), theta[off + o * i:off + o * i + o]
        off += o * i + o
        h = h @ W.T + b
        if j < len(sizes) - 2:
            h = relu(h)
    return h


def torch_peer():
    """Functions of (θ, X, y) built on torch.func, or None when torch is missing."""
    try:
        import torch
        from torch.func import grad, jvp, vmap
    except ImportError:
        return None

    def make(sizes):
        def loss(theta, X, y):
            return torch.nn.functional.cross_entropy(_mlp_logits(theta, X, sizes, torch.relu), y)

        g = grad(loss)
        ns = {
            "loss": loss,
            "grad": g,
            "hvp": lambda th, X, y, v: jvp(lambda t: g(t, X, y), (th,), (v,))[1],
            "hvp_block": lambda th, X, y, V: vmap(lambda v: jvp(lambda t: g(t, X, y), (th,), (v,))[1])(V),
            "pop_sgd": lambda T, X, y, lr: torch.add(T, vmap(g)(T, X, y), alpha=-lr),
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
            logp = jax.nn.log_softmax(_mlp_logits(theta, X, sizes, jax.nn.relu))
            return -jnp.take_along_axis(logp, y[:, None], 1).mean()

        g = jax.grad(loss)
        hvp = lambda th, X, y, v: jax.jvp(lambda t: g(t, X, y), (th,), (v,))[1]
        return {
            "loss": jax.jit(loss),
            "grad": jax.jit(g),
            "hvp": jax.jit(hvp),
            "hvp_block": jax.jit(lambda th, X, y, V: jax.vmap(lambda v: hvp(th, X, y, v))(V)),
            "pop_sgd": jax.jit(lambda T, X, y, lr: T - lr * jax.vmap(g)(T, X, y)),
            "input_grad": jax.jit(lambda th, X, y: jax.grad(lambda x: loss(th, x, y) * x.shape[0])(X)),
        }

    return {"name": "jax.jit", "make": make, "asarray": jnp.asarray,
            "sync": lambda out: jax.block_until_ready(out)}


def peers():
    return [p for p in (torch_peer(), jax_peer()) if p is not None]
